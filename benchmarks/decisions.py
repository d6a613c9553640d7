"""Is the loop better than retraining on a schedule? The decision benchmark.

For each table of a panel it makes a project the way a user would (``driftloop init``,
with ``--data`` for a public table), replays the project's default window through a real
server with the loop deciding, and scores on the same rows the first version frozen and
fixed schedules that retrain every 7 and every 28 days (the project's model, window and
split, no gate: what a cron job does). One table, one row per project:

- accuracy (WAPE, or log loss for classifiers) over the whole replay and its last quarter,
  for the loop, frozen, every 7 and every 28 days;
- deployments (the loop's promotions; a schedule deploys every retrain), the loop's
  scheduled challengers (``loop.challenger_every_days``), gate rejections and rollbacks;
- drift alarms, and how many were false: every alarm on a table without a change (the
  no-change control, the seasonal-only table), alarms before the change otherwise;
- detection delay: days from the documented change to the first alarm on or after it;
- the verdict against issue 18's targets: accuracy at least the best schedule's (within
  1 % relative) with at most a quarter of its deployments.

The panel: the retail scenario with and without its shift, the fraud scenario, the
sensor table of the tests (a shift on 2023-06-30), and the public tables of
``driftloop.app.datasets`` (Chicago ridership, Puerto Rico's daily deaths, Texas housing,
Victoria's half-hourly electricity demand). Seeded: the same command prints the same
table, timings aside.

    python benchmarks/decisions.py                       # the whole panel
    python benchmarks/decisions.py --tables sensor,pr_deaths --json out.json
    python benchmarks/decisions.py --challenger-every-days 0   # without the scheduled challenger
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' sensor table

from driftloop.app.datasets import DATASETS  # noqa: E402
from driftloop.cli.main import app  # noqa: E402
from driftloop.cli.replay import default_window  # noqa: E402
from driftloop.features.store import FeatureStore  # noqa: E402
from driftloop.loop.replay import (  # noqa: E402
    REPLAY_STEPS,
    ReplayResult,
    period_error,
    replay_error,
    run_replay,
    scenario_shift_date,
)
from driftloop.loop.schedule import ScheduleThread  # noqa: E402
from driftloop.project import Project  # noqa: E402

SCHEDULES = (7, 28)
SEED = 11


@dataclass(frozen=True)
class PanelTable:
    """How to make the project, and the change it holds (None: a no-change control)."""

    name: str
    init_args: Callable[[Path, Path], list[str]]  # (work folder, project folder) -> args
    change: date | None
    note: str


@dataclass
class Row:
    table: str
    days: int
    events: int
    metric: str
    loop_all: float
    frozen_all: float
    every7_all: float
    every28_all: float
    loop_last: float
    frozen_last: float
    every7_last: float
    every28_last: float
    deployments: int
    deployments7: int
    deployments28: int
    gate_rejections: int
    rollbacks: int
    scheduled: int  # the loop's scheduled challengers (retrains on loop.challenger_every_days)
    retrains: int
    failed: int  # retrains that failed or waited (too few rows for a holdout)
    alarms: int
    false_alarms: int | None  # None: the documented change lies outside the replayed window
    detection_days: int | None
    change: str
    seconds: float

    def verdict(self) -> str:
        best, deployed = min(
            (self.every7_all, self.deployments7), (self.every28_all, self.deployments28)
        )
        if not math.isfinite(self.loop_all) or not math.isfinite(best):
            return "not judged"
        accurate = self.loop_all <= best * 1.01
        frugal = self.deployments <= deployed / 4
        if accurate and frugal:
            return "met"
        misses = [] if accurate else [f"{self.loop_all / best - 1:+.1%} vs best schedule"]
        misses += [] if frugal else [f"{self.deployments} > {deployed}/4 deployments"]
        return "not met: " + "; ".join(misses)


def _scenario(kind: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    return lambda _work, folder: [
        "init",
        str(folder),
        "--scenario",
        kind,
        "--seed",
        str(SEED),
        *extra,
    ]


def _public(name: str) -> Callable[[Path, Path], list[str]]:
    def args(work: Path, folder: Path) -> list[str]:
        source = work / f"{name}.csv"
        DATASETS[name].load().to_csv(source, index=False)
        return DATASETS[name].init_args(source, folder)

    return args


def _sensor(work: Path, folder: Path) -> list[str]:
    from tests.tabular.conftest import sensor_table

    source = work / "sensors.csv"
    sensor_table().to_csv(source, index=False)
    return [
        "init",
        str(folder),
        "--data",
        str(source),
        "--entity",
        "sensor",
        "--timestamp",
        "day",
        "--target",
        "demand",
    ]


def panel() -> dict[str, PanelTable]:
    from tests.tabular.conftest import SHIFT_DAY

    tables = [
        PanelTable("retail", _scenario("retail"), date(2020, 3, 16), "pandemic-style shift"),
        PanelTable("retail-noshift", _scenario("retail", "--no-shift"), None, "control"),
        PanelTable("fraud", _scenario("fraud"), None, "fraud pattern change (truth file)"),
        PanelTable("sensor", _sensor, SHIFT_DAY, "load response reverses"),
        *(PanelTable(n, _public(n), t.change, t.change_note) for n, t in DATASETS.items()),
    ]
    return {t.name: t for t in tables}


def _set_loop(folder: Path, loop: dict[str, object]) -> None:
    """Override keys of the project's ``loop:`` section (as a user edits driftloop.yaml)."""
    import yaml

    path = folder / "driftloop.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("loop", {}).update(loop)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _replay_with_monthly(
    project: Project, start: date, end: date
) -> tuple[ReplayResult, pd.DataFrame]:
    """The replay (with the weekly schedule), and the monthly schedule's predictions: the
    monthly models are trained in a thread while the days are served, as the weekly ones
    (same training sets and models as ``scheduled_predictions`` after the replay)."""
    monthly: list[ScheduleThread] = []

    def on_step(step: str) -> None:
        if step == REPLAY_STEPS[2]:  # the features are applied: the control can read them
            monthly.append(ScheduleThread(project, FeatureStore(project), start, end, SCHEDULES[1]))
            monthly[0].__enter__()

    try:
        result = run_replay(project, start, end, schedule_days=SCHEDULES[0], progress=on_step)
        return result, monthly[0].result(lambda _done, _total: None)
    finally:
        for thread in monthly:
            thread.__exit__(None, None, None)


