"""Outcome gates and the A/B strategy: joins by request id, the always-valid mean test,
and a seeded A/B rollout decided by its business metric."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.rollout.conftest import Harness, make_harness

from driftloop.config import OutcomeGateConfig
from driftloop.rollout.judge import MeanStats, mean_difference_test
from driftloop.rollout.outcomes import VersionOutcomes, outcome_evidence, version_outcomes


def test_version_outcomes_joins_feedback_to_the_answering_version() -> None:
    predictions = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d"],
            "version": ["1", "1", "2", "2"],
            "route": ["champion", "champion", "challenger", "shadow"],
            "prediction": [10.0, 20.0, 30.0, 99.0],
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d", None],
            "kind": ["label", "business", "business", "business", "business"],
            "name": ["label", "revenue", "revenue", "revenue", "revenue"],
            "value": [12.0, 5.0, 7.0, 1000.0, 3.0],
        }
    )
    out = version_outcomes(predictions, feedback, "revenue")
    assert out["1"].business == MeanStats(1, 5.0, 0.0)
    assert out["1"].labels == 1 and out["1"].wape == pytest.approx(2.0 / 12.0)
    assert out["2"].business == MeanStats(1, 7.0, 0.0)  # the shadow answer is not joined


def test_outcome_evidence_is_unmeasured_until_enough_outcomes() -> None:
    cfg = OutcomeGateConfig(min_outcomes=100)
    few = VersionOutcomes(MeanStats(10, 1.0, 1.0))
    business, accuracy = outcome_evidence(few, few, cfg)
    assert business.passed is None and accuracy.passed is None
    good = VersionOutcomes(MeanStats(500, 9.9, 4.0), 500, 50.0, 500.0)
    stable = VersionOutcomes(MeanStats(500, 10.0, 4.0), 500, 50.0, 500.0)
    worse = VersionOutcomes(MeanStats(500, 9.0, 4.0), 500, 80.0, 500.0)
    assert [e.passed for e in outcome_evidence(good, stable, cfg)] == [True, True]
    assert [e.passed for e in outcome_evidence(worse, stable, cfg)] == [False, False]


def test_classification_canaries_are_judged_on_ranking_not_on_probability_scale() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(4000) < 0.05).astype("float64")
    stable_p = np.where(y == 1, rng.uniform(0.0, 0.3, 4000), rng.uniform(0.0, 0.1, 4000))
    # a retrain that ranks fraud first but with larger probabilities all round
    canary_p = np.where(y == 1, rng.uniform(0.5, 1.0, 4000), rng.uniform(0.1, 0.5, 4000))
    versions = ["2"] * 4000 + ["1"] * 4000
    predictions = pd.DataFrame(
        {
            "request_id": [f"{v}-{i % 4000}" for i, v in enumerate(versions)],
            "version": versions,
            "route": "champion",
            "prediction": [*canary_p, *stable_p],
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": predictions["request_id"],
            "kind": "label",
            "name": "is_fraud",
            "value": [*y, *y],
        }
    )
    out = version_outcomes(predictions, feedback, "revenue", "classification")
    canary, stable = out["2"], out["1"]
    assert canary.wape is not None and stable.wape is not None
    assert canary.wape > 2 * stable.wape  # WAPE of probabilities would roll it back
    cfg = OutcomeGateConfig(min_outcomes=100)
    _, accuracy = outcome_evidence(canary, stable, cfg)
    assert accuracy.name == "ranking_error_ratio" and accuracy.passed is True
    assert accuracy.value is not None and accuracy.value < 0.5
    _, reverse = outcome_evidence(stable, canary, cfg)
    assert reverse.passed is False
    few = VersionOutcomes(MeanStats(0, 0.0, 0.0), 300, 1.0, 3.0, 3, 0.9, "classification")
    _, waiting = outcome_evidence(few, stable, cfg)
    assert waiting.passed is None and "5 positives" in waiting.detail


def test_mean_difference_test_matches_its_closed_form() -> None:
    a, b = MeanStats(400, 10.5, 4.0), MeanStats(400, 10.0, 4.0)
    result = mean_difference_test(a, b, alpha=0.05, mixture_sd=0.1)
    v, tau2 = 4.0 / 400 * 2, (0.1 * 2.0) ** 2
    expected = np.sqrt(v / (v + tau2)) * np.exp(0.25 * tau2 / (2 * v * (v + tau2)))
    assert result.statistic == pytest.approx(expected)
    assert result.estimate == pytest.approx(0.5)
    assert mean_difference_test(MeanStats(1, 0.0, 0.0), b).decision == "continue"


def test_mean_difference_test_stays_valid_when_checked_after_every_batch() -> None:
    rng = np.random.default_rng(5)
    trials, alpha, false_alarms, found = 300, 0.05, 0, 0
    for trial in range(trials):
        for shift, counter in ((0.0, "null"), (0.15, "alt")):
            a_vals: list[float] = []
            b_vals: list[float] = []
            for _ in range(40):  # 40 looks of 50 outcomes a side
                a_vals.extend(rng.normal(10.0 + shift, 1.0, 50))
                b_vals.extend(rng.normal(10.0, 1.0, 50))
                a = MeanStats(len(a_vals), float(np.mean(a_vals)), float(np.var(a_vals, ddof=1)))
                b = MeanStats(len(b_vals), float(np.mean(b_vals)), float(np.var(b_vals, ddof=1)))
                if mean_difference_test(a, b, alpha=alpha).decision == "worse":
                    if counter == "null":
                        false_alarms += 1
                    else:
                        found += 1
                    break
        del trial
    assert false_alarms / trials <= alpha
    assert found / trials >= 0.9


class SimulatedOutcomes:
    """Business outcomes per version growing with each tick (seeded), as the feedback log
    would give them; challenger's mean revenue is ``lift`` times the champion's."""

    def __init__(self, h: Harness, lift: float, seed: int) -> None:
        self.h, self.lift = h, lift
        self.rng = np.random.default_rng(seed)
        self.values: dict[str, list[float]] = {}

    def tick(self, _rollout: Any = None) -> None:
        table = self.h.router.current()
        if table.challenger is None:
            return
        share = table.challenger_weight / 100.0
        for version, n, mean in (
            (table.challenger, int(200 * share), 10.0 * self.lift),
            (table.champion, int(200 * (1 - share)), 10.0),
        ):
            self.values.setdefault(version, []).extend(self.rng.gamma(4.0, mean / 4.0, n))

    def outcomes(self, since: datetime) -> Mapping[str, VersionOutcomes]:
        del since
        return {
            v: VersionOutcomes(MeanStats(len(x), float(np.mean(x)), float(np.var(x, ddof=1))))
            for v, x in self.values.items()
            if len(x) > 1
        }


@pytest.mark.parametrize(("lift", "winner"), [(1.08, "2"), (0.92, "1")])
def test_ab_rollout_promotes_the_significantly_better_version(
    rollout_project: Any, lift: float, winner: str
) -> None:
    h = make_harness(rollout_project, outcomes={"min_outcomes": 200})
    outcomes = SimulatedOutcomes(h, lift, seed=21)
    ctl = h.controller(outcomes=outcomes)
    traffic = h.traffic(seed=22)
    rollout = ctl.start("2", "ab")

    def tick(r: Any) -> None:
        traffic(r)
        outcomes.tick(r)

    final = ctl.run(rollout.id, on_tick=tick)
    assert final.state == ("promoted" if winner == "2" else "rolled_back")
    assert "A/B test" in final.reason
    assert h.registry.alias("champion").version == winner
    assert next(w for kind, w, _ in h.router.calls if kind == "weight") == 50.0
    decided = h.store.events(rollout.id)[-1].evidence["ab_test"]
    assert decided["value"] >= decided["threshold"]


def test_ab_rollout_without_a_difference_keeps_the_champion_at_its_deadline(
    rollout_project: Any,
) -> None:
    h = make_harness(rollout_project, ab_max_duration_s=3600.0)
    outcomes = SimulatedOutcomes(h, 1.0, seed=23)
    ctl = h.controller(outcomes=outcomes)
    traffic = h.traffic(seed=24)
    rollout = ctl.start("2", "ab")
    final = ctl.run(rollout.id, on_tick=lambda r: (traffic(r), outcomes.tick(r)))
    assert final.state == "rolled_back"
    assert "inconclusive" in final.reason


def test_log_outcome_source_reads_the_flushed_logs_since_the_phase_began(tmp_path: Any) -> None:
    from datetime import UTC, timedelta

    from driftloop.clock import SimulatedClock
    from driftloop.rollout.outcomes import LogOutcomeSource
    from driftloop.storage.segments import SegmentLog

    clock = SimulatedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    predictions = SegmentLog(tmp_path / "predictions", 60.0, 1000, clock)
    feedback = SegmentLog(tmp_path / "feedback", 60.0, 1000, clock)

    def served(rid: str, version: str, route: str, at: datetime) -> dict[str, Any]:
        return {
            "served_at": at,
            "request_id": rid,
            "version": version,
            "route": route,
            "prediction": 10.0,
            "f__price": 1.0,
        }

    before, begun = clock.now(), clock.now() + timedelta(hours=1)
    predictions.append(
        [
            served("old", "2", "challenger", before),
            served("a", "1", "champion", begun),
            served("b", "2", "challenger", begun),
            served("c", "2", "shadow", begun),
        ]
    )
    feedback.append(
        [
            {"request_id": rid, "kind": "business", "name": "revenue", "value": v}
            for rid, v in (("old", 99.0), ("a", 5.0), ("b", 7.0), ("c", 50.0))
        ]
        + [
            {"request_id": None, "kind": "business", "name": "revenue", "value": 1.0},
            {"request_id": "b", "kind": "label", "name": "label", "value": 8.0},
        ]
    )
    predictions.flush()
    feedback.flush()

    found = LogOutcomeSource(tmp_path, "revenue").outcomes(begun)
    assert found["1"].business == MeanStats(1, 5.0, 0.0)
    assert found["2"].business == MeanStats(1, 7.0, 0.0)  # not "old" (before), not the shadow
    assert found["2"].labels == 1 and found["2"].wape == pytest.approx(2.0 / 8.0)
    assert LogOutcomeSource(tmp_path / "none", "revenue").outcomes(begun) == {}


def test_log_outcome_source_reads_only_the_days_since_the_phase_began(tmp_path: Any) -> None:
    from datetime import UTC, timedelta

    from driftloop.clock import SimulatedClock
    from driftloop.rollout.outcomes import LogOutcomeSource
    from driftloop.storage.segments import SegmentLog, read_segments

    clock = SimulatedClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    predictions = SegmentLog(tmp_path / "predictions", 60.0, 1000, clock)
    feedback = SegmentLog(tmp_path / "feedback", 60.0, 1000, clock)
    for day, rid in ((0, "early"), (4, "late")):
        clock.set(datetime(2026, 1, 1, 9, 0, tzinfo=UTC) + timedelta(days=day))
        predictions.append(
            [
                {
                    "served_at": clock.now(),
                    "request_id": rid,
                    "version": "2",
                    "route": "challenger",
                    "prediction": 10.0,
                }
            ]
        )
        feedback.append([{"request_id": rid, "kind": "label", "name": "label", "value": 8.0}])
        predictions.flush()
        feedback.flush()
    assert len(read_segments(tmp_path / "predictions")) == 2
    recent = read_segments(tmp_path / "predictions", from_day="2026-01-03")
    assert recent["request_id"].tolist() == ["late"]
    found = LogOutcomeSource(tmp_path, "revenue").outcomes(datetime(2026, 1, 5, tzinfo=UTC))
    assert found["2"].labels == 1  # the late request, labelled; the early one is not read
