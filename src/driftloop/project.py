"""A driftloop project: a folder with ``driftloop.yaml``, data and state under it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop.config import CONFIG_FILENAME, ProjectConfig, load_config
from driftloop.errors import ProjectError

__all__ = ["Project", "atomic_write_parquet", "staged_directory"]

STATE_DIRNAME = ".driftloop"


@dataclass(frozen=True)
class Project:
    """Paths and config of one project; nothing is written outside ``root``. Its events
    and features: ``driftloop.features.layout.project_layout``."""

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
    def scenario_truth_path(self) -> Path:
        return self.root / "data" / "raw" / "scenario.json"

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