def run_table(
    spec: PanelTable, work: Path, console: Console, loop: dict[str, object] | None = None
) -> Row:
    folder = work / spec.name
    made = CliRunner().invoke(app, spec.init_args(work, folder))
    if made.exit_code != 0:
        raise RuntimeError(f"init of {spec.name} failed: {made.output}")
    if loop:
        _set_loop(folder, loop)
    project = Project.load(folder)
    documented = spec.change or scenario_shift_date(project)
    start, end = default_window(project)
    # a documented change before the replayed window: no alarm can be called false or late
    outside = documented is not None and not start <= documented < end
    change = None if outside else documented
    began = time.perf_counter()
    with console.status(f"{spec.name}: replaying {start} to {end}"):
        result, monthly = _replay_with_monthly(project, start, end)
    seconds = time.perf_counter() - began
    _key, metric, error = replay_error(project)
    quarter = start + (end - start) * 3 // 4
    frames = (result.served, result.frozen, result.scheduled, monthly)
    whole = [period_error(f, start, end, error) for f in frames]
    last = [period_error(f, quarter, end, error) for f in frames]
    kinds = [e.kind for e in result.events]
    alarms = [e.at.date() for e in result.events if e.kind == "drift_detected"]
    false = None if outside else len(alarms) if change is None else sum(a < change for a in alarms)
    after = [a for a in alarms if change is not None and a >= change]
    days = (end - start).days
    return Row(
        table=spec.name,
        days=days,
        events=len(result.served),
        metric=metric,
        loop_all=whole[0],
        frozen_all=whole[1],
        every7_all=whole[2],
        every28_all=whole[3],
        loop_last=last[0],
        frozen_last=last[1],
        every7_last=last[2],
        every28_last=last[3],
        deployments=kinds.count("promoted"),
        deployments7=math.ceil(days / SCHEDULES[0]),
        deployments28=math.ceil(days / SCHEDULES[1]),
        gate_rejections=kinds.count("gate_rejected"),
        rollbacks=kinds.count("rolled_back"),
        scheduled=sum(
            e.kind == "retrain_started" and bool(e.evidence.get("scheduled")) for e in result.events
        ),
        retrains=kinds.count("retrain_started"),
        failed=kinds.count("retrain_failed") + kinds.count("retrain_waiting"),
        alarms=len(alarms),
        false_alarms=false,
        detection_days=(after[0] - change).days if after and change else None,
        change=(
            f"{documented} ({spec.note}; before the replayed window {start} to {end})"
            if outside
            else f"{change} ({spec.note})"
            if change
            else f"none ({spec.note})"
        ),
        seconds=seconds,
    )


def render(rows: list[Row]) -> Table:
    table = Table(title="the loop against fixed schedules (lower error is better)")
    for name in (
        "table",
        "metric",
        "whole: loop / frozen / 7d / 28d",
        "last quarter",
        "deploys loop / 7d / 28d",
        "retrains (failed) / sched.",
        "gate rej.",
        "rollbacks",
        "alarms (false)",
        "detected after",
        "verdict",
        "s",
    ):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r.table,
            r.metric,
            f"{r.loop_all:.3f} / {r.frozen_all:.3f} / {r.every7_all:.3f} / {r.every28_all:.3f}",
            f"{r.loop_last:.3f} / {r.frozen_last:.3f} / {r.every7_last:.3f} / {r.every28_last:.3f}",
            f"{r.deployments} / {r.deployments7} / {r.deployments28}",
            f"{r.retrains} ({r.failed}) / {r.scheduled}",
            str(r.gate_rejections),
            str(r.rollbacks),
            f"{r.alarms} ({'-' if r.false_alarms is None else r.false_alarms})",
            "-" if r.detection_days is None else f"{r.detection_days} d",
            r.verdict(),
            f"{r.seconds:.0f}",
        )
    return table


def main() -> int:
    tables = panel()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", default=",".join(tables), help=f"comma-separated, of: {', '.join(tables)}"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument(
        "--challenger-every-days",
        type=float,
        default=None,
        help="loop.challenger_every_days for every project (0: off; default: the config's default)",
    )
    args = parser.parse_args()
    loop = (
        {}
        if args.challenger_every_days is None
        else {"challenger_every_days": args.challenger_every_days}
    )
    chosen = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in tables]
    if unknown:
        parser.error(f"unknown table(s) {unknown}: choose from {', '.join(tables)}")
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # library notices, as the CLI
    console = Console(width=None if sys.stdout.isatty() else 200)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="driftloop-decisions-") as tmp:
        for name in chosen:
            rows.append(run_table(tables[name], Path(tmp), console, loop))
            console.print(f"{name}: {rows[-1].verdict()} ({rows[-1].seconds:.0f} s)")
            console.print(json.dumps(asdict(rows[-1]), default=str))  # kept if a later one fails
            if args.json:
                args.json.write_text(json.dumps([asdict(r) for r in rows], default=str, indent=2))
    console.print(render(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], default=str, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
