"""Drift and accuracy gauges inside the server, from mergeable per-day sketches.

Each flushed prediction batch is counted into its version's sketches for its event day
(off the request path: the log flusher calls this); labels from the feedback endpoint
are matched to predictions by request id. At scrape time the days of the last window
are merged and judged with the same ``assess_version`` that ``driftloop monitor`` uses.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftloop.config import MonitoringConfig
from driftloop.monitoring.assess import AccuracyStats, VersionAssessment, assess_version
from driftloop.monitoring.profile import ReferenceProfile
from driftloop.monitoring.sketch import BinnedSketch

__all__ = ["LiveMonitor"]

MAX_AWAITING = 200_000  # predictions kept for labels that have not come yet
MAX_RECENT = 200_000  # request ids remembered for /v1/feedback's "matched" answer


@dataclass
class _Day:
    features: dict[str, BinnedSketch]
    prediction: BinnedSketch
    accuracy: AccuracyStats = field(default_factory=AccuracyStats)


class LiveMonitor(Collector):
    """Per-version, per-event-day sketches and the gauges computed from them."""

    def __init__(self, model: str, cfg: MonitoringConfig, metric: str = "wape") -> None:
        self.model = model
        self.cfg = cfg
        self.metric = metric  # the accuracy metric (ACCURACY_METRICS of the task)
        self._lock = threading.Lock()
        self._references: dict[str, tuple[ReferenceProfile, float, float]] = {}
        self._days: dict[tuple[str, date], _Day] = {}
        self._awaiting: OrderedDict[str, tuple[str, date, float]] = OrderedDict()
        self._early_labels: OrderedDict[str, float] = OrderedDict()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._latest: date | None = None

    def set_reference(
        self, version: str, profile: ReferenceProfile, reference: float, rate: float = math.nan
    ) -> None:
        """The version's profile, holdout accuracy and (classification) positive rate."""
        with self._lock:
            self._references[version] = (profile, reference, rate)

    def _day(self, version: str, day: date) -> _Day | None:
        key = (version, day)
        if key not in self._days:
            ref = self._references.get(version)
            if ref is None:
                return None
            profile = ref[0]
            self._days[key] = _Day(
                {n: BinnedSketch(c.edges) for n, c in profile.features.items()
                 if n not in self.cfg.exclude_features},
                BinnedSketch(profile.prediction.edges),
            )  # fmt: skip
        return self._days[key]

    def observe(
        self, version: str, day: date, feature_names: Sequence[str], x: np.ndarray,
        preds: np.ndarray, request_ids: Sequence[str],
    ) -> None:  # fmt: skip
        """Count one batch of predictions (rows x features) into its day."""
        with self._lock:
            recent = self._recent
            recent.update(dict.fromkeys(request_ids))
            while len(recent) > MAX_RECENT:
                recent.popitem(last=False)
            sketches = self._day(version, day)
            if sketches is None:
                return
            for j, name in enumerate(feature_names):
                sketch = sketches.features.get(name)
                if sketch is not None:
                    sketch.update(x[:, j])
            sketches.prediction.update(preds)
            labels, matched = [], []
            for rid, p in zip(request_ids, preds.tolist(), strict=True):
                early = self._early_labels.pop(rid, None)
                if early is not None:
                    labels.append(early)
                    matched.append(p)
                else:
                    self._awaiting[rid] = (version, day, p)
            while len(self._awaiting) > MAX_AWAITING:
                self._awaiting.popitem(last=False)
            if labels:
                sketches.accuracy = sketches.accuracy + _stats(labels, matched)
            if self._latest is None or day > self._latest:
                self._latest = day
                self._prune()

    def observe_labels(self, labels: Iterable[tuple[str, float]]) -> None:
        """Match (request id, label) pairs to predictions; keep early ones for later."""
        with self._lock:
            for rid, value in labels:
                found = self._awaiting.pop(rid, None)
                if found is None:
                    self._early_labels[rid] = value
                    while len(self._early_labels) > MAX_AWAITING:
                        self._early_labels.popitem(last=False)
                    continue
                version, day, prediction = found
                sketches = self._days.get((version, day))
                if sketches is not None:
                    sketches.accuracy = sketches.accuracy + _stats([value], [prediction])

    def seen(self, request_ids: Iterable[str]) -> set[str]:
        """Which of ``request_ids`` are among the last ``MAX_RECENT`` predictions counted."""
        with self._lock:
            return {rid for rid in request_ids if rid in self._recent}

    def _prune(self) -> None:
        if self._latest is None:
            return
        oldest = self._latest - timedelta(days=self.cfg.window_days - 1)
        for key in [k for k in self._days if k[1] < oldest]:
            del self._days[key]

    def assessments(self) -> list[VersionAssessment]:
        """The current window of every version, judged."""
        with self._lock:
            merged: dict[str, _Day] = {}
            for (version, _day), sk in self._days.items():
                have = merged.get(version)
                if have is None:
                    merged[version] = _Day(dict(sk.features), sk.prediction, sk.accuracy)
                    continue
                have.features = {n: have.features[n].merge(s) for n, s in sk.features.items()}
                have.prediction = have.prediction.merge(sk.prediction)
                have.accuracy = have.accuracy + sk.accuracy
            references = dict(self._references)
        out = []
        for version, day in sorted(merged.items()):
            profile, reference, rate = references[version]
            out.append(assess_version(version, profile, day.features, day.prediction,
                                      day.accuracy, reference, self.cfg, self.metric,
                                      rate))  # fmt: skip
        return out

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["model", "version"]
        feature = GaugeMetricFamily("driftloop_feature_drift_score",
                                    "Drift of a feature in the current window.",
                                    labels=[*labels, "feature", "method"])  # fmt: skip
        prediction = GaugeMetricFamily("driftloop_prediction_drift_score",
                                       "Drift of the predictions in the current window.",
                                       labels=[*labels, "method"])  # fmt: skip
        rows = GaugeMetricFamily("driftloop_window_rows", "Rows in the current window.",
                                 labels=labels)  # fmt: skip
        accuracy = GaugeMetricFamily("driftloop_accuracy", "Accuracy from delayed labels.",
                                     labels=[*labels, "metric"])  # fmt: skip
        reference = GaugeMetricFamily("driftloop_accuracy_reference",
                                      "The same metric on the version's training holdout.",
                                      labels=[*labels, "metric"])  # fmt: skip
        coverage = GaugeMetricFamily("driftloop_label_coverage",
                                     "Share of the window's predictions with a label.",
                                     labels=labels)  # fmt: skip
        for a in self.assessments():
            base = [self.model, a.version]
            rows.add_metric(base, a.rows)
            for f in a.features:
                _add(feature, [*base, f.name], {"psi": f.psi, "js": f.js})
            _add(prediction, base, {"psi": a.prediction.psi, "kl": a.prediction.kl})
            if a.accuracy is not None:
                coverage.add_metric(base, a.accuracy.coverage)
                acc = a.accuracy
                _add(reference, base, {acc.metric: acc.reference})
                if acc.state == "not enough labels":  # below min_labels: no number to act on
                    continue
                _add(accuracy, base, {"wape": acc.wape, "mape": acc.mape, acc.metric: acc.error})
        yield from (feature, prediction, rows, accuracy, reference, coverage)


def _add(family: GaugeMetricFamily, labels: list[str], values: Mapping[str, float]) -> None:
    for method, value in values.items():
        if math.isfinite(value):  # "not enough data" exports nothing, never a fake zero
            family.add_metric([*labels, method], value)


def _stats(labels: Sequence[float], predictions: Sequence[float]) -> AccuracyStats:
    from driftloop.monitoring.assess import accuracy_stats

    return accuracy_stats(labels, predictions)
