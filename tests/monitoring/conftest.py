"""A project served across the shift, shared by the monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import yaml
from tests.conftest import copy_project

from driftloop.features.store import FeatureStore
from driftloop.harness.traffic import replay_days
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.serving.server import BackgroundServer, build_context

DAYS = [date(2019, 5, 6) + timedelta(days=i) for i in range(75)]  # to the data's end


def _project(applied: Any, folder: Any) -> Any:
    project = copy_project(applied, folder / "shop")
    data = yaml.safe_load(project.config_path.read_text())
    data["monitoring"] = {"window_days": 28, "min_rows": 200, "min_labels": 100}
    project.config_path.write_text(yaml.safe_dump(data))
    project = Project.load(project.root)
    run_training(project, open_registry(project), date(2019, 5, 6), actor="tests")
    return project


@pytest.fixture(scope="module")
def monitored(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """v1 trained before the shift (2019-06-01), then served from 2019-05-06 to the data end."""
    project = _project(applied_project, tmp_path_factory.mktemp("monitored"))
    with BackgroundServer(build_context(project)) as server:
        stats = replay_days(FeatureStore(project), server.url, DAYS)
    assert stats.predictions == len(DAYS) * 12 == stats.feedback
    return project


@pytest.fixture(scope="module")
def live_server(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The same traffic, with the server left running for its gauges."""
    project = _project(applied_project, tmp_path_factory.mktemp("live"))
    server = BackgroundServer(build_context(project)).start()
    try:
        replay_days(FeatureStore(project), server.url, DAYS)
        server.ctx.flush_logs()
        yield server
    finally:
        server.stop()
