"""One exception tree for driftloop.

    DriftloopError                  root; never raised itself
    ├── UsageError                  bad input from the user: config, files, arguments (exit 2)
    │   ├── ConfigError             driftloop.yaml missing, unreadable or invalid
    │   ├── ProjectError            project folder missing, not empty, or not initialised
    │   ├── DataError               a data file is missing, or a query selects no rows
    │   ├── ModelNotFound           a model version or alias that does not exist (HTTP 404)
    │   ├── AliasError              an alias cannot move as asked (already champion, ...) (409)
    │   ├── RequestError            an HTTP request the server cannot serve (HTTP 4xx)
    │   └── RolloutError            a rollout cannot start or change as asked (one runs, ...)
    ├── BackendError                a store or service failed underneath us (exit 2)
    │   ├── FeatureStoreError       Feast failed to apply, materialize or read (HTTP 503)
    │   ├── RegistryError           the model registry cannot be reached or refused a call (503)
    │   ├── RouterError             the traffic router refused a change or is unreachable
    │   ├── MetricsUnavailable      the canary's metrics source could not be read
    │   ├── ModelLoadError          a model version could not be loaded; the old one serves
    │   └── PredictionError         a model raised while predicting (HTTP 500)
    └── CheckFailed                 a check ran and its verdict is "no" (exit 1)
        ├── SkewDetected            served features differ from offline recomputation
        ├── RolledBack              a rollout ended without promoting (rolled back, aborted)
        └── GateFailed              a candidate model did not pass its quality gate

Each message says what failed, the offending value, and what to do next. Errors that
reach HTTP carry ``http_status``; the server maps them to ``{"error": message}``.
"""

from __future__ import annotations

__all__ = [
    "AliasError",
    "BackendError",
    "CheckFailed",
    "ConfigError",
    "DataError",
    "DriftloopError",
    "FeatureStoreError",
    "GateFailed",
    "MetricsUnavailable",
    "ModelLoadError",
    "ModelNotFound",
    "PredictionError",
    "ProjectError",
    "RegistryError",
    "RequestError",
    "RolledBack",
    "RolloutError",
    "RouterError",
    "SkewDetected",
    "UsageError",
]


class DriftloopError(Exception):
    """Root of every error driftloop raises on purpose."""

    exit_code: int = 2
    http_status: int = 500


class UsageError(DriftloopError):
    """The user's input (config, files, arguments) cannot be used as given."""

    exit_code = 2
    http_status = 400


class ConfigError(UsageError):
    """driftloop.yaml is missing, unreadable or fails validation."""


class ProjectError(UsageError):
    """The project folder is missing, not a project, or would be overwritten."""


class DataError(UsageError):
    """A data file is missing or a selection (entity, date range) has no rows."""


class BackendError(DriftloopError):
    """A backend (feature store, registry, server) failed beneath driftloop."""

    exit_code = 2


class FeatureStoreError(BackendError):
    """Feast could not apply definitions, materialize, or read features."""

    http_status = 503  # the server is fine; what it depends on is not


class RegistryError(BackendError):
    """The model registry (MLflow) cannot be reached or refused a call."""

    http_status = 503


class ModelNotFound(UsageError):
    """A model version or alias that the registry does not hold."""

    http_status = 404


class AliasError(UsageError):
    """An alias cannot move as asked: already the champion, nothing to roll back to, ..."""

    http_status = 409


class RequestError(UsageError):
    """An HTTP request the server cannot serve as sent; ``status`` is its 4xx code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.http_status = status


class RouterError(BackendError):
    """The traffic router (a server's admin API, a mesh) refused or could not be reached."""


class MetricsUnavailable(BackendError):
    """The metrics source (a server's /metrics, Prometheus) could not be read."""


class RolloutError(UsageError):
    """A rollout cannot start or be changed as asked (one is running, bad version, ...)."""

    http_status = 409


class ModelLoadError(BackendError):
    """A model version could not be loaded; the versions already loaded keep serving."""

    http_status = 409


class PredictionError(BackendError):
    """A model raised while predicting; counted against that version only."""

    http_status = 500

    def __init__(self, message: str, version: str = "") -> None:
        super().__init__(message)
        self.version = version


class CheckFailed(DriftloopError):
    """A check ran to completion and its verdict is a failure."""

    exit_code = 1


class SkewDetected(CheckFailed):
    """Served feature values differ from their offline recomputation beyond tolerance."""


class RolledBack(CheckFailed):
    """A rollout ended without promoting its version (rolled back or aborted)."""


class GateFailed(CheckFailed):
    """A candidate model was registered as rejected: it failed its quality gate."""
