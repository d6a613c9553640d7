"""The loop on classification: a seeded fraud replay through a real server, where the
fraud pattern changes and only delayed chargebacks can tell."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from driftloop.app.scaffold import create_fraud_project
from driftloop.loop.replay import run_replay, summarize_replay

SHIFT = date(2025, 3, 14)  # 72 days after 2025-01-01


def test_the_loop_detects_a_new_fraud_pattern_by_log_loss_and_retrains(tmp_path: Path) -> None:
    small = {
        "n_cards": 110,
        "days": 100,
        "shift_after_days": 72,
        "txn_per_card_day": 0.5,
        "compromised_per_1000_cards": 30.0,
    }
    project = create_fraud_project(tmp_path / "fraud", seed=3, overrides=small)
    # v1 learns from day 30 (the 30-day warm-up of the activity features) to day 56
    start, end = SHIFT - timedelta(days=4), SHIFT + timedelta(days=20)
    result = run_replay(project, start, end, schedule_days=0)
    checks = [e for e in result.events if e.kind == "check"]
    signals = [c.evidence["signals"] for c in checks]
    assert {s.get("accuracy_metric") for s in signals if s["wape"] is not None} == {"log_loss"}
    # 7-day chargebacks and a 14-day window: accuracy is judged on a window ending a day
    # earlier, so that more than half its days are labelled
    lagged = [s for s in signals if s.get("accuracy_window")]
    assert lagged and all(
        date.fromisoformat(s["window"][1]) - date.fromisoformat(s["accuracy_window"][1])
        == timedelta(days=1)
        for s in lagged
    )
    kinds = [(e.kind, e.at.date()) for e in result.events if e.kind != "check"]
    detected = [d for k, d in kinds if k == "drift_detected"]
    assert detected and detected[0] >= SHIFT, kinds  # nothing before the change
    # the chargebacks tell: log loss (at the holdout's fraud rate) rose on windows whose
    # labelled days hold the new pattern, and not on those whose labels predate it (labels
    # come 7 days late: a window's last week has none yet)
    ratios = [
        (date.fromisoformat(s["accuracy_window"][1]), s["accuracy_ratio"])
        for s in lagged
        if s["accuracy_ratio"] is not None
    ]
    before = [r for end_, r in ratios if end_ <= SHIFT + timedelta(days=7)]
    after = [r for end_, r in ratios if end_ > SHIFT + timedelta(days=14)]
    assert before and max(before) < 1.2, ratios
    assert after and max(after) > 1.3, ratios
    assert any(k == "retrain_started" for k, _ in kinds)
    assert any("accuracy" in e.message for e in result.events if e.kind == "retrain_started")
    gated = [e for e in result.events if e.kind in ("gate_passed", "gate_rejected")]
    assert gated, kinds
    assert "roc_auc" in gated[0].message, gated[0].message  # ROC AUC against the champion
    assert any(k == "gate_passed" for k, _ in kinds) and any(
        k == "rollout_started" for k, _ in kinds
    ), kinds
    # a retrain on chargebacks of the new pattern ranks it far better than the champion,
    # on the same newest holdout
    lifts = [
        e.evidence["metrics"]["roc_auc"] - e.evidence["champion_metrics"]["roc_auc"]
        for e in result.events
        if e.kind == "gate_passed"
    ]
    assert max(lifts) > 0.1, lifts
    timeline = summarize_replay(result, "fraud", "fraud")
    assert timeline.accuracy_metric == "log loss" and timeline.shift_date == SHIFT
    names = [k.name for k in timeline.key_numbers]
    assert any(n.startswith("ROC AUC (PR AUC) over the last quarter") for n in names)
