"""``driftloop loop run``: the controller against a running server; ``driftloop events``."""

from __future__ import annotations

import difflib
import signal
from datetime import UTC, datetime, timedelta
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
    working,
)
from driftloop.errors import UsageError

if TYPE_CHECKING:
    from driftloop.loop.controller import LoopTurn
    from driftloop.loop.lease import LeaseHolder
    from driftloop.loop.store import LoopEvent

__all__ = ["app", "event_table", "events"]

app = typer.Typer(help="The closed loop: retrain on drift, canary, promote or roll back.")


def _until(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--until {value!r} is not a time: use ISO 8601, e.g. 2026-12-01T06:00 (UTC if no "
            "offset is given)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _turn_line(turn: LoopTurn) -> str:
    at = f"{turn.at:%Y-%m-%d %H:%M}"
    line = f"{at} {turn.decision.action}: {turn.decision.reason}"
    if turn.trained is not None:
        gate = "passed" if turn.trained.gate.passed else "rejected"
        line += f"\n  trained v{turn.trained.version}: gate {gate} ({turn.trained.gate.summary()})"
    if turn.rollout is not None and turn.decision.action == "retrain":
        line += f"\n  rollout #{turn.rollout.id} of v{turn.rollout.version} started"
    return line


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _waiting(held: LeaseHolder) -> None:
    console.print(
        f"another controller is active: {held.holder} holds the lease since "
        f"{held.acquired_at:%Y-%m-%d %H:%M:%S} UTC, until {held.expires_at:%H:%M:%S} unless "
        "renewed; waiting to take over",
        highlight=False,
    )


@app.command()
def run(
    project: ProjectOption = Path("."),
    until: Annotated[
        str | None, typer.Option(help="Stop at this time (ISO 8601); default: run until stopped.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One check, then exit (for cron).")] = False,
    server: Annotated[
        str | None, typer.Option("--server", help="Server URL (default: serving host/port).")
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option("--prometheus", help="Read canary metrics by PromQL here.")
    ] = None,
) -> None:
    """Run the controller: check the champion every loop.check_every_hours, retrain on
    sustained drift or degraded accuracy (cool-down and cap apply), gate, canary, promote
    or roll back. Every decision goes to the event log (`driftloop events`)."""
    from driftloop.clock import WallClock
    from driftloop.loop.controller import LoopController
    from driftloop.loop.lease import open_lease
    from driftloop.project import Project
    from driftloop.registry import open_registry
    from driftloop.rollout.factory import open_controller

    with handle_errors():
        stop = _until(until)
        proj = Project.load(project)
        clock = WallClock()
        rollouts = open_controller(proj, server=server, prometheus=prometheus, clock=clock)
        rollouts.router.current()  # the server must answer before the loop starts
        loop = LoopController(proj, open_registry(proj, clock), rollouts, clock)
        cfg = proj.config.loop
        console.print(
            f"loop of {loop.model}: checks every {cfg.check_every_hours:g} h, triggers "
            f"{', '.join(cfg.triggers)}" + ("" if cfg.enabled else " (disabled: records only)")
        )
        lease = open_lease(proj.config, loop.store.path, loop.model, clock)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)  # a pod's stop: release the lease
        every = timedelta(hours=cfg.check_every_hours)

        def on_turn(turn: LoopTurn) -> None:
            console.print(_turn_line(turn))
            console.print(f"  next check at {turn.at + every:%Y-%m-%d %H:%M} UTC", style="dim")

        try:
            if once:
                if lease.wait(stop, _waiting) is not None:
                    with (
                        lease.kept(),
                        working("checking the champion (monitor; a retrain and canary if needed)"),
                    ):
                        turn = loop.check()
                    console.print(_turn_line(turn))
                return
            console.print("first check now (monitor; a retrain and canary if needed)")
            loop.run(stop, on_turn=on_turn, lease=lease, on_wait=_waiting)
        except KeyboardInterrupt:
            console.print("stopped; a running rollout resumes with the next `loop run`")
        finally:
            lease.release()


def _event_json(e: LoopEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "kind": e.kind,
        "version": e.version,
        "message": e.message,
        "evidence": dict(e.evidence),
    }


def event_table(found: list[LoopEvent], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("at", "kind", "version", "what"):
        table.add_column(column, overflow="fold")
    colours = {
        "promoted": "green",
        "rolled_back": "red",
        "drift_detected": "yellow",
        "gate_rejected": "red",
        "retrain_failed": "red",
        "recovered": "green",
        "paused": "yellow",
        "resumed": "green",
    }
    for e in found:
        colour = colours.get(e.kind)
        kind = f"[{colour}]{e.kind}[/]" if colour else e.kind
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", kind, e.version or "-", e.message)
    return table


def events(
    project: ProjectOption = Path("."),
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these kinds (repeatable).")
    ] = None,
    checks: Annotated[
        bool, typer.Option("--checks", help="Also list every check (one per day or so).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="The newest N events.")] = 200,
    json_out: JsonOption = False,
) -> None:
    """The loop's decisions with their evidence: drift detected, retrains, gates, rollout
    steps, promotions, rollbacks, holds."""
    from driftloop.loop.store import EVENT_KINDS, LoopStore
    from driftloop.project import Project

    with handle_errors():
        unknown = sorted(set(kind or ()) - set(EVENT_KINDS))
        if unknown:
            named = []
            for name in unknown:
                close = difflib.get_close_matches(name, EVENT_KINDS, n=1)
                named.append(f"{name} (did you mean {close[0]}?)" if close else name)
            raise UsageError(
                f"--kind {', '.join(named)}: not an event kind; the kinds are: "
                f"{', '.join(EVENT_KINDS)}"
            )
        proj = Project.load(project)
        kinds = tuple(kind) if kind else tuple(k for k in EVENT_KINDS if checks or k != "check")
        found = LoopStore(proj.state_dir / "state.db").events(
            proj.model_name, kinds=kinds, limit=limit
        )
        if json_out:
            emit_json([_event_json(e) for e in found])
            return
        if not found:
            console.print("no loop events yet: run `driftloop loop run` or `driftloop demo`")
            return
        console.print(event_table(found, f"loop events of {proj.model_name}"))
