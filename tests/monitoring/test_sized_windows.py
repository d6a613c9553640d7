"""Windows sized by data: a sparse series reaches back until it can judge, or says why not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import MonitoringConfig
from driftloop.monitoring.daystore import DayStore
from driftloop.monitoring.monitor import monitor_store
from driftloop.statistics.profile import ReferenceProfile, build_profile

START = date(2023, 1, 1)


Profiles = dict[str, tuple[ReferenceProfile, float, float]]


def _daily_series(tmp_path: Path, days: int, per_day: int) -> tuple[DayStore, Profiles]:
    """``per_day`` events a day with a label each (the next day), folded as they come."""
    rng = np.random.default_rng(4)
    profile = build_profile({"x": rng.normal(0, 1, 2000)}, rng.uniform(0, 1, 2000), 10)
    store = DayStore(tmp_path, ())
    profiles = {"1": (profile, 0.6, 0.4)}
    for d in range(days):
        stamp = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(days=d)
        rids = [f"e{d}-{i}" for i in range(per_day)]
        p = rng.uniform(0.05, 0.95, per_day)
        store.fold_predictions(
            pd.DataFrame(
                {
                    "event_time": [stamp] * per_day,
                    "request_id": rids,
                    "version": "1",
                    "prediction": p,
                    "f__x": rng.normal(0, 1, per_day),
                }
            ),
            lambda v: profiles[v][0],
        )
        store.fold_feedback(
            pd.DataFrame(
                {
                    "received_at": [stamp + timedelta(days=1)] * per_day,
                    "request_id": rids,
                    "kind": "label",
                    "name": "label",
                    "value": (rng.random(per_day) < p).astype(float),
                }
            )
        )
    return store, profiles


def test_one_event_a_day_is_judged_within_weeks(tmp_path: Path) -> None:
    store, profiles = _daily_series(tmp_path, 120, 1)
    cfg = MonitoringConfig(window_days=14, min_rows=30, min_labels=30)
    until = START + timedelta(days=120)
    report = monitor_store(
        store,
        "daily",
        profiles.__getitem__,
        cfg,
        "log_loss",
        since=until - timedelta(days=14),
        until=until,
    )
    (window,) = report.windows
    (judged,) = window.versions
    assert 30 <= (window.end - window.start).days <= 45, window
    assert judged.enough_data and judged.rows >= 30
    assert judged.accuracy is not None and judged.accuracy.state in ("ok", "degraded")
    assert judged.reason == ""
    # the same check on 14-day windows as before: never judged, and it says why
    fixed = monitor_store(
        store,
        "daily",
        profiles.__getitem__,
        cfg,
        "log_loss",
        since=until - timedelta(days=14),
        until=until,
        sized_by_data=False,
    )
    (before,) = fixed.windows[-1].versions
    assert not before.enough_data
    assert before.reason.startswith("not enough data: 14 rows, monitoring.min_rows is 30")


def test_a_window_that_cannot_judge_within_the_cap_says_so(tmp_path: Path) -> None:
    store, profiles = _daily_series(tmp_path, 60, 1)
    cfg = MonitoringConfig(window_days=7, min_rows=30, min_labels=30, max_window_days=21)
    until = START + timedelta(days=60)
    report = monitor_store(
        store,
        "daily",
        profiles.__getitem__,
        cfg,
        "wape",
        since=until - timedelta(days=7),
        until=until,
    )
    (window,) = report.windows
    (version,) = window.versions
    assert (window.end - window.start).days == 21
    assert not version.enough_data
    assert version.reason == (
        "not enough data: 21 rows, monitoring.min_rows is 30; not enough labels: 21 "
        "labelled (100% of the rows), judging needs 30 and 50% coverage, over 21 days "
        "(monitoring.max_window_days)"
    )


def test_a_dense_window_keeps_its_days(tmp_path: Path) -> None:
    store, profiles = _daily_series(tmp_path, 30, 40)
    cfg = MonitoringConfig(window_days=7, min_rows=200, min_labels=100)
    report = monitor_store(store, "dense", profiles.__getitem__, cfg, "wape")
    assert [(w.end - w.start).days for w in report.windows] == [2, 7, 7, 7, 7]
    assert all(v.enough_data for w in report.windows[1:] for v in w.versions)
