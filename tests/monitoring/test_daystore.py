"""The stored-days monitor against the old full-read monitor, on seeded logs."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from tests.monitoring.oracle_monitor import assert_same_window, labels_of, oracle_windows

from driftloop.clock import SimulatedClock
from driftloop.config import MonitoringConfig
from driftloop.monitoring.daystore import DayStore
from driftloop.monitoring.labels import ScoreHistogram
from driftloop.monitoring.monitor import monitor_store
from driftloop.statistics.profile import ReferenceProfile, build_profile
from driftloop.storage.segments import SegmentLog

KEYS = ("store_id", "product_id")
START = date(2024, 3, 1)
DAYS = 30


def _profiles(seed: int, task: str) -> dict[str, tuple[ReferenceProfile, float, float]]:
    rng = np.random.default_rng(seed)
    out = {}
    for version, shift in (("1", 0.0), ("2", 0.3)):
        a = rng.normal(shift, 1.0, 3000)
        b = rng.integers(0, 5, 3000).astype(float)
        p = rng.uniform(0, 1, 3000) if task == "classification" else rng.gamma(2.0, 5.0, 3000)
        profile = build_profile({"a": a, "b": b, "day_of_week": b}, p, 10)
        out[version] = (profile, 0.4 if task == "classification" else 0.3, 0.3)
    return out


def _write_logs(state_dir: Path, seed: int, task: str, after_each: Callable[[], Any]) -> None:
    """30 days of predictions (v2 from day 12, shadow rows), labels by request id (late,
    early, relabelled) and by entity and date, business outcomes; a segment a flush."""
    rng = np.random.default_rng(seed)
    clock = SimulatedClock(datetime(2024, 3, 1, tzinfo=UTC))
    predictions = SegmentLog(state_dir / "predictions", 60.0, 10**9, clock)
    feedback = SegmentLog(state_dir / "feedback", 60.0, 10**9, clock)
    pending: list[dict[str, Any]] = []
    for d in range(DAYS):
        day = START + timedelta(days=d)
        stamp = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        clock.set(stamp)
        n = int(rng.integers(5, 120))  # some days too sparse to judge alone
        for i in range(n):
            rid = f"r{d}-{i}"
            version = "2" if d >= 12 and rng.random() < 0.4 else "1"
            entity = (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
            pred = float(
                rng.uniform(0.01, 0.99) if task == "classification" else rng.gamma(2.0, 5.0)
            )
            row = {
                "served_at": stamp,
                "event_time": stamp + timedelta(minutes=i),
                "request_id": rid,
                "version": version,
                "store_id": entity[0],
                "product_id": entity[1],
                "prediction": pred,
                "f__a": float(rng.normal(0.02 * d, 1.0)),
                "f__b": float(rng.integers(0, 6)),
                "f__day_of_week": float(day.weekday()),
            }
            if rng.random() < 0.05:
                row["f__a"] = math.nan
            rows = [row]
            if version == "1" and d >= 12 and rng.random() < 0.3:  # shadow: same request id
                rows.append({**row, "version": "2", "prediction": pred * 0.9})
            predictions.append(rows)
            truth = (
                float(rng.random() < pred)
                if task == "classification"
                else float(max(pred + rng.normal(0, 4.0), 0.0))
            )
            kind = rng.random()
            if kind < 0.6:
                pending.append(
                    {"request_id": rid, "value": truth, "due": d + int(rng.integers(0, 4))}
                )
            elif kind < 0.8:
                pending.append(
                    {
                        "request_id": None,
                        "store_id": entity[0],
                        "product_id": entity[1],
                        "date": day,
                        "value": truth,
                        "due": d + 2,
                    }
                )
            if rng.random() < 0.1:
                pending.append(
                    {
                        "request_id": rid,
                        "kind": "business",
                        "name": "revenue",
                        "value": float(rng.uniform(1, 50)),
                        "due": d + 1,
                    }
                )
        if d % 3 == 0:  # labels that come before their predictions are flushed
            early = [p for p in pending if p["due"] == d]
            feedback.append([_outcome(p, stamp) for p in early])
            feedback.flush()
            after_each()
            pending = [p for p in pending if p["due"] != d]
        predictions.flush()
        after_each()
        clock.set(stamp + timedelta(hours=6))
        due = [p for p in pending if p["due"] <= d]
        pending = [p for p in pending if p["due"] > d]
        relabel = [{**p, "value": p["value"] + 1.0} for p in due[:3] if p.get("kind") is None]
        feedback.append([_outcome(p, stamp + timedelta(hours=6)) for p in due])
        feedback.append([_outcome(p, stamp + timedelta(hours=7)) for p in relabel])
        feedback.flush()
        after_each()


_ARRIVAL = iter(range(10**9))


def _outcome(p: dict[str, Any], at: datetime) -> dict[str, Any]:
    # a distinct arrival time each: the old reader's "last label wins" broke ties in no
    # defined order (an unstable sort); the store keeps the one logged last
    at += timedelta(microseconds=next(_ARRIVAL) % 10**6)
    return {
        "received_at": at,
        "request_id": p["request_id"],
        "store_id": p.get("store_id"),
        "product_id": p.get("product_id"),
        "date": p.get("date"),
        "name": p.get("name", "label"),
        "kind": p.get("kind", "label"),
        "value": p["value"],
    }


@pytest.mark.parametrize(
    ("task", "metric"), [("regression", "wape"), ("classification", "log_loss")]
)
def test_stored_days_equal_the_full_read_monitor_folded_as_the_logs_grow(
    tmp_path: Path, task: str, metric: str
) -> None:
    profiles = _profiles(7, task)
    cfg = MonitoringConfig(window_days=7, min_rows=150, min_labels=60)
    store = DayStore(tmp_path, KEYS)
    # folded after every flush, as the server's flusher does: labels before and after
    # their predictions, relabels, shadow rows
    _write_logs(tmp_path, 11, task, lambda: store.sync(lambda v: profiles[v][0]))
    report = monitor_store(store, "m", profiles.__getitem__, cfg, metric, sized_by_data=False)
    expected = oracle_windows(tmp_path, KEYS, cfg, metric, profiles.__getitem__)
    assert len(report.windows) == len(expected) == math.ceil(DAYS / 7)
    for new, old in zip(report.windows, expected, strict=True):
        assert_same_window(new, old)
    assert any(
        v.accuracy and v.accuracy.state != "not enough labels"
        for w in report.windows
        for v in w.versions
    )
    # a rebuild from the logs alone gives the same answers, for any range and length
    rebuilt = DayStore(tmp_path / "again", KEYS)
    rebuilt.state_dir = tmp_path
    assert rebuilt.rebuild(lambda v: profiles[v][0]) > DAYS
    since, until = START + timedelta(days=3), START + timedelta(days=26)
    again = monitor_store(
        rebuilt, "m", profiles.__getitem__, cfg, metric, since, until, 5, sized_by_data=False
    )
    old = oracle_windows(tmp_path, KEYS, cfg, metric, profiles.__getitem__, since, until, 5)
    for new, before in zip(again.windows, old, strict=True):
        assert_same_window(new, before)


def test_stored_roc_auc_matches_sklearn_on_the_joined_labels(tmp_path: Path) -> None:
    profiles = _profiles(3, "classification")
    _write_logs(tmp_path, 5, "classification", lambda: None)
    store = DayStore(tmp_path, KEYS)
    cfg = MonitoringConfig(window_days=DAYS, min_rows=10, min_labels=10)
    report = monitor_store(store, "m", profiles.__getitem__, cfg, "log_loss")
    rows = labels_of(tmp_path, KEYS)
    rows = rows[rows["label"].isin([0.0, 1.0])]  # relabels (+1) are neither class
    for assessed in report.windows[-1].versions:
        mine = rows[rows["version"] == assessed.version]
        expected = roc_auc_score(mine["label"], mine["prediction"])
        assert assessed.accuracy is not None
        assert assessed.accuracy.roc_auc == pytest.approx(expected, abs=1e-3)


def test_score_histograms_rank_like_sklearn_when_scores_crowd_near_zero() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(20_000) < 0.02).astype(float)
    scores = np.clip(rng.beta(1, 200, y.size) + 0.01 * y * rng.random(y.size), 0, 1)
    halves = ScoreHistogram.of(y[:7000], scores[:7000]) + ScoreHistogram.of(y[7000:], scores[7000:])
    assert halves.roc_auc() == pytest.approx(roc_auc_score(y, scores), abs=1e-3)
    assert math.isnan(ScoreHistogram.of(np.zeros(3), np.ones(3)).roc_auc())


def test_a_store_whose_logs_are_gone_is_made_again_from_what_is_left(tmp_path: Path) -> None:
    profiles = _profiles(1, "regression")
    clock = SimulatedClock(datetime(2024, 3, 1, 12, tzinfo=UTC))
    log = SegmentLog(tmp_path / "predictions", 60.0, 10**9, clock)
    for d in range(3):
        stamp = clock.set(datetime(2024, 3, 1 + d, 12, tzinfo=UTC))
        log.append(
            [
                {
                    "event_time": stamp,
                    "request_id": f"r{d}-{i}",
                    "version": "1",
                    "prediction": 1.0,
                    "f__a": 0.0,
                }
                for i in range(10)
            ]
        )
        log.flush()
    store = DayStore(tmp_path, KEYS)
    assert store.sync(lambda v: profiles[v][0]) == 3
    assert store.sync(lambda v: profiles[v][0]) == 0  # folded once
    assert [r for _, r, _, _ in store.day_totals(START, START + timedelta(days=3))] == [10] * 3
    shutil.rmtree(tmp_path / "predictions" / "2024-03-01")  # the oldest day's logs removed
    assert store.sync(lambda v: profiles[v][0]) == 2
    assert store.day_range() == (date(2024, 3, 2), date(2024, 3, 3))


def test_served_predictions_older_than_the_label_horizon_are_let_go_and_windows_stay(
    tmp_path: Path,
) -> None:
    profiles = _profiles(7, "regression")
    cfg = MonitoringConfig(window_days=7, min_rows=150, min_labels=60)
    # labels arrive up to 3 days after their prediction's day: 5 days keep every one
    store = DayStore(tmp_path, KEYS, keep_days=5)
    _write_logs(tmp_path, 11, "regression", lambda: store.sync(lambda v: profiles[v][0]))
    with store._connect() as con:
        oldest = con.execute("SELECT MIN(day) FROM served").fetchone()[0]
        entity_days = con.execute("SELECT MIN(day) FROM entity_labels").fetchone()[0]
    last = START + timedelta(days=DAYS - 1)
    assert oldest == entity_days == (last - timedelta(days=5)).isoformat()
    expected = oracle_windows(tmp_path, KEYS, cfg, "wape", profiles.__getitem__)
    report = monitor_store(store, "m", profiles.__getitem__, cfg, "wape", sized_by_data=False)
    for new, old in zip(report.windows, expected, strict=True):
        assert_same_window(new, old)
    # a rebuild meets the logs in the order they were written: the same answers
    rebuilt = DayStore(tmp_path / "again", KEYS, keep_days=5)
    rebuilt.state_dir = tmp_path
    rebuilt.rebuild(lambda v: profiles[v][0])
    again = monitor_store(rebuilt, "m", profiles.__getitem__, cfg, "wape", sized_by_data=False)
    for new, old in zip(again.windows, expected, strict=True):
        assert_same_window(new, old)

    # a label for a day let go judges nothing (without the horizon it would: sanity)
    def first_day(days: DayStore) -> Any:
        return days.window(START, START + timedelta(days=1), lambda v: profiles[v][0])

    before = first_day(store)
    kept_all = DayStore(tmp_path / "all", KEYS)
    kept_all.state_dir = tmp_path
    kept_all.rebuild(lambda v: profiles[v][0])
    clock = SimulatedClock(datetime(2024, 4, 1, tzinfo=UTC))
    late = SegmentLog(tmp_path / "feedback", 60.0, 10**9, clock)
    late.append([_outcome({"request_id": f"r0-{i}", "value": 1e6}, clock.now()) for i in range(5)])
    late.flush()
    assert store.sync(lambda v: profiles[v][0]) == 1
    assert repr(first_day(store)) == repr(before)  # repr: NaN fields compare unequal
    assert kept_all.sync(lambda v: profiles[v][0]) == 1
    assert repr(first_day(kept_all)) != repr(before)


def test_the_horizon_follows_event_days_capped_by_the_servers_clock(tmp_path: Path) -> None:
    profiles = _profiles(1, "regression")
    store = DayStore(tmp_path, KEYS, keep_days=5)

    def fold(segment_day: str, event_day: date, n: int) -> None:
        stamp = datetime(event_day.year, event_day.month, event_day.day, 12, tzinfo=UTC)
        frame = pd.DataFrame(
            {
                "event_time": [stamp] * n,
                "request_id": [f"{event_day}-{i}" for i in range(n)],
                "version": ["1"] * n,
                "prediction": [1.0] * n,
                "f__a": [0.0] * n,
            }
        )
        store.fold_predictions(frame, lambda v: profiles[v][0], (segment_day, f"{event_day}"))

    def served_days() -> list[str]:
        with store._connect() as con:
            return [d for (d,) in con.execute("SELECT DISTINCT day FROM served ORDER BY day")]

    # a backfill served years after its event days (a wall clock) keeps them for labels
    fold("2026-12-07", date(2024, 3, 1), 3)
    fold("2026-12-07", date(2024, 3, 4), 3)
    assert served_days() == ["2024-03-01", "2024-03-04"]
    # an event_time past the server's clock moves the horizon only as far as the clock
    fold("2024-03-08", date(2030, 1, 1), 3)
    assert served_days() == ["2024-03-04", "2030-01-01"]
