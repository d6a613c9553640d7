"""Seconds per monitoring check on a growing prediction log: the old full read vs stored days.

    .venv/bin/python benchmarks/monitor.py [--rows N] [--days N] [--features N] [--seed N]
        [--repeats N] [--full-report]

Data (seeded NumPy): ``--rows`` predictions spread evenly over ``--days`` event days, one
version, ``--features`` float inputs logged as ``f__<name>``, entity keys; 80 % of the
predictions get a label by request id two days later, 10 % by entity and date. Each day is
written as the server writes it (``SegmentLog``: one prediction segment and one feedback
segment a day) and folded into the day store as the server's log flusher folds it.

Timed, in the same run, when the log holds 7 days and when it holds ``--days`` days:

- ``old``: the monitor as it was (the test oracle ``tests/monitoring/oracle_monitor.py``):
  read the whole prediction and feedback logs with DuckDB, join labels, filter in pandas;
- ``stored``: ``monitor_store`` (what ``monitor_project`` and ``driftloop monitor`` run):
  fold any segment not folded yet, merge the window's stored days, judge.

The check is the loop's daily one (the trailing 7-day window). ``--full-report`` also times
the whole ``driftloop monitor`` report (every 7-day window since the first day) at the end,
old and stored. Also printed: seconds to fold one day's segments (median) and to rebuild
the store from the logs. Times are the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the oracle lives in tests/

from tests.monitoring.oracle_monitor import oracle_windows

from driftloop.clock import SimulatedClock
from driftloop.config import MonitoringConfig
from driftloop.monitoring.daystore import DayStore
from driftloop.monitoring.monitor import monitor_store
from driftloop.statistics.profile import ReferenceProfile, build_profile
from driftloop.storage.segments import SegmentLog

KEYS = ("store_id", "product_id")
START = date(2023, 1, 1)
LABEL_DELAY_DAYS = 2


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


class _Log:
    """Writes the seeded log day by day, as a server would, and folds it as its flusher."""

    def __init__(self, state_dir: Path, args: argparse.Namespace) -> None:
        self.rng = np.random.default_rng(args.seed)
        self.per_day = args.rows // args.days
        self.names = [f"x{j}" for j in range(args.features)]
        ref = {n: self.rng.normal(0, 1, 20_000) for n in self.names}
        self.profile = build_profile(ref, self.rng.uniform(0, 1, 20_000), 10)
        self.clock = SimulatedClock(datetime(2023, 1, 1, tzinfo=UTC))
        self.store = DayStore(state_dir, KEYS)
        self.predictions = SegmentLog(
            state_dir / "predictions", 60.0, 10**9, self.clock, after_write=self._fold_predictions
        )
        self.feedback = SegmentLog(
            state_dir / "feedback", 60.0, 10**9, self.clock, after_write=self._fold_feedback
        )
        self.pending: list[pd.DataFrame] = []
        self.fold_seconds: list[float] = []

    def info(self, _version: str) -> tuple[ReferenceProfile, float, float]:
        return self.profile, 0.5, 0.4

    def _fold_predictions(self, path: Path, frame: pd.DataFrame) -> None:
        started = time.perf_counter()
        self.store.fold_predictions(frame, lambda _v: self.profile, (path.parent.name, path.name))
        self.fold_seconds.append(time.perf_counter() - started)

    def _fold_feedback(self, path: Path, frame: pd.DataFrame) -> None:
        started = time.perf_counter()
        self.store.fold_feedback(frame, (path.parent.name, path.name))
        self.fold_seconds[-1] += time.perf_counter() - started

    def day(self, d: int) -> None:
        n, rng = self.per_day, self.rng
        stamp = datetime(START.year, START.month, START.day, 12, tzinfo=UTC) + timedelta(days=d)
        self.clock.set(stamp)
        drift = 0.3 if d > 400 else 0.0
        p = rng.uniform(0.02, 0.98, n)
        frame = pd.DataFrame(
            {
                "served_at": stamp,
                "event_time": stamp,
                "request_id": [f"d{d}-{i}" for i in range(n)],
                "endpoint": "entity",
                "model": "bench",
                "version": "1",
                "route": "stable",
                "store_id": rng.integers(1, 50, n),
                "product_id": rng.integers(1, 200, n),
                "prediction": p,
                "latency_ms": 1.0,
                **{f"f__{name}": rng.normal(drift, 1.0, n) for name in self.names},
            }
        )
        self.predictions.append(frame.to_dict("records"))
        self.predictions.flush()
        truth = (rng.random(n) < p).astype(float)
        by_id = rng.random(n) < 0.8
        by_entity = ~by_id & (rng.random(n) < 0.5)
        labels = pd.DataFrame(
            {
                "request_id": pd.array(np.where(by_id, frame["request_id"], None), dtype="string"),
                "store_id": np.where(by_entity, frame["store_id"], np.nan),
                "product_id": np.where(by_entity, frame["product_id"], np.nan),
                "date": [stamp.date() if e else None for e in by_entity],
                "name": "label",
                "kind": "label",
                "value": truth,
            }
        )[by_id | by_entity]
        self.pending.append(labels)
        if len(self.pending) > LABEL_DELAY_DAYS:
            due = self.pending.pop(0).assign(received_at=stamp)
            self.feedback.append(due.to_dict("records"))
            self.feedback.flush()


def _check(
    log: _Log, state_dir: Path, cfg: MonitoringConfig, end: date, repeats: int
) -> dict[str, float]:
    since = end - timedelta(days=7)
    old, expected = _timed(
        lambda: oracle_windows(state_dir, KEYS, cfg, "log_loss", log.info, since, end, 7), repeats
    )
    new, report = _timed(
        lambda: monitor_store(
            DayStore(state_dir, KEYS), "bench", log.info, cfg, "log_loss", since, end, 7
        ),
        repeats,
    )
    a, b = report.windows[-1].versions[0], expected[-1].versions[0]
    assert a.rows == b.rows and a.accuracy.labeled == b.accuracy.labeled, (a, b)
    assert abs(a.prediction.psi - b.prediction.psi) < 1e-9
    return {"old": old, "stored": new}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="predictions in all")
    parser.add_argument("--days", type=int, default=700)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-report", action="store_true")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cfg = MonitoringConfig(window_days=7, min_rows=500, min_labels=200)
    root = Path(tempfile.mkdtemp(prefix="driftloop-monitor-bench-"))
    try:
        log = _Log(root, args)
        checks: dict[int, dict[str, float]] = {}
        started = time.perf_counter()
        for d in range(args.days):
            log.day(d)
            if d + 1 in (7, args.days):
                checks[d + 1] = _check(log, root, cfg, START + timedelta(days=d + 1), args.repeats)
            if (d + 1) % 100 == 0:
                console.print(f"day {d + 1}/{args.days}: {time.perf_counter() - started:.0f} s")
        end = START + timedelta(days=args.days)
        rebuilt = DayStore(root / "rebuilt", KEYS)
        rebuilt.state_dir = root
        rebuild, _ = _timed(lambda: rebuilt.rebuild(lambda _v: log.profile), 1)
        full: dict[str, float] = {}
        if args.full_report:
            full["old"], _ = _timed(
                lambda: oracle_windows(root, KEYS, cfg, "log_loss", log.info), 1
            )
            full["stored"], _ = _timed(
                lambda: monitor_store(
                    DayStore(root, KEYS), "bench", log.info, cfg, "log_loss", until=end
                ),
                1,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table = Table(
        title=f"monitoring check, {args.rows:,} predictions over {args.days} days, "
        f"{args.features} features (median of {args.repeats})"
    )
    for column in ("check", "old full read (s)", "stored days (s)", "old / stored"):
        table.add_column(column, justify="left" if column == "check" else "right")
    for day, found in checks.items():
        old, stored = found["old"], found["stored"]
        table.add_row(
            f"daily 7-day check, log of {day} days",
            f"{old:.3f}",
            f"{stored:.3f}",
            f"{old / stored:.1f}x",
        )
    if full:
        table.add_row(
            f"whole report ({args.days // 7 + 1} windows)",
            f"{full['old']:.2f}",
            f"{full['stored']:.2f}",
            f"{full['old'] / full['stored']:.1f}x",
        )
    console.print(table)
    first, last = checks[7], checks[args.days]
    console.print(
        f"stored days: a check on day {args.days} costs "
        f"{last['stored'] / first['stored']:.2f}x one on day 7; old full read: "
        f"{last['old'] / first['old']:.1f}x"
    )
    console.print(
        f"fold one day's segments (the flusher's work): median "
        f"{statistics.median(log.fold_seconds) * 1000:.0f} ms; rebuild the store from "
        f"the whole logs: {rebuild:.1f} s"
    )


if __name__ == "__main__":
    main()
