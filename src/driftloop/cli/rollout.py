"""``driftloop rollout``: start (and follow) a canary, blue-green or A/B rollout; status,
abort, history."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from driftloop.cli.common import JsonOption, ProjectOption, console, emit_json, handle_errors

if TYPE_CHECKING:
    from driftloop.rollout.controller import RolloutController
    from driftloop.rollout.store import Rollout, RolloutEvent, RolloutStore

__all__ = ["app"]

app = typer.Typer(help="Canary / blue-green / A-B rollouts with automatic promotion and rollback.")

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Server URL (default: rollout.server_url or serving host/port)."),
]
PrometheusOption = Annotated[
    str | None,
    typer.Option("--prometheus", help="Read canary metrics from this Prometheus (PromQL)."),
]


def _controller(
    project_dir: Path, server: str | None = None, prometheus: str | None = None
) -> RolloutController:
    from driftloop.project import Project
    from driftloop.rollout.factory import open_controller

    return open_controller(Project.load(project_dir), server=server, prometheus=prometheus)


def _store(project_dir: Path) -> tuple[str, RolloutStore]:
    """The project's model name and rollout store (no registry needed to read them)."""
    from driftloop.project import Project
    from driftloop.rollout.store import RolloutStore

    proj = Project.load(project_dir)
    return proj.model_name, RolloutStore(proj.state_dir / "state.db")


def _rollout_json(r: Rollout) -> dict[str, Any]:
    return {
        "id": r.id,
        "model": r.model,
        "version": r.version,
        "stable": r.stable,
        "strategy": r.strategy,
        "state": r.state,
        "step": r.step + 1 if r.state == "step" else None,
        "weight": r.weight,
        "shadow": r.shadow,
        "applied": r.applied,
        "reason": r.reason,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "phase_started_at": r.phase_started_at,
        "abort_requested": r.abort_requested,
        "last_check": r.last_check,
    }


