"""Monitoring end to end: traffic from before and after the shift through a real server."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.errors import DataError
from driftloop.features.store import FeatureStore
from driftloop.monitoring.monitor import monitor_project
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.serving.server import BackgroundServer, build_context
from driftloop.traffic import replay_days

SHIFTED = ("units_lag_1", "units_lag_7", "units_mean_7d")
STABLE = ("promo", "day_of_week", "is_holiday")


@pytest.fixture(scope="module")
def monitored(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """v1 trained before the shift (2019-06-01), then served from 2019-05-06 to the data end."""
    from tests.conftest import copy_project

    project = copy_project(applied_project, tmp_path_factory.mktemp("monitored") / "shop")
    data = yaml.safe_load(project.config_path.read_text())
    data["monitoring"] = {"window_days": 28, "min_rows": 200, "min_labels": 100}
    project.config_path.write_text(yaml.safe_dump(data))
    project = Project.load(project.root)
    run_training(project, open_registry(project), date(2019, 5, 6), actor="tests")
    days = [date(2019, 5, 6) + timedelta(days=i) for i in range(75)]  # to 2019-07-19
    with BackgroundServer(build_context(project)) as server:
        stats = replay_days(FeatureStore(project), server.url, days)
    assert stats.predictions == 75 * 12 == stats.feedback
    return project


def test_the_shift_moves_sales_history_and_predictions_not_the_planned_inputs(
    monitored: Any,
) -> None:
    report = monitor_project(monitored, open_registry(monitored))
    first, last = report.windows[0], report.windows[-1]
    assert first.end <= date(2019, 6, 1) < last.start
    (before,) = first.versions
    (after,) = last.versions
    level_before = {f.name: f.level for f in before.features}
    level_after = {f.name: f.level for f in after.features}
    for name in SHIFTED:
        assert level_before[name] in ("none", "notice"), (name, level_before)
        assert level_after[name] == "act", (name, level_after)
    for name in STABLE:  # promotions, weekdays, holidays: planned, not moved by the shift
        assert level_before[name] == level_after[name] == "none", name
    assert "day_of_year" not in level_after  # calendar position is not judged for drift
    assert before.prediction.level in ("none", "notice")
    assert after.prediction.level in ("warning", "act")
    assert "prediction_drift" in {a.kind for _, a in report.alerts}
    assert "prediction_drift" not in {a.kind for a in before.alerts}
    assert after.accuracy is not None and after.accuracy.coverage == 1.0


def test_monitor_cli_prints_tables_and_json(monitored: Any) -> None:
    runner = CliRunner()
    human = runner.invoke(app, ["monitor", "--project", str(monitored.root)])
    assert human.exit_code == 0, human.output
    assert "units_mean_7d" in human.stdout and "data_drift" in human.stdout
    doc = json.loads(runner.invoke(app, ["monitor", "--project", str(monitored.root),
                                         "--json"]).stdout)  # fmt: skip
    assert doc["model"] == "shop" and len(doc["windows"]) == 3


def test_monitor_without_traffic_says_so(project_copy: Any) -> None:
    with pytest.raises(DataError, match="prediction log is empty"):
        monitor_project(project_copy, open_registry(project_copy))
