"""A driftloop project: a folder with ``driftloop.yaml``, data and state under it."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd

from driftloop.config import CONFIG_FILENAME, ProjectConfig, load_config
from driftloop.errors import DataError, ProjectError
from driftloop.features.engineering import FeatureLayout, validate_sales
from driftloop.features.table import TableLayout

__all__ = ["Project", "atomic_write_parquet", "staged_directory"]

STATE_DIRNAME = ".driftloop"


@dataclass(frozen=True)
class Project:
    """Paths and config of one project; nothing is written outside ``root``."""

    root: Path
    config: ProjectConfig

    @classmethod
    def load(cls, root: Path | str) -> Project:
        """Open the project in ``root`` (reads and validates its config once)."""
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ProjectError(
                f"project folder {path} does not exist: create one with `driftloop init {path}`"
            )
        return cls(root=path, config=load_config(path))

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILENAME

    @property
    def model_name(self) -> str:
        """The registered model's name: ``registry.model_name``, default the project's."""
        return self.config.registry.model_name or self.config.project

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIRNAME

    @property
    def is_table(self) -> bool:
        """Made from the user's own table (``init --data``), not a generated scenario."""
        return self.config.data is not None

    @property
    def raw_sales_path(self) -> Path:
        """The raw events: a scenario's sales, or the user's table as imported."""
        if self.is_table:
            return self.root / "data" / "raw" / "events.parquet"
        return self.root / "data" / "raw" / "sales.parquet"

    @property
    def scenario_truth_path(self) -> Path:
        return self.root / "data" / "raw" / "scenario.json"

    @property
    def offline_features_path(self) -> Path:
        if self.is_table:
            return self.root / "data" / "features" / "history.parquet"
        return self.root / "data" / "features" / "store_product_daily.parquet"

    @property
    def activity_features_path(self) -> Path:
        """A table project's offline activity states (its real-time features' source)."""
        return self.root / "data" / "features" / "activity.parquet"

    @property
    def feast_registry_path(self) -> Path:
        return self.state_dir / "feast_registry.db"

    @property
    def online_store_path(self) -> Path | None:
        """The SQLite online store's file; None for a store that is not a file (Redis)."""
        store = self.config.features.online_store
        return self.root / store.path if store.type == "sqlite" else None

    @property
    def online_store_label(self) -> str:
        """Where the online store is, for people: its file, or its address (no password)."""
        store = self.config.features.online_store
        if store.type == "sqlite":
            return str(self.root / store.path)
        return f"redis at {store.redacted()}"

    @property
    def feature_layout(self) -> FeatureLayout | TableLayout:
        if self.is_table:
            module = self.root / "feature_repo" / "features.py"
            try:
                stamp = module.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = 0  # TableLayout.module says what is missing
            return _table_layout(self.root, self.config.labels.delay_days, stamp)
        return FeatureLayout(
            lags_days=self.config.features.lags_days,
            rolling_windows_days=self.config.features.rolling_windows_days,
            label_delay_days=self.config.labels.delay_days,
        )

    def read_sales(self) -> pd.DataFrame:
        """The raw events, validated: a scenario's sales, or the user's imported table."""
        path = self.raw_sales_path
        if self.is_table:
            return self._read_table_events(path)
        if not path.is_file():
            raise DataError(
                f"raw sales file {path} is missing: regenerate the project with "
                f"`driftloop init {self.root} --scenario retail`, or restore the file"
            )
        try:
            sales = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc}); restore it") from exc
        validate_sales(sales, str(path))
        return sales

    def _read_table_events(self, path: Path) -> pd.DataFrame:
        if not path.is_file():
            raise DataError(
                f"the imported table {path} is missing: restore it, or make the project again "
                "with `driftloop init DIR --data ...`"
            )
        try:
            events = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc}); restore it") from exc
        data = self.config.data
        assert data is not None
        missing = [c for c in (*data.entity, "event_timestamp", data.target) if c not in events]
        if missing:
            raise DataError(f"{path}: lacks column(s) {missing}; restore the imported table")
        return events

    def event_days(self, events: pd.DataFrame) -> pd.Series:
        """The (UTC) day of each raw event."""
        stamps = (
            events["event_timestamp"].dt.tz_convert("UTC")
            if self.is_table
            else pd.to_datetime(events["date"])
        )
        days: pd.Series = stamps.dt.date
        return days


@functools.lru_cache(maxsize=16)
def _table_layout(root: Path, delay_days: int, _module_stamp: int) -> TableLayout:
    """One layout (one import of the repository module) per project and module version:
    every store, server and controller of a process shares it."""
    return TableLayout(root, timedelta(days=delay_days))


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield a scratch folder that becomes ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.exists():
            target.rmdir()  # only an empty folder may be replaced; checked by the caller
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
