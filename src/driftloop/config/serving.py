"""The ``serving:`` section: the model server's address, limits, logging and admin token."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["ServingConfig"]

DEFAULT_SERVING_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BATCH_ROWS = 10_000
DEFAULT_LOG_FLUSH_INTERVAL_S = 2.0
DEFAULT_LOG_FLUSH_ROWS = 50_000
DEFAULT_DEPENDENCY_CHECK_INTERVAL_S = 10.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServingConfig(_Strict):
    """The model server: limits, logging, routing defaults, admin token."""

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_SERVING_PORT, ge=0, le=65535)
    admin_token: SecretStr | None = Field(
        None,
        description="bearer token of the admin API; DRIFTLOOP_ADMIN_TOKEN overrides it; "
        "without one the admin API is disabled",
    )
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    max_batch_rows: int = Field(DEFAULT_MAX_BATCH_ROWS, ge=1)
    log_flush_interval_s: float = Field(DEFAULT_LOG_FLUSH_INTERVAL_S, gt=0.0, le=3600.0)
    log_flush_rows: int = Field(DEFAULT_LOG_FLUSH_ROWS, ge=1)
    dependency_check_interval_s: float = Field(
        DEFAULT_DEPENDENCY_CHECK_INTERVAL_S,
        gt=0.0,
        le=3600.0,
        description="readiness probes the registry and the online store at most this often",
    )
    inline_batch_rows: int = Field(
        256, ge=1, description="batches up to this size run on the event loop, larger in threads"
    )
    pin_version: str | None = Field(
        None,
        description="serve this one registered version alone, whatever the aliases say (one "
        "Deployment per version on a cluster: DRIFTLOOP__SERVING__PIN_VERSION=3)",
    )

    @field_validator("admin_token", mode="before")
    @classmethod
    def _token_as_written(cls, value: object) -> object:
        # YAML reads 012345 as the number 5349: refuse rather than guess, and never echo it.
        if value is not None and not isinstance(value, str | SecretStr):
            raise ValueError(
                "must be a string: quote it in driftloop.yaml or the environment variable "
                "(the value is a secret and is not shown)"
            )
        return value

    @field_validator("pin_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # An environment override is parsed as YAML, so "3" arrives as the integer 3.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("pin_version must name a registered version, got an empty string")
        return value

    def resolved_admin_token(self) -> str | None:
        """The admin token as the server and its clients use it: DRIFTLOOP_ADMIN_TOKEN first,
        then ``admin_token``; None when neither is set (the admin API is off)."""
        configured = self.admin_token.get_secret_value() if self.admin_token else None
        return os.environ.get("DRIFTLOOP_ADMIN_TOKEN") or configured
