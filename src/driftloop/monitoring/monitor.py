"""Monitoring from the server's logs: event-time windows, per version.

The logs are folded into per-version, per-event-day aggregates (``DayStore``: feature and
prediction counts in each version's reference-profile bins, label sums by request id or by
entity and date, business outcomes); a window is a merge of stored days, judged with
``assess_version``. Any log segment not folded yet is folded first, so the answer always
covers the whole log. A window too sparse to judge reaches further back, day by day, until
it holds ``monitoring.min_rows`` rows and enough labels or spans
``monitoring.max_window_days``; a window that still cannot judge says why in its
assessment's ``reason``. Alerts count as raised once they held for
``monitoring.persistence_windows`` windows in a row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from driftloop.config import MonitoringConfig
from driftloop.errors import DataError
from driftloop.monitoring.assess import (
    ACCURACY_METRICS,
    MIN_POSITIVES,
    Alert,
    VersionAssessment,
    assess_version,
)
from driftloop.monitoring.daystore import DayStore, WindowCounts
from driftloop.project import Project
from driftloop.registry.base import ModelRegistry
from driftloop.statistics.profile import ReferenceProfile

__all__ = [
    "MonitorReport",
    "WindowReport",
    "join_labels",
    "latest_window",
    "monitor_project",
    "monitor_store",
    "open_day_store",
    "registry_info",
    "sized_start",
]


@dataclass(frozen=True)
class WindowReport:
    """One event-time window: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date
    versions: tuple[VersionAssessment, ...]
    business: Mapping[str, Mapping[str, float]]  # version -> "name:count|mean" -> value


@dataclass(frozen=True)
class MonitorReport:
    """Windows oldest first; ``alerts`` are the latest window's, after persistence."""

    model: str
    windows: tuple[WindowReport, ...]
    alerts: tuple[tuple[str, Alert], ...]  # (version, alert)

    @property
    def latest(self) -> WindowReport | None:
        return self.windows[-1] if self.windows else None


def join_labels(
    predictions: pd.DataFrame, feedback: pd.DataFrame, keys: Sequence[str]
) -> pd.Series:
    """The label of each prediction row: by request id, else by entity (``keys``) and
    event date."""
    labels = pd.Series(np.nan, index=predictions.index, dtype="float64")
    if feedback.empty or predictions.empty:
        return labels
    fb = feedback[feedback["kind"] == "label"].sort_values("received_at")
    by_id = fb.dropna(subset=["request_id"]).drop_duplicates("request_id", keep="last")
    labels = predictions["request_id"].map(by_id.set_index("request_id")["value"]).astype("float64")
    keys = [k for k in keys if k in fb.columns and k in predictions.columns]
    if not keys:
        return labels
    by_entity = fb[fb["request_id"].isna()].dropna(subset=[*keys, "date"])
    if not by_entity.empty and predictions[keys[0]].notna().any():
        keyed = by_entity.assign(date=pd.to_datetime(by_entity["date"]).dt.date)
        keyed = keyed.drop_duplicates([*keys, "date"], keep="last")
        index = pd.MultiIndex.from_frame(keyed[[*keys, "date"]].astype(object))
        lookup = pd.Series(keyed["value"].to_numpy(), index=index)
        wanted = list(
            zip(*(predictions[k] for k in keys), predictions["event_time"].dt.date, strict=True)
        )
        from_entity = pd.Series([lookup.get(k, np.nan) for k in wanted], index=predictions.index)
        labels = labels.fillna(from_entity.astype("float64"))
    return labels


VersionInfo = Callable[[str], tuple[ReferenceProfile, float, float]]


class _Versions:
    """Reference profiles and holdout values per version, loaded once."""

    def __init__(self, info: VersionInfo, metric: str = "wape") -> None:
        self.info = info
        self.metric = metric
        self._cache: dict[str, tuple[ReferenceProfile, float, float]] = {}

    def get(self, version: str) -> tuple[ReferenceProfile, float, float]:
        """The profile, the holdout value of the metric and the holdout's positive rate."""
        if version not in self._cache:
            self._cache[version] = self.info(version)
        return self._cache[version]

    def profile(self, version: str) -> ReferenceProfile:
        return self.get(version)[0]


def registry_info(registry: ModelRegistry, metric: str) -> VersionInfo:
    """A version's profile, holdout ``metric`` and holdout positive rate, from the registry."""

    def info(version: str) -> tuple[ReferenceProfile, float, float]:
        metrics = registry.get(version).metrics
        return (
            registry.load_profile(version),
            float(metrics.get(f"holdout_{metric}", float("nan"))),
            float(metrics.get("holdout_positive_rate", float("nan"))),
        )

    return info


def open_day_store(project: Project, keys: Sequence[str]) -> DayStore:
    """The project's store of per-day monitoring aggregates (entity keys ``keys``), which
    keeps served predictions for labels ``labels.delay_days + monitoring.late_label_days``."""
    config = project.config
    keep = config.labels.delay_days + config.monitoring.late_label_days
    return DayStore(project.state_dir, tuple(keys), keep_days=keep)


def _assess_window(
    windows: Mapping[str, WindowCounts], versions: _Versions, cfg: MonitoringConfig
) -> tuple[list[VersionAssessment], dict[str, dict[str, float]]]:
    assessed, business = [], {}
    for version, counts in sorted(windows.items()):
        profile, reference, rate = versions.get(version)
        sketches = {
            name: sketch
            for name, sketch in counts.features.items()
            if name not in cfg.exclude_features
        }
        found = assess_version(
            version,
            profile,
            sketches,
            counts.prediction,
            counts.accuracy,
            reference,
            cfg,
            versions.metric,
            rate,
            counts.days,
        )
        if found.accuracy is not None and versions.metric == "log_loss":
            roc_auc = counts.scores.roc_auc()
            found = dataclasses.replace(
                found, accuracy=dataclasses.replace(found.accuracy, roc_auc=roc_auc)
            )
        assessed.append(found)
        business[version] = {
            key: value
            for name, (count, total) in sorted(counts.business.items())
            for key, value in (
                (f"{name}:count", float(count)),
                (f"{name}:mean_per_prediction", total / max(counts.rows, 1)),
            )
        }
    return assessed, business


