"""A short seeded run of the closed loop through a real server on a simulated clock.

The demo's chain (10 stores x 12 products), a week before the shift and two after: the broken
challenger must be rolled back in its first step, the shift detected, a retrain gated,
registered and canaried by the controller; and the same days without the shift must
retrain nothing. Latency gates get a wide slack: real sub-millisecond latencies on a
shared machine are not what these tests judge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.app.demo import DemoResult, run_demo
from driftloop.loop.store import LoopStore
from driftloop.loop.timeline import Timeline
from driftloop.project import Project

STEADY = {"p99_slack_ms": 10_000.0}


def _run(folder: Path, shift: bool, schedule_days: int = 7) -> DemoResult:
    return run_demo(
        folder,
        seed=1,
        shift=shift,
        horizon_days=(7, 14),
        rollout=STEADY,
        schedule_days=schedule_days,
    )


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return _run(tmp_path_factory.mktemp("loop") / "demo", shift=True)


def test_broken_challenger_is_rolled_back_in_the_first_step(shifted: DemoResult) -> None:
    assert shifted.broken_version
    assert shifted.broken_version in shifted.rolled_back
    assert shifted.broken_max_weight == 10.0
    events = [e for e in shifted.timeline.events if e.version == shifted.broken_version]
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["rollout_started", "rollout_step", "rolled_back"], kinds
    assert "KL" in events[2].message  # its predictions, not its latency, gave it away


def test_shift_is_detected_and_the_loop_retrains_gates_and_canaries(shifted: DemoResult) -> None:
    kinds = [e.kind for e in shifted.timeline.events]
    assert shifted.false_alarms_before_shift == 0
    assert shifted.detection_days is not None and 0 <= shifted.detection_days <= 10
    first = kinds.index("drift_detected")
    retrain = kinds.index("retrain_started", first)
    gate = next(i for i, k in enumerate(kinds) if i > retrain and k.startswith("gate_"))
    assert retrain > first and gate > retrain
    events = shifted.timeline.events
    if kinds[gate] == "gate_passed":
        version = events[gate].version
        assert kinds[gate + 1] == "rollout_started" and events[gate + 1].version == version
        ends = [e for e in events if e.version == version and e.kind in ("promoted", "rolled_back")]
        assert ends or shifted.timeline.days[-1].challenger == version  # decided, or in progress
    assert shifted.retrains >= 1


def test_retrained_version_carries_its_trigger_in_lineage(shifted: DemoResult) -> None:
    from driftloop.registry import open_registry

    project = Project.load(shifted.project)
    registry = open_registry(project)
    retrained = [v for v in registry.versions() if v.tags.get("driftloop.trigger")]
    assert retrained
    v = retrained[0]
    assert v.tags["driftloop.actor"] == "driftloop loop"
    assert "weigh 20x" in v.tags["driftloop.recency"]
    assert v.parent is not None


def test_every_decision_is_in_the_event_log_and_the_report(shifted: DemoResult) -> None:
    project = Project.load(shifted.project)
    store = LoopStore(project.state_dir / "state.db")
    checks = store.events(project.model_name, kinds=("check",))
    assert len(checks) == 21  # one a day, rollouts running or not
    assert all("signals" in c.evidence for c in checks)
    saved = Timeline.load(project.state_dir / "timeline.json")
    assert saved.key_numbers == shifted.timeline.key_numbers
    html = shifted.report.read_text(encoding="utf-8")
    assert html.count("<svg") == 4 and "drift_detected" in html


def test_without_the_shift_nothing_is_retrained(tmp_path: Path) -> None:
    control = _run(tmp_path / "control", shift=False, schedule_days=0)  # no weekly control
    assert control.retrains == 0, [e.message for e in control.timeline.events]
    assert control.broken_version in control.rolled_back
    kinds = {e.kind for e in control.timeline.events}
    assert "drift_detected" not in kinds


def test_events_and_report_commands_read_the_run(shifted: DemoResult) -> None:
    import json

    from typer.testing import CliRunner

    from driftloop.cli.main import app

    runner = CliRunner()
    listed = runner.invoke(app, ["events", "--project", str(shifted.project), "--json"])
    assert listed.exit_code == 0, listed.output
    kinds = [e["kind"] for e in json.loads(listed.stdout)]
    assert "check" not in kinds and "drift_detected" in kinds and "rolled_back" in kinds
    only = runner.invoke(
        app, ["events", "--project", str(shifted.project), "--kind", "rolled_back", "--json"]
    )
    assert {e["kind"] for e in json.loads(only.stdout)} == {"rolled_back"}
    bad = runner.invoke(app, ["events", "--project", str(shifted.project), "--kind", "nope"])
    assert bad.exit_code == 2 and "the kinds are: check, drift_detected" in bad.stderr
    table = runner.invoke(app, ["events", "--project", str(shifted.project)])
    assert table.exit_code == 0 and "drift_detected" in table.stdout
    out = shifted.project / "again.html"
    rendered = runner.invoke(app, ["report", "--project", str(shifted.project), "--out", str(out)])
    assert rendered.exit_code == 0, rendered.output
    assert out.read_text(encoding="utf-8").count("<svg") == 4


def test_doctor_rates_the_demo_project_at_the_level_it_just_ran(
    shifted: DemoResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.app.doctor import diagnose

    monkeypatch.delenv("DRIFTLOOP_ADMIN_TOKEN", raising=False)
    project = Project.load(shifted.project)
    assert project.config.training.on_pass == "challenger"
    assert (shifted.project / "driftloop.yaml").stat().st_mode & 0o077 == 0  # holds a token
    diagnosis = diagnose(project)
    assert diagnosis.level == 3, [c for c in diagnosis.checks if not c.passed]
