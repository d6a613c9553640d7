"""Canary measurements: cumulative per-version counters, their deltas, and a step observation.

A metrics source answers one question: "the cumulative counters of each version, now". Both
sources give the same counters (requests, model errors, latency and prediction histograms,
shadow answers and their divergence): the driftloop server's own ``/metrics`` page, or a
Prometheus server by PromQL. The rollout keeps the snapshot taken when a step began and
judges the difference, so restarts of the rollout process lose nothing and a server restart
(counters back to 0) only restarts the step's window.

This module is pure: snapshots in, a :class:`StepObservation` out; the sources that take
the snapshots are in :mod:`driftloop.rollout.sources`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftloop.monitoring.drift import kl_divergence
from driftloop.rollout.judge import StepObservation

__all__ = [
    "Histogram",
    "ShadowSummary",
    "Snapshot",
    "VersionCounts",
    "count_above",
    "delta",
    "edge_value",
    "histogram_quantile",
    "observe_step",
    "shadow_summary",
]


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative histogram: ``cumulative[i]`` observations <= ``edges[i]``; the last edge
    is ``inf`` and its count the total."""

    edges: tuple[float, ...] = ()
    cumulative: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.cumulative):
            raise ValueError(
                f"edges ({len(self.edges)}) and cumulative ({len(self.cumulative)}) differ in "
                "length"
            )
        if self.edges and self.edges[-1] != math.inf:
            raise ValueError("the last histogram edge must be +Inf")

    @property
    def total(self) -> float:
        return self.cumulative[-1] if self.cumulative else 0.0

    def counts(self) -> np.ndarray:
        """Per-bucket (non-cumulative) counts."""
        cum = np.asarray(self.cumulative, dtype=np.float64)
        return np.diff(cum, prepend=0.0).clip(min=0.0)

    def minus(self, base: Histogram) -> Histogram:
        if not base.edges or base.edges != self.edges:
            return self
        diff = tuple(max(a - b, 0.0) for a, b in zip(self.cumulative, base.cumulative, strict=True))
        return Histogram(self.edges, diff)


@dataclass(frozen=True, slots=True)
class VersionCounts:
    """Cumulative counters of one version."""

    requests: float = 0.0  # answered
    errors: float = 0.0  # failed inside the model (5xx)
    latency: Histogram = Histogram()
    predictions: Histogram = Histogram()
    shadow_ok: float = 0.0
    shadow_errors: float = 0.0
    divergence: Histogram = Histogram()

    def minus(self, base: VersionCounts) -> VersionCounts:
        reset = self.requests < base.requests or self.errors < base.errors
        if reset:  # the server restarted: its counters began again at 0
            return self
        return VersionCounts(
            requests=self.requests - base.requests,
            errors=self.errors - base.errors,
            latency=self.latency.minus(base.latency),
            predictions=self.predictions.minus(base.predictions),
            shadow_ok=max(self.shadow_ok - base.shadow_ok, 0.0),
            shadow_errors=max(self.shadow_errors - base.shadow_errors, 0.0),
            divergence=self.divergence.minus(base.divergence),
        )

    def to_json(self) -> dict[str, Any]:
        def hist(h: Histogram) -> list[list[float | str]]:
            return [[_edge_out(e) for e in h.edges], list(h.cumulative)]

        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency": hist(self.latency),
            "predictions": hist(self.predictions),
            "shadow_ok": self.shadow_ok,
            "shadow_errors": self.shadow_errors,
            "divergence": hist(self.divergence),
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> VersionCounts:
        def hist(value: Any) -> Histogram:
            edges, cum = value
            return Histogram(tuple(edge_value(e) for e in edges), tuple(float(c) for c in cum))

        return VersionCounts(
            float(doc["requests"]),
            float(doc["errors"]),
            hist(doc["latency"]),
            hist(doc["predictions"]),
            float(doc["shadow_ok"]),
            float(doc["shadow_errors"]),
            hist(doc["divergence"]),
        )


def _edge_out(edge: float) -> float | str:
    return "+Inf" if edge == math.inf else edge


