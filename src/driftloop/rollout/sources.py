"""Where canary counters come from: a driftloop server's ``/metrics`` page, or Prometheus.

Both give the same cumulative per-version counters (see :mod:`driftloop.rollout.metrics`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from driftloop.errors import MetricsUnavailable
from driftloop.rollout.metrics import Histogram, Snapshot, VersionCounts, edge_value

__all__ = [
    "MetricsSource",
    "PrometheusMetricsSource",
    "ServerMetricsSource",
    "parse_server_metrics",
]


# -- parsing the server's /metrics ---------------------------------------------------------
def _hist_from_samples(rows: Iterable[tuple[float, float]]) -> Histogram:
    ordered = sorted(rows)
    return Histogram(tuple(e for e, _ in ordered), tuple(c for _, c in ordered))


def parse_server_metrics(text: str, model: str) -> Snapshot:
    """A snapshot from the Prometheus text exposition of a driftloop server (``/metrics``)."""
    requests: dict[str, float] = {}
    errors: dict[str, float] = {}
    shadow_ok: dict[str, float] = {}
    shadow_err: dict[str, float] = {}
    buckets: dict[str, dict[str, list[tuple[float, float]]]] = {
        "latency": {},
        "predictions": {},
        "divergence": {},
    }
    names = {
        "driftloop_request_latency_seconds": "latency",
        "driftloop_prediction_value": "predictions",
        "driftloop_shadow_divergence": "divergence",
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model:
                continue
            version = labels.get("version", "")
            if not version:
                continue
            if sample.name == "driftloop_requests_total":
                requests[version] = requests.get(version, 0.0) + sample.value
            elif sample.name == "driftloop_errors_total" and labels.get("kind") == "model_error":
                errors[version] = errors.get(version, 0.0) + sample.value
            elif sample.name == "driftloop_shadow_predictions_total":
                target = shadow_ok if labels.get("outcome") == "ok" else shadow_err
                target[version] = target.get(version, 0.0) + sample.value
            elif sample.name.endswith("_bucket") and family.name in names:
                key = names[family.name]
                edge = edge_value(labels["le"])
                buckets[key].setdefault(version, []).append((edge, sample.value))
    return _snapshot(requests, errors, shadow_ok, shadow_err, buckets)


def _snapshot(
    requests: Mapping[str, float],
    errors: Mapping[str, float],
    shadow_ok: Mapping[str, float],
    shadow_err: Mapping[str, float],
    buckets: Mapping[str, Mapping[str, list[tuple[float, float]]]],
) -> Snapshot:
    versions = set(requests) | set(errors) | set(shadow_ok) | set(shadow_err)
    for per_version in buckets.values():
        versions |= set(per_version)
    out = {}
    for v in versions:
        out[v] = VersionCounts(
            requests=requests.get(v, 0.0),
            errors=errors.get(v, 0.0),
            latency=_hist_from_samples(buckets["latency"].get(v, [])),
            predictions=_hist_from_samples(buckets["predictions"].get(v, [])),
            shadow_ok=shadow_ok.get(v, 0.0),
            shadow_errors=shadow_err.get(v, 0.0),
            divergence=_hist_from_samples(buckets["divergence"].get(v, [])),
        )
    return Snapshot(out)


# -- sources ---------------------------------------------------------------------------------
class MetricsSource(Protocol):
    """Cumulative counters of every version, now."""

    def snapshot(self) -> Snapshot: ...


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data: bytes = resp.read()
            return data
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MetricsUnavailable(f"cannot read {url}: {reason}") from None


class ServerMetricsSource:
    """The driftloop server's own counters, read from its ``/metrics`` page."""

    def __init__(self, base_url: str, model: str, timeout_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/metrics"
        self.model = model
        self.timeout_s = timeout_s

    def snapshot(self) -> Snapshot:
        return parse_server_metrics(_get(self.url, self.timeout_s).decode(), self.model)

    def __repr__(self) -> str:
        return f"ServerMetricsSource({self.url!r})"


class PrometheusMetricsSource:
    """The same counters summed over every server instance, from PromQL instant queries.

    ``selector`` narrows the series (for example ``job="driftloop"``); the model label is
    always added. The queries fetch each instance's series as they are, and the sums by
    version (and ``le`` for histograms) are made here, after a per-series reset correction,
    so one Deployment per version or several replicas both work:

    * an instance that restarts begins its counters at 0 again; a series whose value went
      down since the last snapshot keeps what it had counted before as an offset (as
      Prometheus' ``increase`` does), so the sum never falls when one replica restarts;
    * a series that disappears (a pod gone, its series stale) keeps its last value.

    A restart is seen only if the series is read lower than before, so increments counted
    after this source's last look and lost in a restart are not recovered, and a restarted
    series that already counted past its old value by the next look is not detected; check
    more often than instances restart. The correction lives in this object: a controller
    resumed in a new process starts it afresh from its stored baseline.
    """

    def __init__(self, url: str, model: str, selector: str = "", timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        extra = selector.strip().strip("{}").strip()
        self.matchers = f'model="{model}"' + (f", {extra}" if extra else "")
        self.timeout_s = timeout_s
        # (query key, series labels) -> (last value read, offset from earlier resets)
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]] = {}

    def queries(self) -> dict[str, str]:
        """One instant vector per counter family: every instance's series, not yet summed."""
        m = self.matchers
        return {
            "requests": f"driftloop_requests_total{{{m}}}",
            "errors": f'driftloop_errors_total{{{m}, kind="model_error"}}',
            "shadow": f"driftloop_shadow_predictions_total{{{m}}}",
            "latency": f"driftloop_request_latency_seconds_bucket{{{m}}}",
            "predictions": f"driftloop_prediction_value_bucket{{{m}}}",
            "divergence": f"driftloop_shadow_divergence_bucket{{{m}}}",
        }

    def corrected(
        self, key: str, rows: list[tuple[dict[str, str], float]]
    ) -> list[tuple[dict[str, str], float]]:
        """``rows`` of query ``key`` with resets undone and vanished series kept."""
        out = []
        seen = set()
        for labels, value in rows:
            ident = (key, tuple(sorted(labels.items())))
            seen.add(ident)
            last, offset = self._series.get(ident, (0.0, 0.0))
            if value < last:  # the instance restarted: what it counted before still counts
                offset += last
            self._series[ident] = (value, offset)
            out.append((labels, value + offset))
        for ident, (last, offset) in self._series.items():
            if ident[0] == key and ident not in seen:
                out.append((dict(ident[1]), last + offset))
        return out

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            doc = json.loads(_get(url, self.timeout_s))
        except json.JSONDecodeError as exc:
            raise MetricsUnavailable(f"Prometheus at {self.url} answered non-JSON: {exc}") from None
        if doc.get("status") != "success":
            raise MetricsUnavailable(
                f"Prometheus query {promql!r} failed: {doc.get('error', 'unknown error')}"
            )
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def snapshot(self) -> Snapshot:
        q = self.queries()
        answers = {key: self.corrected(key, self.query(promql)) for key, promql in q.items()}

        def by_version(rows: list[tuple[dict[str, str], float]]) -> dict[str, float]:
            out: dict[str, float] = {}
            for labels, value in rows:
                if labels.get("version"):
                    out[labels["version"]] = out.get(labels["version"], 0.0) + value
            return out

        requests = by_version(answers["requests"])
        errors = by_version(answers["errors"])
        shadow_ok = by_version([r for r in answers["shadow"] if r[0].get("outcome") == "ok"])
        shadow_err = by_version([r for r in answers["shadow"] if r[0].get("outcome") != "ok"])
        buckets: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for key in ("latency", "predictions", "divergence"):
            summed: dict[tuple[str, float], float] = {}
            for labels, value in answers[key]:
                if labels.get("version") and "le" in labels:
                    at = (labels["version"], edge_value(labels["le"]))
                    summed[at] = summed.get(at, 0.0) + value
            per: dict[str, list[tuple[float, float]]] = {}
            for (version, edge), value in summed.items():
                per.setdefault(version, []).append((edge, value))
            buckets[key] = per
        return _snapshot(requests, errors, shadow_ok, shadow_err, buckets)

    def __repr__(self) -> str:
        return f"PrometheusMetricsSource({self.url!r}, {self.matchers!r})"
