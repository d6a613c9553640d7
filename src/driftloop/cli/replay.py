"""``driftloop replay``: what would the loop have done on this project's own history?"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from driftloop.cli.common import (
    JsonOption,
    ProjectOption,
    console,
    emit_json,
    handle_errors,
    parse_day,
)
from driftloop.errors import DataError, UsageError

if TYPE_CHECKING:
    from driftloop.loop.simulate import DayServed
    from driftloop.loop.timeline import Timeline
    from driftloop.project import Project

__all__ = [
    "DEFAULT_REPLAY_DAYS",
    "ReplayProgress",
    "default_window",
    "replay",
    "replay_progress",
    "start_fresh",
]

DEFAULT_REPLAY_DAYS = 730
PLAIN_LINES = 20  # progress lines a replay prints when the output is not a terminal


class ReplayProgress:
    """Progress of a replay or the demo: named steps, then the days played with an ETA.

    On a terminal, a Rich bar (elapsed and remaining time); otherwise plain lines, one per
    step and about ``PLAIN_LINES`` over the days, each with the time left. Nothing when
    ``disable`` (``--json``).
    """

    def __init__(self, progress: Any, plain: bool, disable: bool) -> None:
        self._progress = progress
        self._task = progress.add_task("", total=None)
        self._plain = plain and not disable
        self._disable = disable
        self._serving_since: float | None = None
        self._said = -1

    def step(self, name: str) -> None:
        self._progress.update(self._task, description=name, total=None, completed=0)
        if self._plain:
            console.print(name)

    def day(self, day: DayServed) -> None:
        import time

        now = time.monotonic()
        if self._serving_since is None:  # the first day's time counts: ETA from its start
            self._serving_since = now - 1e-9
        champion = f"champion v{day.champion}" if day.champion else "no champion"
        canary = f", canary v{day.challenger}" if day.challenger else ""
        self._progress.update(
            self._task,
            description=f"replaying {day.day}: {champion}{canary}",
            total=day.total or None,
            completed=day.played,
        )
        if not self._plain or not day.total:
            return
        every = max(1, day.total // PLAIN_LINES)
        if day.played // every == self._said and day.played != day.total:
            return
        self._said = day.played // every
        spent = now - self._serving_since
        left = spent / day.played * (day.total - day.played)
        console.print(
            f"day {day.played}/{day.total} ({day.day}, {champion}{canary}): "
            f"{spent:.0f} s elapsed, about {left:.0f} s left",
            highlight=False,
        )

    def schedule(self, done: int, total: int) -> None:
        self._progress.update(
            self._task,
            description=f"fixed-schedule retrain {done}/{total}",
            total=total,
            completed=done,
        )
        if self._plain and (done == total or done % max(1, total // 5) == 0):
            console.print(f"fixed-schedule retrain {done}/{total}", highlight=False)


@contextmanager
def replay_progress(disable: bool) -> Iterator[ReplayProgress]:
    """A :class:`ReplayProgress` on the CLI's console, live for the ``with`` block."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    terminal = console.is_terminal
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not terminal,
    )
    with progress:
        yield ReplayProgress(progress, plain=not terminal, disable=disable)