def _event_json(e: RolloutEvent) -> dict[str, Any]:
    return {
        "at": e.at,
        "from": e.from_state,
        "to": e.to_state,
        "weight": e.weight,
        "reason": e.reason,
        "evidence": dict(e.evidence),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _evidence_table(evidence: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("check", "value", "threshold", "ok", "detail"):
        table.add_column(column)
    for name, e in evidence.items():
        passed = e.get("passed")
        ok = "-" if passed is None else ("[green]yes[/]" if passed else "[red]no[/]")
        table.add_row(
            name, _fmt(e.get("value")), _fmt(e.get("threshold")), ok, str(e.get("detail", ""))
        )
    return table


def _done(r: Rollout) -> None:
    """Exit 0 when promoted, 1 when rolled back or aborted."""
    if r.state == "promoted":
        return
    raise typer.Exit(code=1)


@app.command()
def start(
    version: Annotated[str, typer.Argument(help="Registered version to roll out.")],
    project: ProjectOption = Path("."),
    strategy: Annotated[
        str | None, typer.Option(help="canary | blue-green | ab (default: rollout.strategy).")
    ] = None,
    server: ServerOption = None,
    prometheus: PrometheusOption = None,
    reason: Annotated[str | None, typer.Option(help="Why; recorded with the rollout.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Start a rollout (or resume the unfinished one of VERSION) and follow it to the end.

    Exits 0 when the version is promoted, 1 when it is rolled back or aborted.
    """
    with handle_errors():
        ctl = _controller(project, server, prometheus)
        who = f"{getpass.getuser()} (cli)"
        rollout = ctl.start(version, strategy, reason or "")
        resumed = rollout.state != "pending" or not rollout.applied
        if not json_out:
            verb = "resuming" if resumed else "starting"
            console.print(
                f"{verb} rollout #{rollout.id}: {rollout.strategy} of v{rollout.version} "
                f"against v{rollout.stable} (by {who}); checks every "
                f"{ctl.cfg.check_interval_s:g} s"
            )
        seen = {"label": "", "reason": ""}

        def show(r: Rollout) -> None:
            if json_out:
                return
            if r.label != seen["label"]:
                seen["label"] = r.label
                console.print(f"[bold]{r.label}[/]: {r.reason}")
            check = r.last_check or {}
            why = str(check.get("reason", ""))
            if not r.terminal and why and why != seen["reason"]:
                seen["reason"] = why
                console.print(f"  {why}", style="dim")

        final = ctl.run(rollout.id, on_tick=show)
        if json_out:
            emit_json(
                {
                    "rollout": _rollout_json(final),
                    "events": [_event_json(e) for e in ctl.store.events(final.id)],
                }
            )
        else:
            events = ctl.store.events(final.id)
            if events and events[-1].evidence:
                console.print(_evidence_table(dict(events[-1].evidence), "deciding evidence"))
            colour = "green" if final.state == "promoted" else "red"
            console.print(f"[bold {colour}]{final.label}[/]: {final.reason}")
        _done(final)


@app.command()
def status(project: ProjectOption = Path("."), json_out: JsonOption = False) -> None:
    """The running (or latest) rollout: state, weight and the latest check's evidence."""
    with handle_errors():
        model, store = _store(project)
        r = store.active(model) or store.latest(model)
        if json_out:
            emit_json({"rollout": None if r is None else _rollout_json(r)})
            return
        if r is None:
            console.print(f"no rollout of {model!r} yet: `driftloop rollout start VERSION`")
            return
        console.print(
            f"rollout #{r.id}: {r.strategy} of v{r.version} against v{r.stable}: "
            f"[bold]{r.label}[/] (canary weight {r.weight:g}%"
            f"{', shadow' if r.shadow else ''}{'' if r.applied else ', not yet applied'})"
        )
        console.print(f"  {r.reason}")
        check = r.last_check or {}
        if check and not r.terminal:
            console.print(f"latest check {check.get('at')}: {check.get('reason')}")
            console.print(_evidence_table(dict(check.get("evidence") or {}), "evidence"))


@app.command()
def abort(
    project: ProjectOption = Path("."),
    server: ServerOption = None,
    reason: Annotated[str | None, typer.Option(help="Why; recorded with the abort.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Stop the running rollout: canary weight 0, challenger alias cleared, reason recorded."""
    with handle_errors():
        from driftloop.errors import RolloutError

        ctl = _controller(project, server)
        active = ctl.store.active(ctl.model)
        if active is None:
            raise RolloutError(f"no rollout of {ctl.model!r} is running; nothing to abort")
        who = f"{getpass.getuser()} (cli)"
        r = ctl.abort(active.id, reason or f"aborted by {who}")
        if json_out:
            emit_json({"rollout": _rollout_json(r)})
            return
        console.print(f"rollout #{r.id} of v{r.version}: [bold]{r.label}[/]: {r.reason}")


@app.command()
def history(
    project: ProjectOption = Path("."),
    rollout_id: Annotated[
        int | None, typer.Option("--id", help="One rollout's events (default: the latest).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rollouts listed.")] = 20,
    json_out: JsonOption = False,
) -> None:
    """Past rollouts, and every transition of one with the evidence that decided it."""
    with handle_errors():
        model, store = _store(project)
        rollouts = store.recent(model, limit)
        chosen = store.get(rollout_id) if rollout_id is not None else None
        if chosen is None and rollouts:
            chosen = rollouts[0]
        events = store.events(chosen.id) if chosen is not None else []
        if json_out:
            emit_json(
                {
                    "rollouts": [_rollout_json(r) for r in rollouts],
                    "events": [_event_json(e) for e in events],
                }
            )
            return
        if not rollouts:
            console.print(f"no rollout of {model!r} yet: `driftloop rollout start VERSION`")
            return
        table = Table(title=f"rollouts of {model}")
        for column in ("#", "version", "vs", "strategy", "state", "started", "reason"):
            table.add_column(column)
        for r in rollouts:
            table.add_row(
                str(r.id),
                f"v{r.version}",
                f"v{r.stable}",
                r.strategy,
                r.label,
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                r.reason,
            )
        console.print(table)
        if chosen is None:
            return
        console.print(f"\n[bold]rollout #{chosen.id}[/] transitions:")
        for e in events:
            console.print(
                f"{e.at:%Y-%m-%d %H:%M:%S}  {e.from_state or 'new'} -> {e.to_state} "
                f"(weight {e.weight:g}%): {e.reason}"
            )
            if e.evidence:
                console.print(_evidence_table(dict(e.evidence), "  evidence"))