def sized_start(
    store: DayStore, start: date, end: date, cfg: MonitoringConfig, metric: str = "wape"
) -> date:
    """The start of a window ending at ``end``: ``start``, or earlier when the days from
    ``start`` hold fewer than ``min_rows`` rows: back to the first day at which the window
    holds enough rows and labels to judge, else enough rows, else ``max_window_days``."""
    cap = max(cfg.max_window_days, (end - start).days)
    days = store.day_totals(end - timedelta(days=cap), end)
    if sum(rows for day, rows, _, _ in days if day >= start) >= cfg.min_rows:
        return start
    rows = labeled = positives = 0
    enough_rows: date | None = None
    for day, day_rows, day_labeled, day_positives in days:
        rows, labeled, positives = rows + day_rows, labeled + day_labeled, positives + day_positives
        if rows < cfg.min_rows:
            continue
        enough_rows = enough_rows or day
        labels_ok = labeled >= cfg.min_labels and labeled >= cfg.min_label_coverage * rows
        if labels_ok and (metric != "log_loss" or positives >= MIN_POSITIVES):
            return min(day, start)
    if enough_rows is not None:
        return min(enough_rows, start)
    return end - timedelta(days=cap)


def monitor_project(
    project: Project,
    registry: ModelRegistry,
    since: date | None = None,
    until: date | None = None,
    window_days: int | None = None,
    sized_by_data: bool = True,
    *,
    keys: Sequence[str],
) -> MonitorReport:
    """Assess every window of ``window_days`` from ``since`` to ``until`` (exclusive); with
    ``sized_by_data`` a sparse window reaches back (before ``since`` too) until it can judge.
    ``keys``: the project's entity keys (``ProjectLayout.entity_keys``)."""
    metric = ACCURACY_METRICS[project.config.training.task]
    return monitor_store(
        open_day_store(project, keys),
        registry.model_name,
        registry_info(registry, metric),
        project.config.monitoring,
        metric,
        since,
        until,
        window_days,
        sized_by_data,
    )


def monitor_store(
    store: DayStore,
    model: str,
    info: VersionInfo,
    cfg: MonitoringConfig,
    metric: str,
    since: date | None = None,
    until: date | None = None,
    window_days: int | None = None,
    sized_by_data: bool = True,
) -> MonitorReport:
    """``monitor_project`` on a day store, after folding what the logs hold beyond it."""
    days = window_days or cfg.window_days
    versions = _Versions(info, metric)
    store.sync(versions.profile)
    span = store.day_range()
    if span is None:
        raise DataError("the prediction log is empty: serve traffic with `driftloop serve` first")
    last = until or (span[1] + timedelta(days=1))
    first = since or span[0]
    if last <= first:
        raise DataError(f"--until {last} is not after --since {first}: widen the range")
    windows: list[WindowReport] = []
    end = last
    while end > first:
        start = max(first, end - timedelta(days=days))
        if sized_by_data:
            start = max(sized_start(store, start, end, cfg, metric), min(start, span[0]))
        windows.append(_judge(store, versions, cfg, start, end))
        end = start
    windows.reverse()
    return MonitorReport(model, tuple(windows), _persistent(windows, cfg))


def latest_window(
    store: DayStore, info: VersionInfo, cfg: MonitoringConfig, metric: str
) -> WindowReport | None:
    """The window ``monitor_store`` reports last (sized by data), after folding the logs;
    None when nothing is stored. What the server's gauges show."""
    versions = _Versions(info, metric)
    store.sync(versions.profile)
    span = store.day_range()
    if span is None:
        return None
    end = span[1] + timedelta(days=1)
    start = max(span[0], end - timedelta(days=cfg.window_days))
    start = max(sized_start(store, start, end, cfg, metric), min(start, span[0]))
    return _judge(store, versions, cfg, start, end)


def _judge(
    store: DayStore, versions: _Versions, cfg: MonitoringConfig, start: date, end: date
) -> WindowReport:
    assessed, business = _assess_window(store.window(start, end, versions.profile), versions, cfg)
    assessed = [_with_span(a, start, end, cfg) for a in assessed]
    return WindowReport(start, end, tuple(assessed), business)


def _with_span(
    assessed: VersionAssessment, start: date, end: date, cfg: MonitoringConfig
) -> VersionAssessment:
    """The assessment's reason, saying how many days the window spanned."""
    if not assessed.reason:
        return assessed
    span = (end - start).days
    capped = " (monitoring.max_window_days)" if span >= cfg.max_window_days else ""
    return dataclasses.replace(assessed, reason=f"{assessed.reason}, over {span} days{capped}")


def _persistent(
    windows: list[WindowReport], cfg: MonitoringConfig
) -> tuple[tuple[str, Alert], ...]:
    """The latest window's alerts that also fired in the windows just before it."""
    if not windows:
        return ()
    k = cfg.persistence_windows
    recent = windows[-k:]
    if len(recent) < k:
        return ()

    def keys(window: WindowReport) -> set[tuple[str, str, str]]:
        return {(v.version, a.kind, a.subject) for v in window.versions for a in v.alerts}

    held = set.intersection(*(keys(w) for w in recent))
    return tuple(
        (v.version, a)
        for v in windows[-1].versions
        for a in v.alerts
        if (v.version, a.kind, a.subject) in held
    )
