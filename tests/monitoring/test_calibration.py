"""Drift levels calibrated to a feature's own variation, and calendar columns left out."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftloop.config import MonitoringConfig
from driftloop.monitoring.assess import assess_version, column_drift, judged_features
from driftloop.monitoring.calendar import calendar_position, is_calendar_position
from driftloop.monitoring.calibration import (
    calibrate_profile,
    calibrated_levels,
    calibration_from_values,
    window_drift,
    window_index,
)
from driftloop.monitoring.drift import ks_from_counts
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.profile import (
    DriftCalibration,
    ReferenceProfile,
    bin_counts,
    build_profile,
    profile_column,
)


def test_binned_ks_equals_scipy_when_every_value_has_its_own_bin() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 8, 2_000), rng.integers(1, 9, 700)
    edges = np.arange(8) + 0.5  # one bin per value 0..8
    ref_counts, _ = bin_counts(ref, edges.tolist())
    cur_counts, _ = bin_counts(cur, edges.tolist())
    expected = stats.ks_2samp(ref, cur).statistic
    assert ks_from_counts(ref_counts, cur_counts) == pytest.approx(expected, abs=1e-12)


def test_window_index_counts_back_from_the_newest_day_and_drops_a_partial_window() -> None:
    # days 0..9 in windows of 3: {7,8,9} -> 0, {4,5,6} -> 1, {1,2,3} -> 2, {0} is partial
    assert window_index(np.arange(10), 3).tolist() == [-1, 2, 2, 2, 1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="window_days"):
        window_index([1, 2], 0)


def test_calibration_is_the_mean_and_sample_sd_of_the_windows() -> None:
    cal = calibration_from_values([0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.3, 0.3], 7)
    assert cal is not None and cal.chunks == 4 and cal.window_days == 7
    assert cal.psi_mean == pytest.approx(0.25)
    assert cal.psi_sd == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1))
    assert cal.ks_mean == pytest.approx(0.2) and cal.ks_sd == pytest.approx(0.11547, abs=1e-5)
    assert cal.psi_bound(3.0) == pytest.approx(0.25 + 3 * 0.1290994, abs=1e-6)
    assert calibration_from_values([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], 7) is None  # too few


def test_levels_are_raised_to_the_feature_variation_never_lowered() -> None:
    wide = DriftCalibration(7, 50, psi_mean=1.0, psi_sd=0.25, ks_mean=0.3, ks_sd=0.1)
    narrow = DriftCalibration(7, 50, psi_mean=0.01, psi_sd=0.005, ks_mean=0.03, ks_sd=0.01)
    assert calibrated_levels(0.1, 0.15, 0.25, None) == (0.1, 0.15, 0.25)
    assert calibrated_levels(0.1, 0.15, 0.25, narrow, 4.0) == (0.1, 0.15, 0.25)
    assert calibrated_levels(0.1, 0.15, 0.25, wide, 4.0) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="sd_multiplier"):
        calibrated_levels(0.1, 0.15, 0.25, wide, -1.0)


def test_window_drift_worked_example() -> None:
    # reference: two bins with 10 and 10; window 0 holds [0, 0, 1, 1] -> PSI 0, KS 0;
    # window 1 holds [0, 0, 0, 0] -> counts (4, 0)
    values = np.array([0, 0, 0, 0, 0, 0, 1, 1], dtype=float)
    days = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    psis, kss = window_drift(values, days, [0.5], [10, 10], 2)
    assert psis[0] == pytest.approx(0.0) and kss[0] == pytest.approx(0.0)
    r, c = np.array([10.5, 10.5]) / 21, np.array([4.5, 0.5]) / 5
    assert psis[1] == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert kss[1] == pytest.approx(0.5)


def test_calibration_survives_json_and_old_profiles_load_without_it() -> None:
    cal = DriftCalibration(7, 12, 0.5, 0.1, 0.2, 0.05)
    profile = build_profile({"a": [1.0, 2.0, 3.0]}, [0.5, 0.6, 0.7], 10)
    calibrated = ReferenceProfile(
        profile.bins, profile.rows, {"a": profile_column([1.0, 2.0, 3.0], 10)}, profile.prediction
    )
    calibrated = dataclasses.replace(
        calibrated, features={"a": dataclasses.replace(calibrated.features["a"], calibration=cal)}
    )
    assert ReferenceProfile.from_json(calibrated.to_json()).features["a"].calibration == cal
    old = json.loads(profile.to_json())
    assert "calibration" not in old["features"]["a"]  # what earlier versions wrote
    assert ReferenceProfile.from_json(json.dumps(old)).features["a"].calibration is None


# -- a seasonal feature over a year of checks ---------------------------------------------
def _hourly(shift_from_day: int | None, seed: int = 0) -> pd.DataFrame:
    """Two years of an hourly temperature (yearly and daily cycle) and a stable column."""
    rng = np.random.default_rng(seed)
    t = np.arange(2 * 365 * 24) / 24.0
    temp = (
        10
        - 12 * np.cos(2 * np.pi * t / 365.25)
        - 4 * np.cos(2 * np.pi * t)
        + rng.normal(0, 3, t.size)
    )
    if shift_from_day is not None:
        temp = temp + np.where(t >= shift_from_day, 8.0, 0.0)  # a recalibrated sensor
    day = np.floor(t).astype("int64")
    return pd.DataFrame({"day": day, "temp": temp, "load": rng.gamma(4.0, 2.0, t.size)})


def _weekly_levels(frame: pd.DataFrame, cfg: MonitoringConfig) -> list[dict[str, str]]:
    """Train on year 1 (calibrated), then judge the 52 weeks of year 2."""
    year1 = frame[frame["day"] < 365]
    columns = {n: year1[n].to_numpy("float64") for n in ("temp", "load")}
    profile = calibrate_profile(
        build_profile(columns, np.zeros(1), 10), columns, year1["day"].to_numpy(), 7, 84
    )
    levels = []
    for week in range(52):
        rows = frame[(frame["day"] >= 365 + 7 * week) & (frame["day"] < 372 + 7 * week)]
        found = {}
        for name, column in profile.features.items():
            sketch = BinnedSketch(column.edges)
            sketch.update(rows[name].to_numpy("float64"))
            found[name] = column_drift(name, column, sketch, cfg).level
        levels.append(found)
    return levels


def test_a_seasonal_feature_without_change_raises_nothing_over_a_year() -> None:
    cfg = MonitoringConfig(min_rows=84)
    calibrated = _weekly_levels(_hourly(None), cfg)
    assert [w for w in calibrated if set(w.values()) & {"warning", "act"}] == []
    # the fixed levels alarm on most weeks of the same data
    fixed = _weekly_levels(_hourly(None), cfg.model_copy(update={"calibrate_thresholds": False}))
    assert sum(w["temp"] == "act" for w in fixed) > 30


def test_a_real_shift_in_a_seasonal_feature_is_still_detected() -> None:
    # +8 degrees from day 540 (late June of year 2): the first week after it is judged "act"
    levels = _weekly_levels(_hourly(540), MonitoringConfig(min_rows=84))
    first_week_after = (540 - 365) // 7 + 1
    assert levels[first_week_after]["temp"] == "act"
    assert all(w["temp"] in ("none", "notice") for w in levels[: (540 - 365) // 7])
    assert all(w["load"] in ("none", "notice") for w in levels)


# -- calendar positions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "position"),
    [
        ("hour", "hour"),
        ("hr", "hour"),
        ("pickup_hour", "hour"),
        ("mnth", "month"),
        ("DayOfWeek", "day_of_week"),
        ("weekday", "day_of_week"),
        ("day_of_year", "day_of_year"),
        ("doy", "day_of_year"),
        ("week", "week_of_year"),
        ("WeekOfYear", "week_of_year"),
        ("quarter", "quarter"),
        ("is_weekend", "is_weekend"),
        ("workingday", "is_weekend"),
        ("holiday", "is_holiday"),
        ("season", "season"),
        ("day", "day_of_month"),
        ("temp", None),
        ("hour_count", None),
        ("rides_per_day", None),
        ("weekly_sales", None),
        ("year", None),
        ("monthly_income", None),
    ],
)
def test_calendar_positions_are_recognised_by_name(name: str, position: str | None) -> None:
    assert calendar_position(name) == position


def test_a_calendar_name_needs_values_in_the_position_range() -> None:
    assert is_calendar_position("month", 1, 12)
    assert is_calendar_position("month", 0, 11)
    assert not is_calendar_position("month", 1, 40)  # not a month
    assert not is_calendar_position("hour", float("nan"), float("nan"))


def test_calendar_columns_are_not_judged_wherever_they_come_from() -> None:
    days = pd.date_range("2024-01-01", periods=400, freq="D")
    columns = {
        "mnth": days.month.to_numpy("float64"),  # a user's own column
        "day_of_week": days.dayofweek.to_numpy("float64"),  # driftloop's own
        "temp": np.random.default_rng(0).normal(size=400),
    }
    profile = build_profile(columns, np.zeros(400), 10)
    cfg = MonitoringConfig(exclude_features=(), min_rows=5)
    assert judged_features(profile, cfg) == ("temp",)
    everything = cfg.model_copy(update={"calendar_by_name": False})
    assert judged_features(profile, everything) == ("mnth", "day_of_week", "temp")
    # a window of one month and one weekday: no calendar alarm, only temp is reported
    sketches = {}
    for name, column in profile.features.items():
        sketches[name] = BinnedSketch(column.edges)
        sketches[name].update(columns[name][:7])
    prediction = BinnedSketch(profile.prediction.edges)
    prediction.update(np.zeros(7))
    result = assess_version("1", profile, sketches, prediction, None, 1.0, cfg)
    assert [f.name for f in result.features] == ["temp"]


def test_an_alert_names_the_calibrated_level_it_passed() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=5_000)
    column = profile_column(values, 10)
    cal = DriftCalibration(7, 20, psi_mean=0.4, psi_sd=0.1, ks_mean=0.1, ks_sd=0.02)
    profile = ReferenceProfile(
        10, 5_000, {"x": dataclasses.replace(column, calibration=cal)}, profile_column(values, 10)
    )
    sketch = BinnedSketch(column.edges)
    sketch.update(rng.normal(3.0, 1.0, 1_000))
    prediction = BinnedSketch(profile.prediction.edges)
    prediction.update(values[:1_000])
    cfg = MonitoringConfig(min_rows=100)
    result = assess_version("1", profile, {"x": sketch}, prediction, None, 1.0, cfg)
    (drift,) = result.features
    assert drift.act_at == pytest.approx(0.8) and drift.level == "act"
    (alert,) = [a for a in result.alerts if a.kind == "data_drift"]
    assert alert.threshold == pytest.approx(0.8) and ">= 0.8" in alert.message