def default_window(project: Project) -> tuple[date, date]:
    """The last two years (what would the loop have done?), leaving v1 enough history to
    train on: at least a third of the table and its validation and holdout days."""
    from driftloop.features.layout import project_layout

    layout = project_layout(project)
    days = layout.event_days(layout.read_events())
    first, last = days.min(), days.max()
    cfg = project.config.training
    warmup = layout.warmup_days
    needed = cfg.validation_days + cfg.holdout_days + 30 + project.config.labels.delay_days
    needed += warmup
    start = max(
        first + timedelta(days=max(needed, (last - first).days // 3)),
        last - timedelta(days=DEFAULT_REPLAY_DAYS - 1),
    )
    if start >= last:
        raise DataError(
            f"the history ({first} to {last}) is too short to train on a part and replay the "
            "rest; pass --from and --until, or use a longer table"
        )
    return start, last + timedelta(days=1)


def key_table(timeline: Timeline) -> Table:
    table = Table(title="key numbers (measured by this run)", title_justify="left")
    for column in ("", "measured", "target", "met"):
        table.add_column(column, overflow="fold")
    for k in timeline.key_numbers:
        met = "-" if k.met is None else ("[green]yes[/]" if k.met else "[red]no[/]")
        table.add_row(k.name, k.value, k.target or "-", met)
    return table


def start_fresh(project: Path, json_out: bool) -> None:
    """``--fresh``: remove the loop's state, saying what went and what stayed (on stderr
    with --json, whose stdout is the result)."""
    from driftloop.cli.common import err_console
    from driftloop.loop.fresh import remove_loop_state, require_project_folder
    from driftloop.project import Project

    require_project_folder(project)
    done = remove_loop_state(Project.load(project))
    out = err_console if json_out else console
    if done.removed:
        out.print(f"--fresh removed: {', '.join(done.removed)}", highlight=False)
    else:
        out.print("--fresh: no registry, state or logs to remove", highlight=False)
    out.print(f"kept: {', '.join(done.kept)}", highlight=False)


def _scenario_text(proj: Project, begin: date, end: date, schedule_days: int) -> str:
    """What was replayed and how, for the report's header."""
    from driftloop.features.layout import project_layout

    data, keys = proj.config.data, project_layout(proj).entity_keys
    what = (
        f"{data.source}: {len(keys)} entity key(s) {', '.join(keys)}, target {data.target}"
        if data is not None
        else f"the {proj.config.scenario.type} scenario"
    )
    return (
        f"{what}. Version 1 was trained on what was known on {begin}; the days to "
        f"{end - timedelta(days=1)} were played through a real HTTP server in "
        "event-time order on a simulated clock, each target fed back "
        f"{proj.config.labels.delay_days} day(s) after its event, with the "
        "controller checking daily. The frozen v1 and a model retrained every "
        f"{schedule_days} days are scored offline on the same rows."
    )


def _print_result(timeline: Timeline, html: Path) -> None:
    """The timeline's events (holds left out), the key numbers and the report's path."""
    from driftloop.cli.loop import event_table
    from driftloop.loop.store import LoopEvent

    shown = [
        LoopEvent(0, "", e.at, e.kind, e.version, e.message, e.evidence)
        for e in timeline.events
        if e.kind != "hold"
    ]
    console.print(event_table(shown, "timeline (simulated time)"))
    console.print(key_table(timeline))
    console.print(f"Report: {html}")


def replay(
    project: ProjectOption = Path("."),
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day to replay (default: two years before the end, or a "
            "third into a shorter history).",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Day to stop before (default: after the last).")
    ] = None,
    schedule_days: Annotated[
        int,
        typer.Option(min=0, help="Retrain the fixed-schedule baseline every N days (0: none)."),
    ] = 7,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="First remove this project's registry, state, logs and online store (a "
            "failed or earlier replay's); keeps the config, data and feature_repo/.",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Backtest the loop on the project's history: v1 trained on the start, the rest played
    through a real server on a simulated clock with labels arriving late and the controller
    running; compared with the frozen v1 and a fixed-schedule retrain; writes report.html."""
    from driftloop.app.report import write_report
    from driftloop.loop.replay import REPLAY_STEPS, run_replay, summarize_replay
    from driftloop.project import Project

    with handle_errors():
        if fresh:
            start_fresh(project, json_out)
        proj = Project.load(project)
        first, last = default_window(proj)
        begin = parse_day(start, "--from") or first
        end = parse_day(until, "--until") or last
        if end <= begin:
            raise UsageError(f"--until {end} is not after --from {begin}: widen the range")
        with replay_progress(disable=json_out) as progress:
            result = run_replay(
                proj,
                begin,
                end,
                schedule_days=schedule_days,
                on_day=progress.day,
                on_schedule=progress.schedule,
                progress=progress.step,
            )
            progress.step(REPLAY_STEPS[-1])
            timeline = summarize_replay(
                result,
                title=f"driftloop replay of {proj.config.project}, {begin} to {end}",
                scenario=_scenario_text(proj, begin, end, schedule_days),
            )
            timeline.save(proj.state_dir / "timeline.json")
            html = write_report(timeline, proj.root)
        if json_out:
            emit_json(
                {"report": html, "key_numbers": timeline.key_numbers, "events": timeline.events}
            )
            return
        _print_result(timeline, html)
