"""Entry point of the ``driftloop`` command. Heavy libraries load only inside commands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from driftloop import __version__
from driftloop.cli import deploy, features, loop, models, rollout
from driftloop.cli.common import (
    JsonOption,
    console,
    emit_json,
    handle_errors,
    installed_commands,
)
from driftloop.cli.doctor import doctor
from driftloop.cli.monitor import monitor
from driftloop.cli.optimize import optimize
from driftloop.cli.replay import key_table, replay, replay_progress
from driftloop.cli.report import report
from driftloop.cli.serve import serve
from driftloop.cli.train import train

__all__ = ["app", "main"]

app = typer.Typer(
    name="driftloop",
    help="Closed-loop MLOps: features, registry, serving, drift monitoring, automatic retraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"driftloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Closed-loop MLOps on one machine."""


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="New project folder (absent or empty).")],
    scenario: Annotated[
        str,
        typer.Option(
            help="Scenario to generate: retail (demand forecasting, the spec's Q5) or fraud "
            "(card fraud with real-time features, the spec's Q3)."
        ),
    ] = "retail",
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 1,
    stores: Annotated[int | None, typer.Option(help="Number of stores.")] = None,
    products: Annotated[int | None, typer.Option(help="Number of products.")] = None,
    cards: Annotated[int | None, typer.Option(help="Fraud: number of cards.")] = None,
    days: Annotated[int | None, typer.Option(help="Days of history to generate.")] = None,
    no_shift: Annotated[
        bool, typer.Option("--no-shift", help="Generate without the regime shift.")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Your own table instead of a scenario: a Parquet or CSV file, or a DuckDB "
            "query (SELECT ...).",
        ),
    ] = None,
    entity: Annotated[
        str | None, typer.Option(help="With --data: the entity column(s), comma-separated.")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="With --data: the event time column.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="With --data: the column to predict.")] = None,
    task: Annotated[
        str | None,
        typer.Option(help="With --data: regression or classification (default: inferred)."),
    ] = None,
    label_delay: Annotated[
        str | None,
        typer.Option(
            "--label-delay",
            help="With --data: how long after an event its target is known, e.g. 1d, 7d "
            "(default: the table's spacing, at least a day).",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Create a project: a generated scenario, or your own table with --data."""
    from driftloop.errors import UsageError

    with handle_errors():
        if data is not None:
            _init_table(directory, data, entity, timestamp, target, task, label_delay, json_out)
            return
        given = [
            n
            for n, v in (
                ("--entity", entity),
                ("--timestamp", timestamp),
                ("--target", target),
                ("--task", task),
                ("--label-delay", label_delay),
            )
            if v is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)} need --data PATH (your own table)")
        if scenario == "fraud":
            _init_fraud(directory, seed, cards, days, no_shift, stores, products, json_out)
            return
        if cards is not None:
            raise UsageError("--cards is for --scenario fraud")
        _init_retail(directory, scenario, seed, stores, products, days, no_shift, json_out)


def _init_retail(
    directory: Path,
    scenario: str,
    seed: int,
    stores: int | None,
    products: int | None,
    days: int | None,
    no_shift: bool,
    json_out: bool,
) -> None:
    from driftloop.app.scaffold import create_project

    overrides: dict[str, object] = {
        key: value
        for key, value in (("n_stores", stores), ("n_products", products), ("days", days))
        if value is not None
    }
    if no_shift:
        overrides["shift"] = {"enabled": False}
    with console.status(f"generating the {scenario} scenario"):
        project = create_project(directory, scenario, seed, overrides)
    cfg = project.config.scenario
    summary = {
        "project": project.root,
        "scenario": scenario,
        "seed": seed,
        "stores": cfg.n_stores,
        "products": cfg.n_products,
        "days": cfg.days,
        "first_day": cfg.start_date,
        "last_day": cfg.end_date,
        "shift_date": cfg.shift.date if cfg.shift.enabled else None,
    }
    if json_out:
        emit_json(summary)
        return
    console.print(
        f"created {project.root}: {cfg.n_stores} stores x {cfg.n_products} products, "
        f"{cfg.start_date} to {cfg.end_date}"
        + (f", regime shift on {cfg.shift.date}" if cfg.shift.enabled else "")
    )
    console.print(f"next: cd {project.root} && driftloop features apply")


def _init_fraud(
    directory: Path,
    seed: int,
    cards: int | None,
    days: int | None,
    no_shift: bool,
    stores: int | None,
    products: int | None,
    json_out: bool,
) -> None:
    from driftloop.app.scaffold import create_fraud_project
    from driftloop.errors import UsageError
    from driftloop.features.layout import project_layout

    if stores is not None or products is not None:
        raise UsageError("--stores and --products are for --scenario retail; fraud has --cards")
    overrides: dict[str, object] = {"shift": not no_shift}
    if cards is not None:
        overrides["n_cards"] = cards
    if days is not None:
        overrides["days"] = days
        overrides["shift_after_days"] = max(1, days * 11 // 18)  # 110 of the default 180
    with console.status("generating the fraud scenario"):
        project = create_fraud_project(directory, seed, overrides)
    events = project_layout(project).read_events()
    truth = json.loads(project.scenario_truth_path.read_text(encoding="utf-8"))
    summary = {
        "project": project.root,
        "scenario": "fraud",
        "seed": seed,
        "transactions": len(events),
        "cards": int(events["card_id"].nunique()),
        "fraud_rate": float(events["is_fraud"].mean()),
        "first": events["event_timestamp"].min(),
        "last": events["event_timestamp"].max(),
        "shift_date": truth["shift_date"] if truth["shift_enabled"] else None,
        "feature_repo": project.root / "feature_repo" / "features.py",
    }
    if json_out:
        emit_json(summary)
        return
    shift = (
        f"; the fraud pattern changes on {truth['shift_date']}" if truth["shift_enabled"] else ""
    )
    console.print(
        f"created {project.root}: {summary['transactions']:,} card transactions of "
        f"{summary['cards']:,} cards, {summary['first']:%Y-%m-%d} to {summary['last']:%Y-%m-%d}, "
        f"{summary['fraud_rate']:.2%} fraud; chargebacks known 7 days later{shift}"
    )
    console.print(
        f"features: {summary['feature_repo']} (real-time activity features, yours to edit)\n"
        f"next: cd {project.root} && driftloop replay   then   driftloop features skew"
    )


def _init_table(
    directory: Path,
    data: str,
    entity: str | None,
    timestamp: str | None,
    target: str | None,
    task: str | None,
    label_delay: str | None,
    json_out: bool,
) -> None:
    from driftloop.app.scaffold import create_table_project
    from driftloop.errors import UsageError

    missing = [
        n
        for n, v in (("--entity", entity), ("--timestamp", timestamp), ("--target", target))
        if not v
    ]
    if missing:
        raise UsageError(f"--data needs {', '.join(missing)}: name the table's columns")
    assert entity and timestamp and target
    keys = [k.strip() for k in entity.split(",") if k.strip()]
    with console.status(f"reading {data}"):
        project, schema = create_table_project(
            directory, data, keys, timestamp, target, task, label_delay
        )
    summary = {
        "project": project.root,
        "data": data,
        "rows": schema.rows,
        "entities": schema.entities,
        "first": schema.first,
        "last": schema.last,
        "task": schema.task,
        "label_delay_days": project.config.labels.delay_days,
        "columns": [
            {"name": c.name, "role": c.role, "dtype": c.dtype, "detail": c.detail}
            for c in schema.columns
        ],
        "checks": list(schema.checks),
        "feature_repo": project.root / "feature_repo" / "features.py",
    }
    if json_out:
        emit_json(summary)
        return
    table = Table(title=f"what driftloop inferred from {data}", title_justify="left")
    for column in ("column", "role", "type", "detail"):
        table.add_column(column, overflow="fold")
    for c in schema.columns:
        table.add_row(c.name, c.role, c.dtype, c.detail)
    console.print(table)
    console.print(
        f"created {project.root}: {schema.rows:,} events of {schema.entities:,} entities, "
        f"{schema.first:%Y-%m-%d} to {schema.last:%Y-%m-%d}; {schema.task}, labels known "
        f"{project.config.labels.delay_days} day(s) after each event"
    )
    if schema.checks:
        console.print("[bold]check:[/]")
        for line in schema.checks:
            console.print(f"  - {line}", highlight=False)
    console.print(
        f"features: {project.root / 'feature_repo' / 'features.py'} (yours to edit)\n"
        f"next: cd {project.root} && driftloop replay   (or features apply, train, serve)"
    )


@app.command()
def demo(
    project: Annotated[
        Path, typer.Option("--project", "-p", help="Demo project folder, created when absent.")
    ] = Path("driftloop-demo"),
    seed: Annotated[int, typer.Option(min=0, help="Seed of the generated data.")] = 1,
    quick: Annotated[
        bool, typer.Option("--quick", help="A shorter horizon (38 days instead of 56).")
    ] = False,
    no_shift: Annotated[
        bool, typer.Option("--no-shift", help="The control run: the same days, no shift.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """The main job: the closed loop on the retail scenario, through a real server on a
    simulated clock: drift detected, retrained, canaried, promoted; a broken challenger
    rolled back; a timeline, key numbers against their targets, and report.html."""
    from driftloop.app.demo import run_demo

    with handle_errors():
        with replay_progress(disable=json_out) as progress:
            result = run_demo(
                project,
                seed=seed,
                quick=quick,
                shift=not no_shift,
                progress=progress.step,
                on_day=progress.day,
            )
        if json_out:
            emit_json(
                {k: v for k, v in vars(result).items() if k != "timeline"}
                | {"key_numbers": result.timeline.key_numbers, "events": result.timeline.events}
            )
            return
        from driftloop.cli.loop import event_table
        from driftloop.loop.store import LoopEvent

        shown = [
            LoopEvent(0, "", e.at, e.kind, e.version, e.message, e.evidence)
            for e in result.timeline.events
            if e.kind != "hold"
        ]
        console.print(event_table(shown, "timeline (simulated time)"))
        console.print(key_table(result.timeline))
        first, end = result.horizon  # the end is exclusive: the last day served is before it
        driftloop_cmd, mlflow_cmd = installed_commands()[:2]
        console.print(
            f"{result.requests:,} HTTP requests served {first} to {end - timedelta(days=1)} "
            f"(simulated), {result.feedback:,} outcomes fed back a day late.\n"
            f"Report: {result.report}\n"
            f"Next: cd {result.project} && {driftloop_cmd} events && {driftloop_cmd} models list "
            f"(or `{mlflow_cmd} ui --backend-store-uri sqlite:///.driftloop/mlflow.db`)",
            soft_wrap=True,
        )


app.add_typer(features.app, name="features")
app.command()(train)
app.add_typer(models.app, name="models")
app.command()(serve)
app.command()(monitor)
app.add_typer(rollout.app, name="rollout")
app.command()(optimize)
app.add_typer(loop.app, name="loop")
app.command()(loop.events)
app.command()(doctor)
app.command()(report)
app.command()(replay)
app.add_typer(deploy.app, name="deploy")


def main() -> None:
    """Console-script entry point."""
    import warnings

    # Libraries' deprecation notices about their own dependencies (ibis under Feast calls a
    # DuckDB API DuckDB deprecated) are not the user's to act on; a replay printed hundreds.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    app()
