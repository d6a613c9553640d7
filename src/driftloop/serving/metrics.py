"""Prometheus metrics of one server, in a registry of its own (``/metrics``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from driftloop.serving.routing import RouteTable

__all__ = [
    "DIVERGENCE_BUCKETS",
    "LATENCY_BUCKETS_S",
    "ServerMetrics",
    "divergence",
    "observe_many",
]

LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
DIVERGENCE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_PREDICTION_BUCKETS = tuple(float(v) for v in np.geomspace(0.5, 1000.0, 12).round(3))


class ServerMetrics:
    """Requests, errors, latency and prediction values per version; route weights."""

    def __init__(self, model: str, prediction_buckets: Sequence[float] | None = None) -> None:
        self.model = model
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.predictions = Counter(
            "driftloop_predictions",
            "Predictions answered (rows).",
            ["model", "version", "route"],
            registry=r,
        )
        self.requests = Counter(
            "driftloop_requests",
            "Requests answered.",
            ["model", "version", "endpoint"],
            registry=r,
        )
        self.errors = Counter(
            "driftloop_errors",
            "Requests that failed, by version (empty before routing).",
            ["model", "version", "kind"],
            registry=r,
        )
        self.latency = Histogram(
            "driftloop_request_latency_seconds",
            "Server-side latency of answered requests.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        buckets = tuple(sorted(set(prediction_buckets or DEFAULT_PREDICTION_BUCKETS)))
        self.prediction_value = Histogram(
            "driftloop_prediction_value",
            "Predicted values (bins from the champion's profile).",
            ["model", "version"],
            buckets=buckets,
            registry=r,
        )
        self.route_weight = Gauge(
            "driftloop_route_weight",
            "Percent of entities routed to a version.",
            ["model", "version", "alias"],
            registry=r,
        )
        self.shadow = Counter(
            "driftloop_shadow_predictions",
            "Challenger answers computed in shadow mode.",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.shadow_divergence = Histogram(
            "driftloop_shadow_divergence",
            "Shadow answer vs the champion's for the same row: |s - c| / max(|c|, 1).",
            ["model", "version"],
            buckets=DIVERGENCE_BUCKETS,
            registry=r,
        )
        self.log_pending = Gauge(
            "driftloop_prediction_log_pending_rows",
            "Rows buffered, not yet flushed.",
            registry=r,
        )

    def set_routes(self, routes: RouteTable) -> None:
        self.route_weight.clear()
        self.route_weight.labels(self.model, routes.champion, "champion").set(
            100.0 - routes.challenger_weight
        )
        if routes.challenger is not None:
            self.route_weight.labels(self.model, routes.challenger, "challenger").set(
                routes.challenger_weight
            )

    def observe(
        self, version: str, route: str, endpoint: str, values: np.ndarray, seconds: float
    ) -> None:
        key = (version, route, endpoint)
        children = self._children.get(key)
        if children is None:  # label lookups cost more than the increments: do them once
            children = (
                self.requests.labels(self.model, version, endpoint),
                self.predictions.labels(self.model, version, route),
                self.latency.labels(self.model, version),
                self.prediction_value.labels(self.model, version),
            )
            self._children[key] = children
        requests, predictions, latency, hist = children
        requests.inc()
        predictions.inc(len(values))
        latency.observe(seconds)
        observe_many(hist, values)

    def observe_shadow(self, version: str, shadow: np.ndarray, champion: np.ndarray) -> None:
        """Count shadow answers and how far each is from the champion's answer."""
        self.shadow.labels(self.model, version, "ok").inc(len(shadow))
        observe_many(
            self.shadow_divergence.labels(self.model, version), divergence(shadow, champion)
        )

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data


def observe_many(hist: Any, values: np.ndarray) -> None:
    """``hist.observe(v)`` for every value, counted per bucket in one NumPy pass for a
    batch (a 100-row request made 100 locked Python bucket scans)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(flat) <= 4:
        for v in flat.tolist():
            hist.observe(v)
        return
    bounds = np.asarray(hist._upper_bounds, dtype=np.float64)  # ends with +inf
    # observe() counts a value in the first bucket whose bound is >= it; NaN in none
    counts = np.bincount(np.searchsorted(bounds, flat, side="left"), minlength=len(bounds) + 1)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as value by value
        hist._sum.inc(float(flat.sum()))
    for i in np.flatnonzero(counts[: len(bounds)]).tolist():
        hist._buckets[i].inc(int(counts[i]))


def divergence(shadow: np.ndarray, champion: np.ndarray) -> np.ndarray:
    """Per-row |shadow - champion| / max(|champion|, 1): relative for large values, absolute
    for values below 1 (probabilities, near-zero counts), so no division blows up."""
    s = np.asarray(shadow, dtype=np.float64).reshape(-1)
    c = np.asarray(champion, dtype=np.float64).reshape(-1)
    out: np.ndarray = np.abs(s - c) / np.maximum(np.abs(c), 1.0)
    return out
