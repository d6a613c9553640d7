"""The card-fraud example: its generated data and ``driftloop init --scenario fraud``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.features.layout import project_layout
from driftloop.project import Project
from driftloop.scenarios.fraud import FraudScenario, generate_fraud

runner = CliRunner()


def test_the_generator_is_seeded_imbalanced_and_changes_pattern_on_the_shift() -> None:
    cfg = FraudScenario(n_cards=300, days=90, shift_after_days=60, seed=4)
    table = generate_fraud(cfg)
    pd.testing.assert_frame_equal(table, generate_fraud(cfg))
    other = FraudScenario(n_cards=300, days=90, shift_after_days=60, seed=5)
    assert not table.equals(generate_fraud(other))
    assert not table.duplicated(["card_id", "timestamp"]).any()
    assert table["timestamp"].is_monotonic_increasing
    assert 0.005 < table["is_fraud"].mean() < 0.05  # imbalanced
    shift = pd.Timestamp(cfg.shift_date, tz="UTC")
    fraud = table[table["is_fraud"] == 1]
    before, after = fraud[fraud["timestamp"] < shift], fraud[fraud["timestamp"] >= shift]
    # before: large and far; after: ordinary amounts near home, online digital goods
    assert before["distance_km"].median() > 3 * after["distance_km"].median()
    assert (after["merchant_category"] == "digital_goods").all()
    assert (before["merchant_category"] == "digital_goods").mean() < 0.05
    legit = table[table["is_fraud"] == 0]
    digital = (legit["merchant_category"] == "digital_goods").groupby(legit["timestamp"] >= shift)
    assert digital.mean()[True] > 3 * digital.mean()[False]  # the category's share drifts
    with pytest.raises(ValueError, match="days=40"):
        FraudScenario(days=40)


def test_init_fraud_makes_a_classification_project_with_real_time_features(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fraud"
    result = runner.invoke(
        app, ["init", str(root), "--scenario", "fraud", "--cards", "150", "--days", "70", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["cards"] <= 150 and 0 < summary["fraud_rate"] < 0.1
    project = Project.load(root)
    assert (project.config.data is not None) and project.config.training.task == "classification"
    assert project.config.training.gate.metric == "roc_auc"
    assert project.config.labels.delay_days == 7
    layout = project_layout(project)
    assert layout.label == "is_fraud" and layout.entity_keys == ("card_id",)
    assert dict(layout.entity_types) == {"card_id": "string"}
    assert set(layout.realtime) == {
        "txn_rate_1h",
        "txn_rate_24h",
        "txn_rate_30d",
        "seconds_since_last",
        "amount_vs_avg_30d",
    }
    assert "hour" in layout.event_features  # times of day, not only dates
    assert set(layout.views()) == {"history", "activity"}
    truth = json.loads(project.scenario_truth_path.read_text())
    assert truth["shift_enabled"] and truth["shift_date"] == "2025-02-12"  # 11/18 in
    # a retail option, or a fraud option on retail: exit 2, nothing written
    for args in (["--scenario", "fraud", "--stores", "3"], ["--cards", "10"]):
        bad = runner.invoke(app, ["init", str(tmp_path / "bad"), *args])
        assert bad.exit_code == 2 and "--" in bad.output, bad.output
        assert not (tmp_path / "bad").exists()
    short = runner.invoke(
        app, ["init", str(tmp_path / "bad"), "--scenario", "fraud", "--days", "30"]
    )
    assert short.exit_code == 2 and "days=30" in short.output and "Traceback" not in short.output


def test_history_of_a_fraud_project_is_stamped_when_chargebacks_arrive(tmp_path: Path) -> None:
    root = tmp_path / "fraud"
    made = runner.invoke(
        app,
        ["init", str(root), "--scenario", "fraud", "--cards", "100", "--days", "62", "--no-shift"],
    )
    assert made.exit_code == 0, made.output
    project = Project.load(root)
    events = project_layout(project).read_events()
    rows = project_layout(project).history_rows(events)
    first = events.groupby("card_id")["event_timestamp"].min().dt.floor("D")
    arrived = rows.groupby("card_id")["event_timestamp"].min()
    assert (arrived - first.loc[arrived.index] == timedelta(days=7)).all()
