"""Canary measurements: histogram arithmetic against worked examples and NumPy, parsing of a
real server's exposition, deltas across restarts, PromQL the source sends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftloop.monitoring.drift import kl_divergence
from driftloop.rollout.metrics import (
    Histogram,
    Snapshot,
    VersionCounts,
    count_above,
    delta,
    histogram_quantile,
    observe_step,
    shadow_summary,
)
from driftloop.rollout.sources import PrometheusMetricsSource, parse_server_metrics
from driftloop.serving.metrics import ServerMetrics

INF = math.inf


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 10 observations <= 1, 20 <= 2, 40 <= 4, 40 in total: rank 0.5 * 40 = 20 is the edge 2;
    # rank 0.75 * 40 = 30 is halfway between 2 and 4 (20 -> 40 observations).
    h = Histogram((1.0, 2.0, 4.0, INF), (10.0, 20.0, 40.0, 40.0))
    assert histogram_quantile(0.5, h) == pytest.approx(2.0)
    assert histogram_quantile(0.75, h) == pytest.approx(3.0)
    assert histogram_quantile(0.1, h) == pytest.approx(0.4)
    overflow = Histogram((1.0, INF), (1.0, 10.0))
    assert histogram_quantile(0.99, overflow) == 1.0  # the +Inf bucket: last finite edge
    assert histogram_quantile(0.99, Histogram()) is None


def test_count_above_inverts_the_quantile_on_the_same_histogram() -> None:
    rng = np.random.default_rng(0)
    edges = (0.5, 1, 2, 3, 5, 7.5, 10, 25, 50, INF)
    values = rng.lognormal(np.log(2.0), 0.6, 20_000)
    cum = tuple(float((values <= e).sum()) for e in edges)
    h = Histogram(tuple(float(e) for e in edges), cum)
    for q in (0.5, 0.9, 0.99):
        value = histogram_quantile(q, h)
        assert value is not None
        assert count_above(value, h) == pytest.approx((1 - q) * 20_000, rel=1e-9)
    # and against the data: the interpolated p99 is near NumPy's within its bucket
    p99 = histogram_quantile(0.99, h)
    assert p99 == pytest.approx(float(np.quantile(values, 0.99)), rel=0.15)


def _served(model: str = "m") -> ServerMetrics:
    metrics = ServerMetrics(model, prediction_buckets=(1.0, 10.0, 100.0))
    for i in range(100):
        metrics.observe("1", "champion", "v2", np.array([5.0]), 0.001 + i * 1e-5)
    for _ in range(10):
        metrics.observe("2", "challenger", "v2", np.array([50.0, 50.0]), 0.004)
    metrics.errors.labels(model, "2", "model_error").inc(3)
    metrics.errors.labels(model, "2", "bad_request").inc(7)  # the client's fault: not counted
    metrics.observe_shadow("2", np.array([5.2, 8.0]), np.array([5.0, 5.0]))
    return metrics


def test_parse_server_metrics_reads_what_the_server_exposes() -> None:
    snap = parse_server_metrics(_served().render().decode(), "m")
    v1, v2 = snap.get("1"), snap.get("2")
    assert (v1.requests, v1.errors, v2.requests, v2.errors) == (100.0, 0.0, 10.0, 3.0)
    assert v1.latency.total == 100.0 and v1.latency.edges[-1] == INF
    assert v2.predictions.counts().tolist() == [0.0, 0.0, 20.0, 0.0]
    assert (v2.shadow_ok, v2.shadow_errors) == (2.0, 0.0)
    summary = shadow_summary(v2, tolerance=0.1)
    assert summary.answers == 2 and summary.agreement == pytest.approx(0.5)
    assert parse_server_metrics(_served().render().decode(), "other").versions == {}


def test_delta_subtracts_and_restarts_the_window_after_a_counter_reset() -> None:
    before = parse_server_metrics(_served().render().decode(), "m")
    later = _served()
    later.observe("1", "champion", "v2", np.array([5.0]), 0.001)
    window = delta(parse_server_metrics(later.render().decode(), "m"), before)
    assert window.get("1").requests == 1.0 and window.get("1").latency.total == 1.0
    assert window.get("2").requests == 0.0
    restarted = parse_server_metrics(ServerMetrics("m").render().decode(), "m")
    fresh = Snapshot({"1": VersionCounts(requests=4.0)})
    assert delta(fresh, before).get("1").requests == 4.0  # 4 < 100: counters began again
    assert delta(restarted, before).versions == {}


def test_snapshot_round_trips_through_json() -> None:
    snap = parse_server_metrics(_served().render().decode(), "m")
    assert Snapshot.from_json(snap.to_json()) == snap


def test_observe_step_counts_requests_errors_slow_requests_and_kl() -> None:
    snap = parse_server_metrics(_served().render().decode(), "m")
    obs = observe_step(snap, canary="2", stable="1", elapsed_s=42.0)
    assert (obs.canary_requests, obs.canary_errors) == (13, 3)
    assert (obs.stable_requests, obs.stable_errors) == (100, 0)
    assert obs.canary_slow == 10  # every canary answer (4 ms) is above the stable p99
    assert obs.canary_p99_s is not None and obs.stable_p99_s is not None
    assert obs.canary_p99_s > obs.stable_p99_s
    expected = kl_divergence([0, 0, 20, 0], [0, 100, 0, 0], smoothing=0.5)
    assert obs.kl == pytest.approx(expected)
    assert obs.elapsed_s == 42.0


def test_prometheus_source_reads_every_instance_series_within_the_model() -> None:
    source = PrometheusMetricsSource("http://127.0.0.1:9090/", "shop", '{job="driftloop"}')
    queries = source.queries()
    assert queries["requests"] == 'driftloop_requests_total{model="shop", job="driftloop"}'
    assert 'kind="model_error"' in queries["errors"]
    assert queries["latency"] == (
        'driftloop_request_latency_seconds_bucket{model="shop", job="driftloop"}'
    )


Rows = list[tuple[dict[str, str], float]]


class ScriptedPrometheus(PrometheusMetricsSource):
    """The source with its HTTP query replaced by scripted instant-query answers."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9", "shop")
        self.answers: dict[str, Rows] = {}

    def query(self, promql: str) -> Rows:
        key = next(k for k, q in self.queries().items() if q == promql)
        return self.answers.get(key, [])

    def set(
        self,
        requests: dict[str, float],
        errors: dict[str, float] | None = None,
        le: dict[tuple[str, str], float] | None = None,
    ) -> None:
        """Per instance ("a", "b") the v2 requests, errors and +Inf / 0.01 latency buckets."""

        def lab(instance: str, **extra: str) -> dict[str, str]:
            return {"model": "shop", "version": "2", "instance": instance, **extra}

        self.answers = {
            "requests": [(lab(i, endpoint="v2"), n) for i, n in requests.items()],
            "errors": [(lab(i, kind="model_error"), n) for i, n in (errors or {}).items()],
            "latency": [(lab(i, le=edge), n) for (i, edge), n in (le or {}).items()],
        }


