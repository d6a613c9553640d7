"""``driftloop replay`` throughput on seeded tables, against the row-by-row floor.

    .venv/bin/python benchmarks/replay.py [--scale S] [--only NAME] [--seed N]

Three generated tables (seeded; no download), each made into a project with
``driftloop init`` and replayed over its default window (the last two years, or the part
after the first third), the whole loop running through a real server:

- ``daily``: one sensor, one event a day for ~3 years (the sparse series: ~730 days played);
- ``hourly``: 8 sensors, one event an hour each, 138 days (~92 days played);
- ``100k``: 200 sensors, one event a day each for 500 days (100,000 events).

``--scale`` shortens every table's days (0.25: a quarter) for a quick look; the default
window then scales with it.

Columns: events played; wall seconds of the serving phase (days played, labels, checks,
rollouts; not the setup, v1's training or the baselines) and the CPU seconds this process
spent in it (client, server and loop share the process; on a shared machine the wall time
follows the load, the CPU time much less); events/s; seconds per simulated day in the
first and the last fifth of the days played (wall, then CPU); the floor: the same model
(v1, as served) predicting the played rows one at a time in this process, in rows/s; and the
ratio floor / replay (target: <= 20). Everything is measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from driftloop.loop.replay import ReplayResult
    from driftloop.loop.simulate import DayServed
    from driftloop.project import Project

TABLES = {  # name: (sensors, days, events per day per sensor)
    "daily": (1, 1095, 1),
    "hourly": (8, 138, 24),
    "100k": (200, 500, 1),
}


def sensor_events(sensors: int, days: int, per_day: int, seed: int) -> pd.DataFrame:
    """Demand per sensor and time step: a level per sensor, temperature and load effects,
    from the middle of the table the response to load reverses."""
    rng = np.random.default_rng(seed)
    steps = days * per_day
    stamps = pd.Timestamp("2022-01-01") + pd.to_timedelta(np.arange(steps) * 24 / per_day, "h")
    level = rng.uniform(20, 60, sensors)
    after = np.arange(steps) >= steps * 2 // 3
    frames = []
    for e in range(sensors):
        temp = 15 + rng.normal(0, 5, steps)
        load = rng.uniform(0, 1, steps)
        slope = np.where(after, -0.6, 0.8)
        mean = level[e] * (1 + slope * load) + 0.8 * temp
        frames.append(
            pd.DataFrame(
                {
                    "sensor": f"s{e:03d}",
                    "time": stamps.strftime("%Y-%m-%d %H:%M:%S"),
                    "temp": temp.round(2),
                    "load": load.round(3),
                    "demand": np.maximum(mean + rng.normal(0, 3, steps), 0).round(1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Measured:
    name: str
    events: int
    days: int
    seconds: float
    cpu: float  # CPU seconds of this process (all threads: client, server, loop) while serving
    first_fifth: float  # seconds per simulated day
    last_fifth: float
    cpu_fifths: tuple[float, float]  # CPU seconds per simulated day, first and last fifth
    floor: float  # rows/s, row by row


def _project(root: Path, table: pd.DataFrame) -> Project:
    from typer.testing import CliRunner

    from driftloop.cli.main import app
    from driftloop.project import Project

    csv = root.with_suffix(".csv")
    table.to_csv(csv, index=False)
    made = CliRunner().invoke(
        app,
        [
            "init",
            str(root),
            "--data",
            str(csv),
            "--entity",
            "sensor",
            "--timestamp",
            "time",
            "--target",
            "demand",
        ],
    )
    if made.exit_code != 0:
        raise SystemExit(made.output)
    return Project.load(root)


def _floor(result: ReplayResult) -> float:
    """Rows/s of v1 predicting the played rows one at a time (its served predict path)."""
    from driftloop.features.store import FeatureStore
    from driftloop.features.training_set import build_training_set

    start, end = result.horizon
    model = result.registry.load_model(result.first.version)
    rows = build_training_set(FeatureStore(result.project), start, end)
    x = rows[list(model.feature_names)].to_numpy("float32")[:5000]
    began = time.perf_counter()
    for i in range(len(x)):
        model.predict_array(x[i : i + 1])
    return len(x) / (time.perf_counter() - began)


def measure(name: str, scale: float, seed: int, folder: Path, console: Console) -> Measured:
    from driftloop.cli.replay import default_window
    from driftloop.loop.replay import run_replay

    sensors, days, per_day = TABLES[name]
    table = sensor_events(sensors, max(int(days * scale), 60), per_day, seed)
    project = _project(folder / name, table)
    start, end = default_window(project)
    stamps: list[float] = []  # serving's start, then the end of each day played
    cpu: list[float] = []

    def on_step(step: str) -> None:
        if step.startswith("serve"):
            stamps[:] = [time.perf_counter()]
            cpu[:] = [time.process_time()]

    def on_day(day: DayServed) -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        if day.played % 50 == 0:
            console.print(f"  {name}: day {day.played}/{day.total}", highlight=False)

    result = run_replay(project, start, end, schedule_days=0, on_day=on_day, progress=on_step)
    per_day_s, per_day_cpu = np.diff(stamps), np.diff(cpu)
    fifth = max(len(per_day_s) // 5, 1)
    served = len(result.served)
    return Measured(
        name,
        served,
        len(result.days),
        stamps[-1] - stamps[0],
        cpu[-1] - cpu[0],
        float(np.mean(per_day_s[:fifth])),
        float(np.mean(per_day_s[-fifth:])),
        (float(np.mean(per_day_cpu[:fifth])), float(np.mean(per_day_cpu[-fifth:]))),
        _floor(result),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each table's days")
    parser.add_argument("--only", choices=sorted(TABLES), action="append", help="one table")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    console = Console(width=180)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or list(TABLES):
            rows.append(measure(name, args.scale, args.seed, Path(tmp), console))
    out = Table(title=f"driftloop replay, scale {args.scale} ({date.today()})")
    for col in (
        "table",
        "events",
        "days",
        "serve s",
        "CPU s",
        "events/s",
        "s/day first 1/5",
        "s/day last 1/5",
        "CPU s/day first, last 1/5",
        "floor rows/s",
        "floor / replay",
    ):
        out.add_column(col, justify="right")
    for m in rows:
        rate = m.events / m.seconds
        out.add_row(
            m.name,
            f"{m.events:,}",
            str(m.days),
            f"{m.seconds:.1f}",
            f"{m.cpu:.1f}",
            f"{rate:,.1f}",
            f"{m.first_fifth:.3f}",
            f"{m.last_fifth:.3f}",
            f"{m.cpu_fifths[0]:.3f}, {m.cpu_fifths[1]:.3f}",
            f"{m.floor:,.0f}",
            f"{m.floor / rate:,.0f}",
        )
    console.print(out)


if __name__ == "__main__":
    main()
