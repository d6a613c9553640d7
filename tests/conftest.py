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

# Workers for `-n auto` (pytest-xdist, the default in pyproject's addopts): one per core
# this process may use, at most 4: each worker builds its own session fixtures (trained
# projects), which more workers would only repeat.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_WORKERS))


# The slowest modules, slowest first (`pytest --durations`, at 2 workers): collected
# first, so each starts at once on a worker of its own instead of running alone at the end
# while the other worker idles (--dist loadfile hands modules out in collection order).
# Order only: every other test keeps its place.
SLOW_FIRST = (
    "tests/loop/test_loop_kill9.py",
    "tests/tabular/test_fraud_loop.py",
    "tests/loop/test_quarantine.py",
    "tests/loop/test_loop_run.py",
    "tests/rollout/test_kill9.py",
    "tests/optimize/test_optimize_cli.py",
    "tests/monitoring/test_live.py",
    "tests/tabular/test_fraud_skew.py",
    "tests/tabular/test_replay.py",
    "tests/monitoring/test_monitor.py",
    "tests/serving/test_fuzz_server.py",
    "tests/loop/test_scheduled_challenger.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


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
    from driftloop.app.scaffold import create_project
    from driftloop.features.store import FeatureStore

    project = create_project(tmp_path_factory.mktemp("proj") / "shop", "retail", 7, SMALL_SCENARIO)
    store = FeatureStore(project)
    applied = store.apply()
    store.materialize(applied.last_day, since=applied.first_day)
    yield project


@pytest.fixture
def project_copy(applied_project: Any, tmp_path: Path) -> Any:
    """A private copy of the applied project that a test may change."""
    # Feast's registry stores the offline table's absolute path: the copy re-applies.
    return copy_project(applied_project, tmp_path / "shop")


def copy_project(source: Any, target: Path) -> Any:
    """Copy a project without registry state, and re-apply its features in the copy."""
    import shutil

    from driftloop.features.store import FeatureStore
    from driftloop.project import Project

    shutil.copytree(
        source.root,
        target,
        ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "state.db"),
    )
    copy = Project.load(target)
    FeatureStore(copy).apply()
    return copy


@pytest.fixture(scope="session")
def trained_project(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A copy of the applied project with version 1 trained and registered (read-only)."""
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry

    project = copy_project(applied_project, tmp_path_factory.mktemp("trained") / "shop")
    run_training(project, open_registry(project), actor="tests")
    return project


@pytest.fixture(scope="session")
def canary_project(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """v1 champion (as of 2019-05-01), v2 challenger (as of 2019-06-15)."""
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry

    project = copy_project(applied_project, tmp_path_factory.mktemp("canary") / "shop")
    registry = open_registry(project)
    run_training(project, registry, date(2019, 5, 1), actor="tests")
    second = run_training(project, registry, date(2019, 6, 15), actor="tests", on_pass="challenger")
    if second.alias != "challenger":  # the gate's verdict is not what serving tests are about
        registry.move_alias("challenger", second.version, "promote", "tests", "serving fixture")
    return project


def copy_with_registry(source: Any, target: Path, ignore: Any = None) -> Any:
    """Copy a project with its registry database; the artifacts stay where they are (shared
    with ``source``, read-only), named as the copy's artifact root so that they load."""
    import shutil

    import yaml

    from driftloop.project import Project

    shutil.copytree(source.root, target, ignore=ignore)
    path = target / "driftloop.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("registry", {})["artifact_location"] = (
        source.state_dir / "mlartifacts"
    ).as_uri()
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Project.load(target)


@pytest.fixture(scope="session")
def two_versions(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """v1 champion, v2 registered with a passing gate and no alias (read-only: copy it)."""
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry

    project = copy_project(applied_project, tmp_path_factory.mktemp("rollout") / "shop")
    registry = open_registry(project)
    run_training(project, registry, date(2019, 5, 1), actor="tests")
    # the same data and seed: an identical model, so the gate passes (A/A at the gate)
    second = run_training(project, registry, date(2019, 5, 1), actor="tests", on_pass="challenger")
    assert second.gate.passed, "fixture needs a v2 that passed its gate"
    registry.move_alias("challenger", None, "clear", "tests", "fixture: no challenger yet")
    return project


@pytest.fixture
def canary_copy(canary_project: Any, tmp_path: Path) -> Any:
    """A private copy of the canary project (v1 champion, v2 challenger) with its registry
    (the artifacts stay shared, read-only), without the shared project's served logs."""
    import shutil

    return copy_with_registry(
        canary_project, tmp_path / "shop", shutil.ignore_patterns("predictions", "feedback")
    )
