"""A seeded replay of the loop on a user's table, its decisions asserted."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.tabular.conftest import init_sensors
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.loop.replay import run_replay, summarize_replay, trailing_wape
from driftloop.project import Project

runner = CliRunner()


def test_replay_detects_the_shift_retrains_and_beats_the_frozen_model(
    tmp_path: Path, sensor_csv: Path, shift_day: date
) -> None:
    root = tmp_path / "sensors"
    made = init_sensors(root, sensor_csv)
    assert made.exit_code == 0, made.output
    project = Project.load(root)
    start, end = shift_day - timedelta(days=7), shift_day + timedelta(days=35)
    result = run_replay(project, start, end, schedule_days=7)
    kinds = [(e.kind, e.at.date()) for e in result.events if e.kind != "check"]
    detected = [d for k, d in kinds if k == "drift_detected"]
    assert detected and all(d >= shift_day for d in detected), kinds  # no alarm before
    assert (detected[0] - shift_day).days <= 7, kinds
    assert any(k == "retrain_started" for k, _ in kinds)
    assert any(k == "rollout_started" for k, _ in kinds)
    assert len(result.served) == 40 * 42 and result.served["label"].notna().all()
    last = end - timedelta(days=1)
    served, frozen = trailing_wape(result.served, last), trailing_wape(result.frozen, last)
    scheduled = trailing_wape(result.scheduled, last)
    assert served < frozen, (served, frozen, kinds)
    assert scheduled < frozen
    timeline = summarize_replay(result, "t", "s")
    assert any(d.scheduled_wape is not None for d in timeline.days)
    names = [k.name for k in timeline.key_numbers]
    assert any("frozen v1 / retrained every 7 days" in n for n in names)


def test_replay_refuses_an_empty_range(tmp_path: Path) -> None:
    made = runner.invoke(
        app,
        [
            "init",
            str(tmp_path / "p"),
            "--stores",
            "2",
            "--products",
            "2",
            "--days",
            "200",
            "--no-shift",
        ],
    )
    assert made.exit_code == 0
    bad = runner.invoke(
        app,
        [
            "replay",
            "--project",
            str(tmp_path / "p"),
            "--from",
            "2019-01-10",
            "--until",
            "2019-01-05",
        ],
    )
    assert bad.exit_code == 2 and "is not after" in bad.output
