"""Monitoring from the server's logs: event-time windows, per version.

Reads the prediction log and the feedback log (Parquet segments, DuckDB), counts each
version's window into its reference profile's bins, joins delayed labels by request id
or by entity and date, and judges every window with ``assess_version``. Alerts count as
raised once they held for ``monitoring.persistence_windows`` windows in a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import MonitoringConfig
from driftloop.errors import DataError
from driftloop.features.engineering import ENTITY_KEYS
from driftloop.monitoring.assess import (
    ACCURACY_METRICS,
    AccuracyStats,
    Alert,
    VersionAssessment,
    assess_version,
    class_losses,
)
from driftloop.monitoring.profile import ReferenceProfile
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.project import Project
from driftloop.registry.base import ModelRegistry
from driftloop.segments import read_segments

__all__ = ["MonitorReport", "WindowReport", "join_labels", "monitor_project"]

FEATURE_PREFIX = "f__"


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
    predictions: pd.DataFrame, feedback: pd.DataFrame, keys: Sequence[str] = ENTITY_KEYS
) -> pd.Series:
    """The label of each prediction row: by request id, else by entity and event date."""
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
        wanted = list(zip(*(predictions[k] for k in keys), predictions["event_time"].dt.date,
                          strict=True))  # fmt: skip
        from_entity = pd.Series([lookup.get(k, np.nan) for k in wanted], index=predictions.index)
        labels = labels.fillna(from_entity.astype("float64"))
    return labels


def _accuracy(rows: pd.DataFrame) -> AccuracyStats:
    labeled = rows[rows["label"].notna()]
    y = labeled["label"].to_numpy("float64")
    p = labeled["prediction"].to_numpy("float64")
    e = p - y
    nonzero = y != 0
    positives, loss_pos, loss_neg = class_losses(y, p)
    return AccuracyStats(
        labeled=len(y), abs_error=float(np.abs(e).sum()), abs_label=float(np.abs(y).sum()),
        error=float(e.sum()), ape_sum=float((np.abs(e[nonzero]) / np.abs(y[nonzero])).sum()),
        ape_count=int(nonzero.sum()), positives=positives, loss_pos=loss_pos, loss_neg=loss_neg,
    )  # fmt: skip


def _business(rows: pd.DataFrame, feedback: pd.DataFrame) -> dict[str, float]:
    if feedback.empty:
        return {}
    fb = feedback[(feedback["kind"] == "business") & feedback["request_id"].notna()]
    joined = fb[fb["request_id"].isin(set(rows["request_id"]))]
    out: dict[str, float] = {}
    for name, group in joined.groupby("name"):
        out[f"{name}:count"] = float(len(group))
        out[f"{name}:mean_per_prediction"] = float(group["value"].sum() / max(len(rows), 1))
    return out


class _Versions:
    """Reference profiles and holdout WAPE per version, loaded once."""

    def __init__(self, registry: ModelRegistry, metric: str = "wape") -> None:
        self.registry = registry
        self.metric = metric
        self._cache: dict[str, tuple[ReferenceProfile, float, float]] = {}

    def get(self, version: str) -> tuple[ReferenceProfile, float, float]:
        """The profile, the holdout value of the metric and the holdout's positive rate."""
        if version not in self._cache:
            profile = self.registry.load_profile(version)
            metrics = self.registry.get(version).metrics
            reference = float(metrics.get(f"holdout_{self.metric}", float("nan")))
            rate = float(metrics.get("holdout_positive_rate", float("nan")))
            self._cache[version] = (profile, reference, rate)
        return self._cache[version]


def _assess_window(
    rows: pd.DataFrame, feedback: pd.DataFrame, versions: _Versions, cfg: MonitoringConfig
) -> tuple[list[VersionAssessment], dict[str, Any]]:
    assessed, business = [], {}
    for version, group in rows.groupby("version", sort=True):
        profile, reference, rate = versions.get(str(version))
        sketches = {}
        for name, column in profile.features.items():
            if name in cfg.exclude_features:
                continue
            sketch = BinnedSketch(column.edges)
            if FEATURE_PREFIX + name in group.columns:
                sketch.update(group[FEATURE_PREFIX + name].to_numpy("float64"))
            sketches[name] = sketch
        prediction = BinnedSketch(profile.prediction.edges)
        prediction.update(group["prediction"].to_numpy("float64"))
        assessed.append(assess_version(str(version), profile, sketches, prediction,
                                       _accuracy(group), reference, cfg,
                                       versions.metric, rate))  # fmt: skip
        business[str(version)] = _business(group, feedback)
    return assessed, business


def monitor_project(
    project: Project,
    registry: ModelRegistry,
    since: date | None = None,
    until: date | None = None,
    window_days: int | None = None,
) -> MonitorReport:
    """Assess every window of ``window_days`` from ``since`` to ``until`` (exclusive)."""
    cfg = project.config.monitoring
    days = window_days or cfg.window_days
    log = read_segments(project.state_dir / "predictions")
    if log.empty:
        raise DataError("the prediction log is empty: serve traffic with `driftloop serve` first")
    feedback = read_segments(project.state_dir / "feedback")
    event_day = log["event_time"].dt.date
    last = until or (max(event_day) + timedelta(days=1))
    first = since or min(event_day)
    if last <= first:
        raise DataError(f"--until {last} is not after --since {first}: widen the range")
    log = log.assign(label=join_labels(log, feedback, project.feature_layout.entity_keys))
    versions = _Versions(registry, ACCURACY_METRICS[project.config.training.task])
    windows: list[WindowReport] = []
    end = last
    while end > first:
        start = max(first, end - timedelta(days=days))
        rows = log[(event_day >= start) & (event_day < end)]
        assessed, business = _assess_window(rows, feedback, versions, cfg)
        windows.append(WindowReport(start, end, tuple(assessed), business))
        end = start
    windows.reverse()
    return MonitorReport(registry.model_name, tuple(windows), _persistent(windows, cfg))


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
        (v.version, a) for v in windows[-1].versions for a in v.alerts
        if (v.version, a.kind, a.subject) in held
    )  # fmt: skip