def test_prometheus_source_sums_instances_and_merges_equal_bucket_edges() -> None:
    source = ScriptedPrometheus()
    # Prometheus 2 keeps `le` as exposed, so two instances may spell one edge two ways
    buckets = {("a", "0.01"): 4.0, ("a", "+Inf"): 10.0, ("b", "1e-2"): 2.0, ("b", "+Inf"): 5.0}
    source.set({"a": 10, "b": 5}, {"b": 1}, buckets)
    v2 = source.snapshot().get("2")
    assert (v2.requests, v2.errors) == (15.0, 1.0)
    assert v2.latency.edges == (0.01, float("inf")) and v2.latency.cumulative == (6.0, 15.0)


def test_a_restarted_instance_does_not_make_the_sums_fall() -> None:
    source = ScriptedPrometheus()
    source.set({"a": 100, "b": 80}, {"b": 4}, {("b", "+Inf"): 80})
    base = source.snapshot()
    source.set({"a": 130, "b": 7}, {"b": 1}, {("b", "+Inf"): 7})  # b restarted: 0 -> 7
    later = source.snapshot()
    window = later.get("2").minus(base.get("2"))
    assert (window.requests, window.errors) == (37.0, 1.0)
    assert window.latency.total == 7.0
    source.set({"a": 131, "b": 9}, {"b": 1}, {("b", "+Inf"): 9})  # the offset stays
    assert source.snapshot().get("2").requests == 131 + 80 + 9


def test_a_vanished_instance_keeps_what_it_counted() -> None:
    source = ScriptedPrometheus()
    source.set({"a": 100, "b": 80}, {"b": 4})
    base = source.snapshot()
    source.set({"a": 120, "c": 3})  # pod b gone (stale), pod c new
    window = source.snapshot().get("2").minus(base.get("2"))
    assert (window.requests, window.errors) == (23.0, 0.0)
