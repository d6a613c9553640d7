"""The model registry on MLflow: runs, versions, aliases, artifacts.

Defaults keep everything under the project (SQLite backend, local artifacts); any
MLflow URI works by config. Every MLflow failure becomes a RegistryError that names
the URI (credentials masked) and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftloop.clock import Clock, WallClock
from driftloop.errors import ModelLoadError, ModelNotFound, RegistryError, UsageError
from driftloop.registry.alias_cache import AliasCache
from driftloop.registry.base import LoadedModel, ModelVersion, RegistrationRequest
from driftloop.registry.history import AliasHistory, AliasMove
from driftloop.registry.integrity import (
    CHECKSUM_TAG,
    LoadPolicy,
    check_inside_root,
    load_payload,
    model_format,
    recorded_digests,
    verify_files,
)
from driftloop.registry.mlflow_artifacts import (
    GATE_ARTIFACT,
    MODEL_ARTIFACT,
    ONNX_ARTIFACT,
    ONNX_KIND,
    PROFILE_ARTIFACT,
    log_model,
    log_onnx,
    model_digests,
    model_signature,
    version_description,
    version_tags,
)
from driftloop.registry.predictors import BoosterPredictor, EstimatorPredictor, OnnxPredictor
from driftloop.statistics.profile import ReferenceProfile

__all__ = ["ONNX_KIND", "MlflowRegistry", "mask_uri", "model_signature", "version_description"]

# MLflow 3's UI opens an experiment on the view its kind names (GenAI traces when unset
# and it cannot tell): driftloop's runs are classic models.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def mask_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", uri)


def _quiet_mlflow() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Asked for pip's version to write conda.yaml; uv-made environments have no pip.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # MLflow warns that a Booster's predict has no type hints to validate against, and its
    # SQLAlchemy models use a loader strategy SQLAlchemy deprecated: nothing a user can act on.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
    warnings.filterwarnings(
        "ignore", message=r".*``noload`` loader strategy", category=DeprecationWarning
    )


class MlflowRegistry:
    """Versions of one registered model in MLflow, with driftloop's alias history."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_location: str,
        model_name: str,
        experiment: str,
        history: AliasHistory,
        clock: Clock | None = None,
        timeout_s: int = 10,
        policy: LoadPolicy | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.model_name = model_name
        self.experiment = experiment
        self.history = history
        self.clock = clock or WallClock()
        self.policy = policy or LoadPolicy()
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout_s)
        _quiet_mlflow()
        self._client: Any = None
        # A run's metrics, logged before its version is created and never after: read once.
        self._run_metrics: dict[str, dict[str, float]] = {}
        self._alias_cache = AliasCache(tracking_uri)  # kept while the SQLite file is unchanged

    def __repr__(self) -> str:
        return f"MlflowRegistry({mask_uri(self.tracking_uri)!r}, model={self.model_name!r})"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (RegistryError, ModelNotFound):
            raise
        except Exception as exc:  # MLflow, SQLAlchemy and requests raise many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RegistryError(
                f"model registry at {mask_uri(self.tracking_uri)} could not {action}: "
                f"{mask_uri(first)[:300]}; check that it is running and registry.tracking_uri in "
                "driftloop.yaml"
            ) from exc

    def client(self) -> Any:
        if self._client is None:
            import mlflow
            from mlflow import MlflowClient

            _quiet_mlflow()  # after import: MLflow sets its own levels when imported
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            with self._errors("open"):
                self._client = MlflowClient(self.tracking_uri, self.tracking_uri)
        return self._client

    def check_reachable(self) -> None:
        """Fail fast, before any work, if the registry cannot be used."""
        with self._errors("be reached"):
            self.client().search_registered_models(max_results=1)

    # -- reading -------------------------------------------------------------------

    def _aliases(self) -> dict[str, list[str]]:
        """version -> aliases (model-version searches do not fill in aliases)."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client().get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def _to_version(self, mv: Any, aliases: dict[str, list[str]] | None = None) -> ModelVersion:
        """``aliases``: version -> aliases, for a searched ``mv`` (searches leave them out;
        a version read alone carries its own)."""
        metrics = self._run_metrics.get(mv.run_id)
        if metrics is None:
            metrics = dict(self.client().get_run(mv.run_id).data.metrics)
            self._run_metrics[mv.run_id] = metrics
        if aliases is None:
            own = getattr(mv, "aliases", None)
            aliases = {str(mv.version): list(own)} if own is not None else self._aliases()
        return ModelVersion(
            name=mv.name,
            version=str(mv.version),
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            aliases=tuple(sorted(aliases.get(str(mv.version), ()))),
            gate=mv.tags.get("driftloop.gate", "unknown"),
            metrics=dict(metrics),
            tags=dict(mv.tags),
            run_id=mv.run_id,
            source=mv.source,
        )

    def get(self, version: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        if not str(version).isdigit():
            raise ModelNotFound(f"model version {version!r} is not a number: use e.g. 3")
        with self._errors(f"read version {version}"):
            try:
                mv = self.client().get_model_version(self.model_name, str(version))
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    raise ModelNotFound(
                        f"model {self.model_name!r} has no version {version}: "
                        "`driftloop models list` shows the versions"
                    ) from exc
                raise
            return self._to_version(mv)

    def versions(self) -> list[ModelVersion]:
        with self._errors("list versions"):
            found = self.client().search_model_versions(f"name = '{self.model_name}'")
            aliases = self._aliases()
            return sorted(
                (self._to_version(mv, aliases) for mv in found), key=lambda v: int(v.version)
            )

    def alias(self, alias: str) -> ModelVersion | None:
        def read() -> ModelVersion | None:
            from mlflow.exceptions import MlflowException

            with self._errors(f"resolve alias {alias!r}"):
                try:
                    mv = self.client().get_model_version_by_alias(self.model_name, alias)
                except MlflowException as exc:
                    if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                        return None
                    raise
                return self._to_version(mv)

        return self._alias_cache.get(alias, read)  # read only when the database changed

    def alias_history(self, alias: str | None = None) -> list[AliasMove]:
        return self.history.moves(self.model_name, alias)

    # -- writing -------------------------------------------------------------------

    def _experiment_id(self) -> str:
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            return str(
                client.create_experiment(
                    self.experiment,
                    self.artifact_location,
                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
                )
            )
        if EXPERIMENT_KIND_TAG not in (found.tags or {}):  # made before driftloop set it
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return str(found.experiment_id)

    def register(self, request: RegistrationRequest) -> ModelVersion:
        """Log the run with its artifacts, then create the version (last, all or nothing)."""
        import mlflow

        with self._errors("register a new version"):
            experiment_id = self._experiment_id()
            # The fluent API logs to the process-wide URI: point it here for this run.
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            with mlflow.start_run(experiment_id=experiment_id, run_name=request.run_name) as run:
                mlflow.log_params({k: str(v)[:500] for k, v in request.params.items()})
                mlflow.log_metrics(dict(request.metrics))
                mlflow.set_tags(dict(request.tags))
                info, trust_tags = log_model(request)
                profile_text = request.profile.to_json()
                mlflow.log_text(profile_text, PROFILE_ARTIFACT)
                mlflow.log_dict(dict(request.gate), GATE_ARTIFACT)
                for name, text in request.artifacts.items():
                    mlflow.log_text(text, name)
                onnx_tags = log_onnx(request.onnx_model)
            digests = model_digests(self.client(), info)
            tags = version_tags(request, digests, profile_text, {**onnx_tags, **trust_tags})
            client = self.client()
            if not client.search_registered_models(f"name = '{self.model_name}'"):
                client.create_registered_model(self.model_name)
            mv = client.create_model_version(
                self.model_name,
                source=info.model_uri,
                run_id=run.info.run_id,
                tags=tags,
                description=version_description(request),
            )
            return self._to_version(mv)

    def move_alias(
        self, alias: str, version: str | None, kind: str, actor: str, reason: str
    ) -> AliasMove:
        """Point ``alias`` at ``version`` (None removes it) and record who, when and why."""
        current = self.alias(alias)
        if version is not None:
            self.get(version)  # raises ModelNotFound for an unknown version
        move = AliasMove(
            model=self.model_name,
            alias=alias,
            from_version=current.version if current else None,
            to_version=version,
            kind=kind,
            actor=actor,
            reason=reason,
            at=self.clock.now(),
        )
        with self._errors(f"move alias {alias!r}"), self.history.recording(move):
            if version is None:
                if current is not None:
                    self.client().delete_registered_model_alias(self.model_name, alias)
            else:
                self.client().set_registered_model_alias(self.model_name, alias, version)
        return move

    # -- artifacts -----------------------------------------------------------------

    def _download(self, run_id: str, artifact: str, into: str) -> Path:
        import mlflow

        with self._errors(f"download {artifact}"):
            got = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, dst_path=into, tracking_uri=self.tracking_uri
            )
        return Path(got)

    def _verified(self, mv: ModelVersion, artifact: str, into: str, required: bool = True) -> Path:
        """A run artifact, downloaded from inside the artifact root and checked against the
        checksum recorded at registration (``required=False``: checked only when recorded)."""
        with self._errors(f"read the run of version {mv.version}"):
            run_uri = self.client().get_run(mv.run_id).info.artifact_uri
        check_inside_root(mv.version, run_uri, self.artifact_location)
        local = self._download(mv.run_id, artifact, into)
        if not required and CHECKSUM_TAG not in mv.tags:
            return local  # data (a profile) of a version registered before checksums
        expected = recorded_digests(mv.version, mv.tags, self.policy)
        if required or artifact in expected:
            verify_files(mv.version, local, artifact, expected, self.policy)
        return local

    def load_profile(self, version: str) -> ReferenceProfile:
        mv = self.get(version)
        with tempfile.TemporaryDirectory() as tmp:
            path = self._verified(mv, PROFILE_ARTIFACT, tmp, required=False)
            text = path.read_text(encoding="utf-8")
        return ReferenceProfile.from_json(text)

    def load_model(self, version: str) -> LoadedModel:
        """The ONNX copy when there is one, else the native model; checksums verified."""
        mv = self.get(version)
        if "driftloop.features" not in mv.tags:
            raise ModelLoadError(
                f"version {version} was not registered by driftloop (no driftloop.features "
                "tag): register models with `driftloop train`"
            )
        names = tuple(json.loads(mv.tags["driftloop.features"]))
        task = mv.tags.get("driftloop.task", "regression")
        if mv.tags.get("driftloop.onnx_sha256"):
            with tempfile.TemporaryDirectory() as tmp:
                data = self._verified(mv, ONNX_ARTIFACT, tmp).read_bytes()
            return OnnxPredictor(data, names, task)
        kind, model = self.load_native(version)
        if kind == "lightgbm":
            return BoosterPredictor(model, names)
        return EstimatorPredictor(model, names, task)

    def load_native(self, version: str) -> tuple[str, Any]:
        """(model kind, the LightGBM booster or scikit-learn estimator) of a version.

        Only from the configured artifact root, only with the checksums recorded at
        registration, and never by unpickling unless ``registry.allow_pickle`` says so.
        """
        mv = self.get(version)
        kind = mv.tags.get("driftloop.model_kind", "sklearn")
        if kind == ONNX_KIND:
            parent = mv.tags.get("driftloop.parent_version") or "?"
            raise UsageError(
                f"version {version} is an ONNX-only optimized variant of v{parent} "
                f"({mv.tags.get('driftloop.optimization', 'optimized')}): it has no native "
                f"model; use its parent v{parent} instead"
            )
        expected = recorded_digests(version, mv.tags, self.policy)
        with self._errors(f"locate version {version}"):
            location = self.client().get_model_version_download_uri(self.model_name, version)
        check_inside_root(version, location, self.artifact_location)
        with tempfile.TemporaryDirectory() as tmp:
            import mlflow

            with self._errors(f"download version {version}"):
                local = Path(
                    mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=tmp)
                )
            verify_files(version, local, MODEL_ARTIFACT, expected, self.policy)
            fmt = model_format(version, local, self.policy)
            try:
                return kind, load_payload(version, local, fmt, mv.tags, self.policy)
            except ModelLoadError:
                raise
            except Exception as exc:  # a corrupt payload: LightGBM, skops raise many types
                raise ModelLoadError(
                    f"version {version}: {fmt.payload or 'the model'} could not be loaded: "
                    f"{type(exc).__name__}: {str(exc)[:300]}"
                ) from exc

    def artifact_text(self, version: str, artifact: str) -> Mapping[str, Any]:
        """A JSON artifact of a version (for example the gate verdict)."""
        mv = self.get(version)
        with tempfile.TemporaryDirectory() as tmp:
            loaded: Mapping[str, Any] = json.loads(
                self._download(mv.run_id, artifact, tmp).read_text(encoding="utf-8")
            )
        return loaded
