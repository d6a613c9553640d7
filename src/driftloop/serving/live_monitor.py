"""Drift and accuracy gauges inside the server, from the stored per-day aggregates.

The log flusher folds each prediction and feedback segment it writes into the project's
day store (``driftloop.monitoring.daystore``), off the request path; at scrape time the
latest window is merged from the stored days and judged with the same code that
``driftloop monitor`` runs, so the gauges and the command read the same days.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pandas as pd
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftloop.config import MonitoringConfig
from driftloop.monitoring.assess import VersionAssessment
from driftloop.monitoring.daystore import DayStore
from driftloop.monitoring.monitor import VersionInfo, latest_window
from driftloop.statistics.profile import ReferenceProfile

__all__ = ["LiveMonitor"]

logger = logging.getLogger("driftloop.serving")

MAX_RECENT = 200_000  # request ids remembered for /v1/feedback's "matched" answer


class LiveMonitor(Collector):
    """The gauges of the latest window, read from the day store the log flusher feeds."""

    def __init__(
        self,
        model: str,
        cfg: MonitoringConfig,
        metric: str,
        store: DayStore,
        fallback: VersionInfo,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.metric = metric  # the accuracy metric (ACCURACY_METRICS of the task)
        self.store = store
        self.fallback = fallback  # versions this process does not serve: from the registry
        self._lock = threading.Lock()
        self._references: dict[str, tuple[ReferenceProfile, float, float]] = {}
        # the request ids of each folded segment, oldest first, and how many they hold
        self._recent: deque[frozenset[str]] = deque()
        self._recent_ids = 0

    def set_reference(
        self, version: str, profile: ReferenceProfile, reference: float, rate: float = math.nan
    ) -> None:
        """The version's profile, holdout accuracy and (classification) positive rate."""
        with self._lock:
            self._references[version] = (profile, reference, rate)

    def _info(self, version: str) -> tuple[ReferenceProfile, float, float]:
        with self._lock:
            found = self._references.get(version)
        if found is None:
            found = self.fallback(version)
            with self._lock:
                self._references[version] = found
        return found

    def _profile(self, version: str) -> ReferenceProfile:
        return self._info(version)[0]

    def fold_predictions(self, path: Path, frame: pd.DataFrame) -> None:
        """The log flusher's hook: fold a written prediction segment (never raises: a
        segment left unfolded is folded by the next read)."""
        self._remember(map(str, frame["request_id"].dropna().tolist()))
        try:
            self.store.fold_predictions(frame, self._profile, (path.parent.name, path.name))
        except Exception as exc:
            logger.warning("monitoring did not fold %s yet: %s", path, exc)

    def _remember(self, request_ids: Iterable[str]) -> None:
        """Remember one segment's ids as one set (a dict update per id cost 5 % of a
        100-entity request's CPU); whole segments are forgotten, oldest first."""
        ids = frozenset(request_ids)
        with self._lock:
            if not self._recent:
                self._recent_ids = 0
            self._recent.append(ids)
            self._recent_ids += len(ids)
            while len(self._recent) > 1 and self._recent_ids - len(self._recent[0]) >= MAX_RECENT:
                self._recent_ids -= len(self._recent.popleft())

    def seen(self, request_ids: Iterable[str]) -> set[str]:
        """Which of ``request_ids`` are among the last ``MAX_RECENT`` (or a few more)
        logged predictions."""
        wanted = set(request_ids)
        found: set[str] = set()
        with self._lock:
            for ids in reversed(self._recent):
                found |= wanted & ids
        return found

    def fold_feedback(self, path: Path, frame: pd.DataFrame) -> None:
        """The log flusher's hook for a written feedback segment."""
        try:
            self.store.fold_feedback(frame, (path.parent.name, path.name))
        except Exception as exc:
            logger.warning("monitoring did not fold %s yet: %s", path, exc)

    def assessments(self) -> list[VersionAssessment]:
        """The latest window of every version, judged."""
        window = latest_window(self.store, self._info, self.cfg, self.metric)
        return list(window.versions) if window is not None else []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["model", "version"]
        feature = GaugeMetricFamily(
            "driftloop_feature_drift_score",
            "Drift of a feature in the current window.",
            labels=[*labels, "feature", "method"],
        )
        prediction = GaugeMetricFamily(
            "driftloop_prediction_drift_score",
            "Drift of the predictions in the current window.",
            labels=[*labels, "method"],
        )
        rows = GaugeMetricFamily(
            "driftloop_window_rows", "Rows in the current window.", labels=labels
        )
        accuracy = GaugeMetricFamily(
            "driftloop_accuracy", "Accuracy from delayed labels.", labels=[*labels, "metric"]
        )
        reference = GaugeMetricFamily(
            "driftloop_accuracy_reference",
            "The same metric on the version's training holdout.",
            labels=[*labels, "metric"],
        )
        coverage = GaugeMetricFamily(
            "driftloop_label_coverage",
            "Share of the window's predictions with a label.",
            labels=labels,
        )
        for a in self.assessments():
            base = [self.model, a.version]
            rows.add_metric(base, a.rows)
            for f in a.features:
                _add(feature, [*base, f.name], {"psi": f.psi, "js": f.js})
            _add(prediction, base, {"psi": a.prediction.psi, "kl": a.prediction.kl})
            if a.accuracy is not None:
                coverage.add_metric(base, a.accuracy.coverage)
                acc = a.accuracy
                if acc.labeled >= self.cfg.min_labels:  # below it, a number is noise
                    _add(
                        accuracy, base, {"wape": acc.wape, "mape": acc.mape, acc.metric: acc.error}
                    )
                _add(reference, base, {acc.metric: acc.reference})
        yield from (feature, prediction, rows, accuracy, reference, coverage)


def _add(family: GaugeMetricFamily, labels: list[str], values: Mapping[str, float]) -> None:
    for method, value in values.items():
        if math.isfinite(value):  # "not enough data" exports nothing, never a fake zero
            family.add_metric([*labels, method], value)
