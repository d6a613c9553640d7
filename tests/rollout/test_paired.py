"""Paired evidence for slow labels: shadow answers joined to labels, the paired gate, and a
seeded rollout of a drift retrain decided in shadow before its own slice is labelled."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.rollout.conftest import Harness, make_harness

from driftloop.config.rollout import PairedConfig
from driftloop.registry.base import CHAMPION
from driftloop.rollout.outcomes import (
    VersionOutcomes,
    paired_evidence,
    row_losses,
    version_outcomes,
)
from driftloop.rollout.sequential import MeanStats


def test_shadow_answers_and_labels_give_per_request_loss_differences() -> None:
    predictions = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "b", "c", "d"],
            "version": ["1", "2", "1", "2", "2", "1"],
            "route": ["champion", "shadow", "champion", "shadow", "challenger", "champion"],
            "prediction": [10.0, 11.0, 20.0, 26.0, 30.0, 40.0],
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d"],
            "kind": "label",
            "name": "label",
            "value": [12.0, 25.0, 31.0, 41.0],
        }
    )
    out = version_outcomes(predictions, feedback, "revenue")
    # a: |11-12| - |10-12| = -1; b: |26-25| - |20-25| = -4; c and d have no pair
    assert out["2"].paired == {"1": MeanStats(2, -2.5, 4.5)}
    assert out["2"].labels == 1  # its own served answer (c) still counts for the slice gate
    assert out["1"].paired == {}


def test_log_loss_rows_match_the_definition() -> None:
    y, p = np.array([1.0, 0.0]), np.array([0.8, 0.3])
    assert row_losses(y, p, "classification").tolist() == pytest.approx(
        [-math.log(0.8), -math.log(0.7)]
    )
    assert row_losses(y, p, "regression").tolist() == pytest.approx([0.2, 0.3])


@pytest.mark.parametrize(
    ("diffs", "passed"),
    [
        (MeanStats(2000, -0.05, 0.04), True),  # lower loss on the same requests: better
        (MeanStats(2000, 0.05, 0.04), False),
        (MeanStats(2000, 0.0005, 0.04), None),
        (MeanStats(50, -0.5, 0.04), None),  # below min_pairs
    ],
)
def test_paired_gate_passes_fails_or_waits(diffs: MeanStats, passed: bool | None) -> None:
    canary = VersionOutcomes(MeanStats(0, 0.0, 0.0), paired={"1": diffs})
    evidence, _ = paired_evidence(canary, "1", PairedConfig(), "classification")
    assert evidence.passed is passed
    assert evidence.name == "paired_loss"
    assert "log loss" in evidence.detail
    if diffs.n < 100:
        assert "needs 100 pairs" in evidence.detail


class RetrainedOnDrift:
    """The real registry, with the challenger tagged as the loop tags a retrain on drift."""

    def __init__(self, registry: Any, version: str) -> None:
        self._registry, self._version = registry, version

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def get(self, version: str) -> Any:
        found = self._registry.get(version)
        if found.version == self._version:
            return replace(found, tags={**found.tags, "driftloop.trigger": "drift"})
        return found


@dataclass
class SlowLabels:
    """Labels that arrive ``delay_ticks`` after the request: only shadow pairs judge early.

    Each tick the champion's requests (mirrored to the canary in shadow) get per-request
    log-loss differences drawn with mean ``effect`` (negative: the canary is better).
    """

    h: Harness
    effect: float
    delay_ticks: int = 5
    seed: int = 0
    ticks: int = 0
    pending: list[np.ndarray] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def tick(self, _rollout: Any = None) -> None:
        table = self.h.router.current()
        if table.shadow and table.challenger is not None:
            share = 1.0 - table.challenger_weight / 100.0
            self.pending.append(self.rng.normal(self.effect, 0.3, int(400 * share)))
        if len(self.pending) > self.delay_ticks:
            self.arrived.extend(self.pending.pop(0).tolist())

    def outcomes(self, since: datetime) -> Mapping[str, VersionOutcomes]:
        del since
        if not self.arrived:
            return {}
        return {
            "2": VersionOutcomes(MeanStats(0, 0.0, 0.0), paired={"1": MeanStats.of(self.arrived)})
        }


def _run(rollout_project: Any, effect: float) -> tuple[Harness, Any, SlowLabels]:
    h = make_harness(rollout_project, max_duration_s=600.0)
    labels = SlowLabels(h, effect, seed=31)
    ctl = h.controller(registry=RetrainedOnDrift(h.registry, "2"), outcomes=labels)
    traffic = h.traffic(seed=32, canary_shift=1.5)  # KL well above kl_max: a retrain
    rollout = ctl.start("2")

    def tick(r: Any) -> None:
        traffic(r)
        labels.tick(r)

    final = ctl.run(rollout.id, on_tick=tick)
    return h, final, labels


def test_drift_retrain_with_lower_paired_loss_is_promoted_on_shadow_labels(
    rollout_project: Any,
) -> None:
    h, final, _ = _run(rollout_project, effect=-0.05)
    assert final.state == "promoted", final.reason
    assert "explained by labelled accuracy" in final.reason
    assert h.registry.alias(CHAMPION).version == "2"
    steps = [c for c in h.router.calls if c[0] == "weight"]
    assert steps[:2] == [("weight", 10.0, True), ("weight", 50.0, True)]  # mirrored to pair
    event = h.store.events(final.id)[-1]
    assert event.evidence["paired_loss"]["passed"] is True
    assert event.evidence["wape_ratio"]["passed"] is None  # its own slice: no labels yet


def test_drift_retrain_with_higher_paired_loss_is_rolled_back(rollout_project: Any) -> None:
    h, final, _ = _run(rollout_project, effect=0.05)
    assert final.state == "rolled_back"
    assert "paired labels: canary loss significantly higher" in final.reason
    assert h.registry.alias(CHAMPION).version == "1"


def test_paired_evidence_can_be_switched_off(rollout_project: Any) -> None:
    h = make_harness(rollout_project, paired={"enabled": False})
    ctl = h.controller()
    final = ctl.run(ctl.start("2").id, on_tick=h.traffic(seed=33))
    assert final.state == "promoted"
    assert next(c for c in h.router.calls if c[0] == "weight") == ("weight", 10.0, False)
    assert "paired_loss" not in h.store.events(final.id)[-1].evidence