def edge_value(edge: float | str) -> float:
    """A histogram edge from text: a number or ``+Inf``."""
    return math.inf if edge == "+Inf" else float(edge)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Cumulative counters of every version a source reports, at one moment."""

    versions: Mapping[str, VersionCounts] = field(default_factory=dict)

    def get(self, version: str) -> VersionCounts:
        return self.versions.get(version, VersionCounts())

    def to_json(self) -> dict[str, Any]:
        return {v: c.to_json() for v, c in sorted(self.versions.items())}

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> Snapshot:
        return Snapshot({v: VersionCounts.from_json(c) for v, c in doc.items()})


def delta(now: Snapshot, base: Snapshot) -> Snapshot:
    """What happened between ``base`` and ``now``, version by version."""
    return Snapshot({v: c.minus(base.get(v)) for v, c in now.versions.items()})


# -- pure statistics on histograms ---------------------------------------------------------
def histogram_quantile(q: float, hist: Histogram) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket holding the
    q-th observation (from 0 for the first bucket); the last finite edge if it falls in +Inf.
    None without observations."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q!r}")
    total = hist.total
    if total <= 0:
        return None
    rank = q * total
    lower_edge, lower_count = 0.0, 0.0
    for edge, count in zip(hist.edges, hist.cumulative, strict=True):
        if count >= rank:
            if edge == math.inf:
                return lower_edge
            if count == lower_count:
                return edge
            return lower_edge + (edge - lower_edge) * (rank - lower_count) / (count - lower_count)
        lower_edge, lower_count = edge, count
    return lower_edge


def count_above(value: float, hist: Histogram) -> float:
    """How many observations exceed ``value``, interpolating linearly inside its bucket the
    same way :func:`histogram_quantile` does (so on identical histograms the count above the
    interpolated p99 is 1% of the total)."""
    total = hist.total
    if total <= 0:
        return 0.0
    lower_edge, lower_count = 0.0, 0.0
    for edge, count in zip(hist.edges, hist.cumulative, strict=True):
        if value < edge:
            if edge == math.inf:
                return total - lower_count
            below = lower_count + (count - lower_count) * (value - lower_edge) / (edge - lower_edge)
            return max(total - below, 0.0)
        lower_edge, lower_count = edge, count
    return 0.0


def _prediction_kl(canary: Histogram, stable: Histogram) -> float | None:
    if canary.total <= 0 or stable.total <= 0 or canary.edges != stable.edges:
        return None
    return kl_divergence(canary.counts(), stable.counts(), smoothing=0.5)


def _aligned_counts(canary: Histogram, stable: Histogram) -> tuple[tuple[float, ...] | None, ...]:
    if canary.total <= 0 or stable.total <= 0 or canary.edges != stable.edges:
        return None, None
    return tuple(canary.counts().tolist()), tuple(stable.counts().tolist())


def observe_step(
    window: Snapshot,
    canary: str,
    stable: str,
    elapsed_s: float,
    slack_s: float = 0.0,
    p99_ratios: tuple[float, float] | None = None,
) -> StepObservation:
    """The judge's view of a step from the counters' growth since the step began.

    ``canary_slow`` counts canary requests slower than the stable's p99 plus ``slack_s``
    (with a slack the latency test is conservative: fewer than 1% exceed on equal versions).
    With ``p99_ratios`` (promote, rollback), the canary requests slower than each ratio x
    the stable's p99 (and its p99 + ``slack_s``) are counted for the judge's p99 tests.
    """
    c, s = window.get(canary), window.get(stable)
    c_total = round(c.requests + c.errors)
    s_total = round(s.requests + s.errors)
    stable_p99 = histogram_quantile(0.99, s.latency)
    canary_p99 = histogram_quantile(0.99, c.latency)
    slow = 0
    over: list[int | None] = [None, None]
    if stable_p99 is not None:
        slow = min(round(count_above(stable_p99 + slack_s, c.latency)), c_total)
        if p99_ratios is not None and stable_p99 > 0:
            over = [
                min(
                    round(count_above(max(stable_p99 * r, stable_p99 + slack_s), c.latency)),
                    c_total,
                )
                for r in p99_ratios
            ]
    canary_bins, stable_bins = _aligned_counts(c.predictions, s.predictions)
    shadow_answers = round(c.shadow_ok + c.shadow_errors)
    return StepObservation(
        canary_requests=c_total,
        canary_errors=min(round(c.errors), c_total),
        stable_requests=s_total,
        stable_errors=min(round(s.errors), s_total),
        canary_slow=slow,
        canary_p99_s=canary_p99,
        stable_p99_s=stable_p99 if stable_p99 else None,
        kl=_prediction_kl(c.predictions, s.predictions),
        elapsed_s=max(elapsed_s, 0.0),
        canary_over_promote_p99=over[0],
        canary_over_rollback_p99=over[1],
        canary_predictions=canary_bins,
        stable_predictions=stable_bins,
        shadow_answers=shadow_answers,
        shadow_errors=min(round(c.shadow_errors), shadow_answers),
    )


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    """Challenger answers computed in shadow: how many, failures, agreement with champion."""

    answers: int
    errors: int
    agreement: float | None  # share with divergence <= tolerance
    median_divergence: float | None


def shadow_summary(counts: VersionCounts, tolerance: float) -> ShadowSummary:
    """Agreement = share of shadow answers within ``tolerance`` of the champion's."""
    hist = counts.divergence
    agreement = None
    if hist.total > 0:
        agreement = 1.0 - count_above(tolerance, hist) / hist.total
    return ShadowSummary(
        round(counts.shadow_ok),
        round(counts.shadow_errors),
        agreement,
        histogram_quantile(0.5, hist),
    )
