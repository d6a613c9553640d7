"""The timeline's days as aligned arrays for the plots, and which days were judged."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from driftloop.loop.timeline import DayRecord, Timeline, TimelineEvent

__all__ = [
    "SMOOTHING_DAYS",
    "Series",
    "datenum",
    "events_of",
    "holdout_error",
    "naive_utc",
    "num",
    "series_of",
    "smooth",
    "version_order",
]

SMOOTHING_DAYS = 7
"""Trailing window (days) of the smoothed accuracy lines."""


@dataclass(frozen=True)
class Series:
    """The timeline's days as aligned arrays (NaN where a value is missing)."""

    days: list[date]
    x: np.ndarray  # the days as matplotlib date numbers
    versions: list[str]
    weights: dict[str, np.ndarray]  # version -> share 0..1 (0 when absent)
    wape: dict[str, np.ndarray]  # version -> WAPE, NaN on days it did not serve
    served: np.ndarray
    frozen: np.ndarray
    scheduled: np.ndarray
    psi: np.ndarray  # NaN on days the monitor did not judge (too few rows)
    kl: np.ndarray
    ratio: np.ndarray  # as the monitor judged it: each champion against its own holdout
    drift_judged: np.ndarray  # bool per day
    accuracy_judged: np.ndarray  # bool per day: enough labels
    fixed_ratio: np.ndarray  # the same window's error against one fixed reference
    fixed_reference: tuple[str, float] | None  # (version, holdout error) of that reference


def num(value: float | None) -> float:
    if value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def version_order(days: Sequence[DayRecord], lineage: Iterable[str]) -> list[str]:
    """Versions by the day they first served, then any known only from the lineage."""
    seen: dict[str, None] = {}
    for day in days:
        for name, share in day.weights.items():
            if num(share) > 0:
                seen.setdefault(name, None)
    for day in days:
        for name in (*day.weights, *day.wape):
            seen.setdefault(name, None)
    for name in lineage:
        seen.setdefault(name, None)
    return list(seen)


def holdout_error(timeline: Timeline, version: str | None) -> float:
    """The version's holdout error in the timeline's accuracy metric (NaN: not recorded)."""
    facts = timeline.versions.get(version or "", {})
    want = f"holdout {timeline.accuracy_metric}".lower()
    for key, value in facts.items():
        if str(key).lower() == want:
            return num(value)  # type: ignore[arg-type]
    return math.nan


def _judged(days: Sequence[DayRecord], flag: str, values: np.ndarray) -> np.ndarray:
    """A day counts as judged where the timeline says so; older timelines (no flag) where
    a value was recorded."""
    recorded = [getattr(d, flag) for d in days]
    return np.array(
        [
            bool(r) if r is not None else bool(np.isfinite(v))
            for r, v in zip(recorded, values, strict=True)
        ],
        dtype=bool,
    )


def _fixed_ratio(
    timeline: Timeline, days: Sequence[DayRecord], ratio: np.ndarray
) -> tuple[np.ndarray, tuple[str, float] | None]:
    """The monitor's ratio re-based on the first champion's holdout error: the window's
    error is ratio x the day's champion's holdout error, divided by the first one's."""
    first = next((d.champion for d in days if d.champion), None)
    base = holdout_error(timeline, first)
    if first is None or not (base > 0):
        return np.full(len(days), math.nan), None
    own = np.array([holdout_error(timeline, d.champion) for d in days])
    return ratio * own / base, (first, base)


def series_of(timeline: Timeline) -> Series:
    days = sorted(timeline.days, key=lambda d: d.day)
    versions = version_order(days, timeline.versions)
    weights = {
        v: np.nan_to_num([max(num(d.weights.get(v)), 0.0) for d in days], nan=0.0) for v in versions
    }
    wape = {
        v: np.array(
            [num(d.wape.get(v)) if weights[v][i] > 0 else math.nan for i, d in enumerate(days)]
        )
        for v in versions
    }
    psi = np.array([num(d.max_feature_psi) for d in days])
    kl = np.array([num(d.prediction_kl) for d in days])
    ratio = np.array([num(d.accuracy_ratio) for d in days])
    drift_judged = _judged(days, "drift_judged", kl)
    accuracy_judged = _judged(days, "accuracy_judged", ratio)
    fixed, reference = _fixed_ratio(timeline, days, ratio)
    return Series(
        days=[d.day for d in days],
        x=datenum([d.day for d in days]),
        versions=versions,
        weights=weights,
        wape=wape,
        served=np.array([num(d.served_wape) for d in days]),
        frozen=np.array([num(d.frozen_wape) for d in days]),
        scheduled=np.array([num(d.scheduled_wape) for d in days]),
        psi=np.where(drift_judged, psi, math.nan),
        kl=np.where(drift_judged, kl, math.nan),
        ratio=np.where(accuracy_judged, ratio, math.nan),
        drift_judged=drift_judged,
        accuracy_judged=accuracy_judged,
        fixed_ratio=np.where(accuracy_judged, fixed, math.nan),
        fixed_reference=reference,
    )


def datenum(values: Sequence[date | datetime]) -> np.ndarray:
    """Dates (or times, aware ones in UTC) as matplotlib date numbers."""
    from matplotlib.dates import date2num

    stamps = [naive_utc(v) if isinstance(v, datetime) else v for v in values]
    return np.asarray(date2num(np.array(stamps, dtype="datetime64[s]")), dtype=float)  # type: ignore[no-untyped-call]


def smooth(values: np.ndarray, window: int = SMOOTHING_DAYS) -> np.ndarray:
    """Trailing mean over the last ``window`` days' known values; NaN stays NaN (a gap)."""
    known = np.isfinite(values)
    filled = np.where(known, values, 0.0)
    sums = np.convolve(filled, np.ones(window), mode="full")[: len(values)]
    counts = np.convolve(known.astype(float), np.ones(window), mode="full")[: len(values)]
    out = np.full(len(values), math.nan)
    np.divide(sums, counts, out=out, where=known & (counts > 0))
    return out


def naive_utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def events_of(timeline: Timeline) -> list[TimelineEvent]:
    return sorted(timeline.events, key=lambda e: naive_utc(e.at))
