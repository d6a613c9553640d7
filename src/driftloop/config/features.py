"""The ``features:`` section: offline and online stores, lags and windows, the skew check."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DuckDBOfflineStoreConfig",
    "FeaturesConfig",
    "OfflineStoreConfig",
    "OnlineStoreConfig",
    "RedisOnlineStoreConfig",
    "SkewConfig",
    "SqliteOnlineStoreConfig",
]

DEFAULT_LAGS_DAYS = (1, 7, 14, 28)
DEFAULT_ROLLING_WINDOWS_DAYS = (7, 28)
DEFAULT_SKEW_SAMPLE = 200
DEFAULT_SKEW_ABS_TOLERANCE = 1e-6
DEFAULT_SKEW_REL_TOLERANCE = 1e-9
DEFAULT_SKEW_MAX_MISMATCH_RATE = 0.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuckDBOfflineStoreConfig(_Strict):
    """Feast's DuckDB offline store over Parquet files under the project."""

    type: Literal["duckdb"] = "duckdb"


class SqliteOnlineStoreConfig(_Strict):
    """Feast's SQLite online store; ``path`` is relative to the project folder."""

    type: Literal["sqlite"] = "sqlite"
    path: str = ".driftloop/online_store.db"


_REDIS_ADDRESS = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")


class RedisOnlineStoreConfig(_Strict):
    """Feast's Redis online store (one server; needs Feast's ``redis`` extra).

    ``connection_string`` is Feast's: ``host:port`` then comma-separated options, e.g.
    ``127.0.0.1:6379,db=1,password=...,ssl=true``. Keep a password out of the file: set
    ``DRIFTLOOP__FEATURES__ONLINE_STORE__CONNECTION_STRING`` instead. driftloop prints
    only ``redacted()``, and a bad value is reported without echoing it.
    """

    type: Literal["redis"] = "redis"
    connection_string: str = Field("127.0.0.1:6379", repr=False)
    key_ttl_seconds: int | None = Field(
        None, ge=1, description="Redis expires an entity's rows this long after their write"
    )

    @field_validator("connection_string")
    @classmethod
    def _address_first(cls, value: str) -> str:
        address, *options = [part.strip() for part in value.split(",")]
        if not _REDIS_ADDRESS.match(address):
            raise ValueError(
                "must start with host:port (e.g. 127.0.0.1:6379), then optional "
                "comma-separated options such as db=1,password=...,ssl=true"
            )
        if any("=" not in option for option in options):
            raise ValueError("options after host:port must be key=value, separated by commas")
        return value

    def redacted(self) -> str:
        """The connection string with any password replaced by ``***``."""
        return re.sub(r"(?i)(password=)[^,]*", r"\1***", self.connection_string)


OfflineStoreConfig = Annotated[DuckDBOfflineStoreConfig, Field(discriminator="type")]
OnlineStoreConfig = Annotated[
    SqliteOnlineStoreConfig | RedisOnlineStoreConfig, Field(discriminator="type")
]


class SkewConfig(_Strict):
    """Training-serving skew check tolerances."""

    sample_size: int = Field(DEFAULT_SKEW_SAMPLE, ge=1)
    abs_tolerance: float = Field(DEFAULT_SKEW_ABS_TOLERANCE, ge=0.0)
    rel_tolerance: float = Field(DEFAULT_SKEW_REL_TOLERANCE, ge=0.0)
    max_mismatch_rate: float = Field(DEFAULT_SKEW_MAX_MISMATCH_RATE, ge=0.0, le=1.0)


class FeaturesConfig(_Strict):
    """Feature definitions (declared once) and the stores that hold them."""

    lags_days: tuple[int, ...] = DEFAULT_LAGS_DAYS
    rolling_windows_days: tuple[int, ...] = DEFAULT_ROLLING_WINDOWS_DAYS
    ttl_days: int = Field(7, ge=1, description="a feature row older than this is not served")
    offline_store: OfflineStoreConfig = DuckDBOfflineStoreConfig()
    online_store: OnlineStoreConfig = SqliteOnlineStoreConfig()
    skew: SkewConfig = SkewConfig()

    @model_validator(mode="after")
    def _positive_unique(self) -> FeaturesConfig:
        for name in ("lags_days", "rolling_windows_days"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must list at least one number of days")
            if any(v < 1 for v in values) or len(set(values)) != len(values):
                raise ValueError(f"{name} must hold distinct whole days >= 1, got {list(values)}")
        if any(w < 2 for w in self.rolling_windows_days):
            raise ValueError("rolling_windows_days must be >= 2 (a std over one day is undefined)")
        return self
