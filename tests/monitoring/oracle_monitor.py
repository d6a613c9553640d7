"""The monitor as it was before the day store: read the whole logs, filter in pandas.

Kept only as the oracle of ``test_daystore``: the stored-days path must give its answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from driftloop.config import MonitoringConfig
from driftloop.monitoring.assess import (
    AccuracyStats,
    VersionAssessment,
    accuracy_stats,
    assess_version,
)
from driftloop.monitoring.monitor import WindowReport, join_labels
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.profile import ReferenceProfile
from driftloop.storage.segments import read_segments

Info = Callable[[str], tuple[ReferenceProfile, float, float]]


def _accuracy(rows: pd.DataFrame) -> AccuracyStats:
    labeled = rows[rows["label"].notna()]
    return accuracy_stats(
        labeled["label"].to_numpy("float64"), labeled["prediction"].to_numpy("float64")
    )


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


def _assess(
    rows: pd.DataFrame, feedback: pd.DataFrame, info: Info, cfg: MonitoringConfig, metric: str
) -> tuple[list[VersionAssessment], dict[str, Any]]:
    assessed, business = [], {}
    for version, group in rows.groupby("version", sort=True):
        profile, reference, rate = info(str(version))
        sketches = {}
        for name, column in profile.features.items():
            if name in cfg.exclude_features:
                continue
            sketch = BinnedSketch(column.edges)
            if "f__" + name in group.columns:
                sketch.update(group["f__" + name].to_numpy("float64"))
            sketches[name] = sketch
        prediction = BinnedSketch(profile.prediction.edges)
        prediction.update(group["prediction"].to_numpy("float64"))
        assessed.append(
            assess_version(
                str(version),
                profile,
                sketches,
                prediction,
                _accuracy(group),
                reference,
                cfg,
                metric,
                rate,
                [_accuracy(day) for _, day in group.groupby(group["event_time"].dt.date)],
            )
        )
        business[str(version)] = _business(group, feedback)
    return assessed, business


def oracle_windows(
    state_dir: Path,
    keys: Sequence[str],
    cfg: MonitoringConfig,
    metric: str,
    info: Info,
    since: date | None = None,
    until: date | None = None,
    window_days: int | None = None,
) -> list[WindowReport]:
    """Every window, judged from the whole logs read at once (the old full-read path)."""
    days = window_days or cfg.window_days
    log = read_segments(state_dir / "predictions")
    feedback = read_segments(state_dir / "feedback")
    event_day = log["event_time"].dt.date
    last = until or (max(event_day) + timedelta(days=1))
    first = since or min(event_day)
    log = log.assign(label=join_labels(log, feedback, keys))
    windows: list[WindowReport] = []
    end = last
    while end > first:
        start = max(first, end - timedelta(days=days))
        rows = log[(event_day >= start) & (event_day < end)]
        assessed, business = _assess(rows, feedback, info, cfg, metric)
        windows.append(WindowReport(start, end, tuple(assessed), business))
        end = start
    windows.reverse()
    return windows


def labels_of(state_dir: Path, keys: Sequence[str]) -> pd.DataFrame:
    """Every prediction row with its joined label (for AUC checks)."""
    log = read_segments(state_dir / "predictions")
    return log.assign(label=join_labels(log, read_segments(state_dir / "feedback"), keys))


def assert_same_window(new: WindowReport, old: WindowReport) -> None:
    """The two monitors' judgements of one window agree (sums up to float rounding)."""
    assert (new.start, new.end) == (old.start, old.end)
    assert [v.version for v in new.versions] == [v.version for v in old.versions]
    for a, b in zip(new.versions, old.versions, strict=True):
        assert (a.rows, a.enough_data) == (b.rows, b.enough_data)
        assert [(f.name, f.rows, f.missing, f.level) for f in a.features] == [
            (f.name, f.rows, f.missing, f.level) for f in b.features
        ]
        for x, y in zip((*a.features, a.prediction), (*b.features, b.prediction), strict=True):
            assert (x.psi, x.js, x.kl) == pytest.approx((y.psi, y.js, y.kl), nan_ok=True)
        assert a.prediction.level == b.prediction.level
        assert a.accuracy is not None and b.accuracy is not None
        for field in ("labeled", "coverage", "wape", "mape", "bias", "ratio", "error"):
            assert getattr(a.accuracy, field) == pytest.approx(
                getattr(b.accuracy, field), rel=1e-9, nan_ok=True
            ), field
        assert a.accuracy.state == b.accuracy.state
        assert [(x.kind, x.subject) for x in a.alerts] == [(x.kind, x.subject) for x in b.alerts]
    assert new.business.keys() == old.business.keys()
    for version, values in new.business.items():
        assert values == pytest.approx(old.business[version])
