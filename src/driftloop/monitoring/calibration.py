"""Drift levels calibrated to a feature's own variation: pure, arrays in, numbers out.

A feature that follows a season (weather, anything with a yearly or weekly cycle) sits
far from any reference shorter than its cycle, and a week of it is never like a year of
it either: fixed PSI levels alarm every week. So at training the reference's own days are
cut into windows of the monitoring window's size, each window is compared with the whole
reference, and the mean and sd of those PSI (and KS) values are stored with the profile.
A live window is only unusual when it sits further from the reference than the
reference's own windows did: its levels are ``max(configured level, mean + k * sd)``
(NannyML's ``StandardDeviationThreshold`` over reference chunks; k = 4 by default, not
NannyML's 3: a window's PSI is right-skewed like a chi-square, so mean + 3 sd is passed
more often than a normal's 0.13 %, and every window judges each feature). A stable
feature's windows sit at PSI ~0.01, so its levels stay the configured ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from driftloop.monitoring.drift import DEFAULT_SMOOTHING, ks_from_counts, psi
from driftloop.statistics.profile import DriftCalibration, ReferenceProfile, bin_counts

__all__ = [
    "DEFAULT_MIN_WINDOWS",
    "DEFAULT_SD_MULTIPLIER",
    "calibrate_profile",
    "calibrated_levels",
    "calibration_from_values",
    "window_drift",
    "window_index",
]

DEFAULT_SD_MULTIPLIER = 4.0
DEFAULT_MIN_WINDOWS = 4
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def window_index(days: ArrayLike, window_days: int) -> IntArray:
    """The window of ``window_days`` days each day falls in, counted back from the newest
    day (0 = the newest window); -1 for the oldest window when it is not complete.

    ``days`` are whole day numbers (e.g. days since 1970-01-01), in any order.
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ValueError(f"window_days must be an integer >= 1, got {window_days!r}")
    d = np.asarray(days, dtype=np.int64).ravel()
    if d.size == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = int(d.min()), int(d.max())
    index = (last - d) // window_days
    complete = (last - first + 1) // window_days  # windows wholly inside [first, last]
    return np.where(index < complete, index, -1).astype(np.int64)


def window_drift(
    values: ArrayLike,
    days: ArrayLike,
    edges: Sequence[float],
    reference_counts: Sequence[int],
    window_days: int,
    min_rows: int = 1,
    smoothing: float = DEFAULT_SMOOTHING,
) -> tuple[FloatArray, FloatArray]:
    """PSI and KS of each full window (see :func:`window_index`) against the reference
    counts, newest window first; windows with fewer than ``min_rows`` finite values are
    left out, as monitoring would not judge them either."""
    v = np.asarray(values, dtype=np.float64).ravel()
    index = window_index(days, window_days)
    if v.size != index.size:
        raise ValueError(f"values and days differ in length: {v.size} vs {index.size}")
    psis: list[float] = []
    kss: list[float] = []
    for w in range(int(index.max(initial=-1)) + 1):
        counts, _ = bin_counts(v[index == w], edges)
        if sum(counts) < min_rows or sum(counts) == 0:
            continue
        psis.append(psi(reference_counts, counts, smoothing))
        kss.append(ks_from_counts(reference_counts, counts))
    return np.asarray(psis, dtype=np.float64), np.asarray(kss, dtype=np.float64)


def calibration_from_values(
    psis: ArrayLike, kss: ArrayLike, window_days: int, min_windows: int = DEFAULT_MIN_WINDOWS
) -> DriftCalibration | None:
    """Mean and sample sd (ddof=1) of the windows' PSI and KS; None with fewer than
    ``min_windows`` windows (an sd of two or three values says little)."""
    if min_windows < 2:
        raise ValueError(f"min_windows must be >= 2 (an sd needs two values), got {min_windows}")
    p = np.asarray(psis, dtype=np.float64).ravel()
    k = np.asarray(kss, dtype=np.float64).ravel()
    if p.size != k.size:
        raise ValueError(f"psis and kss differ in length: {p.size} vs {k.size}")
    if p.size < min_windows:
        return None
    return DriftCalibration(
        window_days=window_days,
        chunks=int(p.size),
        psi_mean=float(p.mean()),
        psi_sd=float(p.std(ddof=1)),
        ks_mean=float(k.mean()),
        ks_sd=float(k.std(ddof=1)),
    )


def calibrate_profile(
    profile: ReferenceProfile,
    columns: Mapping[str, ArrayLike],
    days: ArrayLike,
    window_days: int,
    min_rows: int = 1,
    min_windows: int = DEFAULT_MIN_WINDOWS,
) -> ReferenceProfile:
    """``profile`` with each feature in ``columns`` calibrated on its own values.

    ``columns`` must be the values the profile was built from (the same rows, in the
    order of ``days``); features without enough full windows stay uncalibrated.
    """
    features = dict(profile.features)
    for name, values in columns.items():
        column = features[name]
        if sum(column.counts) == 0:
            continue
        psis, kss = window_drift(values, days, column.edges, column.counts, window_days, min_rows)
        calibration = calibration_from_values(psis, kss, window_days, min_windows)
        features[name] = dataclasses.replace(column, calibration=calibration)
    return dataclasses.replace(profile, features=features)


def calibrated_levels(
    notice: float,
    warning: float,
    act: float,
    calibration: DriftCalibration | None,
    sd_multiplier: float = DEFAULT_SD_MULTIPLIER,
) -> tuple[float, float, float]:
    """The notice, warning and act PSI levels of a feature: each ``max(level, mean + k sd)``.

    Without a calibration (an old profile, too few windows) the configured levels. A
    window within the feature's usual variation reaches no level at all; one beyond it is
    judged by the configured levels, which stay the floor.
    """
    if not (math.isfinite(sd_multiplier) and sd_multiplier >= 0):
        raise ValueError(f"sd_multiplier must be finite and >= 0, got {sd_multiplier!r}")
    if calibration is None:
        return notice, warning, act
    bound = calibration.psi_bound(sd_multiplier)
    if not math.isfinite(bound):
        return notice, warning, act
    return max(notice, bound), max(warning, bound), max(act, bound)
