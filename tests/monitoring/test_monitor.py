"""Monitoring end to end: traffic from before and after the shift through a real server."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from tests.monitoring.oracle_monitor import assert_same_window, oracle_windows
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.errors import DataError
from driftloop.features.layout import project_layout
from driftloop.monitoring.assess import ACCURACY_METRICS
from driftloop.monitoring.monitor import monitor_project, registry_info
from driftloop.registry import open_registry

SHIFTED = ("units_lag_1", "units_lag_7", "units_mean_7d")
STABLE = ("promo",)
KEYS = ("store_id", "product_id")  # the retail scenario's entity keys


def test_the_shift_moves_sales_history_and_predictions_not_the_planned_inputs(
    monitored: Any,
) -> None:
    report = monitor_project(monitored, open_registry(monitored), keys=KEYS)
    first, last = report.windows[0], report.windows[-1]
    assert first.end <= date(2019, 6, 1) < last.start
    (before,) = first.versions
    (after,) = last.versions
    level_before = {f.name: f.level for f in before.features}
    level_after = {f.name: f.level for f in after.features}
    psi_before = {f.name: f.psi for f in before.features}
    psi_after = {f.name: f.psi for f in after.features}
    for name in SHIFTED:
        assert level_before[name] != "act", (name, level_before)
        assert level_after[name] in ("warning", "act"), (name, level_after)
        assert psi_after[name] > psi_before[name], name
    assert any(level_after[name] == "act" for name in SHIFTED), level_after
    for name in STABLE:  # promotions are planned, not moved by the shift
        assert level_before[name] in ("none", "notice"), name
        assert level_after[name] in ("none", "notice"), name
    for name in ("day_of_week", "day_of_year", "is_holiday"):  # the calendar is not judged
        assert name not in level_after
    # Half the affected products gain and half lose: in this small project the pooled
    # predictions do not move beyond "notice"; accuracy falls while the inputs moved.
    assert before.prediction.level in ("none", "notice")
    assert after.prediction.level in ("none", "notice")
    assert "prediction_drift" not in {a.kind for a in before.alerts}
    assert after.accuracy is not None and after.accuracy.coverage == 1.0
    assert after.accuracy.state == "degraded"
    assert "accuracy_degradation" in {a.kind for _, a in report.alerts}
    assert not {a.kind for a in before.alerts} & {"accuracy_degradation", "concept_drift"}


def test_monitor_cli_prints_tables_and_json(monitored: Any) -> None:
    runner = CliRunner()
    human = runner.invoke(app, ["monitor", "--project", str(monitored.root)])
    assert human.exit_code == 0, human.output
    assert "units_mean_7d" in human.stdout and "data_drift" in human.stdout
    doc = json.loads(
        runner.invoke(app, ["monitor", "--project", str(monitored.root), "--json"]).stdout
    )
    assert doc["model"] == "shop" and len(doc["windows"]) == 3
    again = runner.invoke(app, ["monitor", "--project", str(monitored.root), "--rebuild", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == doc  # the stored days made again from the logs


def test_monitor_without_traffic_says_so(project_copy: Any) -> None:
    with pytest.raises(DataError, match="prediction log is empty"):
        monitor_project(project_copy, open_registry(project_copy), keys=KEYS)


def test_monitor_writes_alert_rules_with_the_projects_thresholds(
    monitored: Any, tmp_path: Any
) -> None:
    out = tmp_path / "rules.yml"
    result = CliRunner().invoke(
        app, ["monitor", "--project", str(monitored.root), "--rules", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "DriftloopFeatureDriftAct" in text and "driftloop_window_rows >= 200" in text


def test_stored_days_equal_the_full_read_monitor_on_served_traffic(monitored: Any) -> None:
    registry = open_registry(monitored)
    report = monitor_project(monitored, registry, sized_by_data=False, keys=KEYS)
    metric = ACCURACY_METRICS[monitored.config.training.task]
    expected = oracle_windows(
        monitored.state_dir,
        project_layout(monitored).entity_keys,
        monitored.config.monitoring,
        metric,
        registry_info(registry, metric),
    )
    assert len(report.windows) == len(expected) == 3
    for new, old in zip(report.windows, expected, strict=True):
        assert_same_window(new, old)
