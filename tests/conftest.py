"""Shared fixtures: small seeded projects, built once per session where read-only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

SMALL_SCENARIO: dict[str, Any] = {
    "n_stores": 3,
    "n_products": 4,
    "days": 200,
    "start_date": date(2019, 1, 1),
    "shift": {"date": date(2019, 6, 1)},
}


@pytest.fixture(scope="session")
def applied_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A small retail project with features applied and the online store materialized.

    Read-only for tests: copy it (``project_copy``) before changing anything.
    """
    from driftloop.features.store import FeatureStore
    from driftloop.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("proj") / "shop", "retail", 7, SMALL_SCENARIO)
    store = FeatureStore(project)
    applied = store.apply()
    store.materialize(applied.last_day, since=applied.first_day)
    yield project


@pytest.fixture
def project_copy(applied_project: Any, tmp_path: Path) -> Any:
    """A private copy of the applied project that a test may change."""
    import shutil

    from driftloop.project import Project

    target = tmp_path / "shop"
    shutil.copytree(applied_project.root, target)
    copy = Project.load(target)
    # Feast's registry stores the offline table's absolute path: re-apply in the copy.
    from driftloop.features.store import FeatureStore

    FeatureStore(copy).apply()
    return copy
