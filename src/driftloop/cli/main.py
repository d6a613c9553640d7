"""Entry point of the ``driftloop`` command. Heavy libraries load only inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from driftloop import __version__
from driftloop.cli import features, models, rollout
from driftloop.cli.common import JsonOption, console, emit_json, handle_errors, step_progress
from driftloop.cli.doctor import doctor
from driftloop.cli.monitor import monitor
from driftloop.cli.optimize import optimize
from driftloop.cli.report import report
from driftloop.cli.serve import serve
from driftloop.cli.train import train

if TYPE_CHECKING:
    from driftloop.demo import DemoResult

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
    scenario: Annotated[str, typer.Option(help="Scenario to generate: retail.")] = "retail",
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 1,
    stores: Annotated[int | None, typer.Option(help="Number of stores.")] = None,
    products: Annotated[int | None, typer.Option(help="Number of products.")] = None,
    days: Annotated[int | None, typer.Option(help="Days of history to generate.")] = None,
    no_shift: Annotated[
        bool, typer.Option("--no-shift", help="Generate without the regime shift.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Create a project: config, generated raw data, state folder."""
    from driftloop.scaffold import create_project

    overrides: dict[str, object] = {
        key: value
        for key, value in (("n_stores", stores), ("n_products", products), ("days", days))
        if value is not None
    }
    if no_shift:
        overrides["shift"] = {"enabled": False}
    with handle_errors():
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


def _demo_table(result: DemoResult) -> Table:
    table = Table(title="driftloop demo", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("result")
    table.add_row(
        "project",
        f"{result.project}" + (" (replaced the previous demo)" if result.replaced_previous else ""),
    )
    table.add_row("raw events", f"{result.raw_rows:,} daily sales rows, {result.series} series")
    table.add_row(
        "features",
        f"{result.applied.rows:,} rows in views {', '.join(result.applied.views)}",
    )
    table.add_row(
        "training set",
        f"{result.training_rows:,} rows, {result.training_window[0]} to "
        f"{result.training_window[1]}, {result.training_complete_share:.1%} with every feature",
    )
    if result.shift is not None:
        s = result.shift
        table.add_row(
            "regime shift",
            f"on {s.shift_date}, mean units/day affected {s.affected_before:.1f} -> "
            f"{s.affected_after:.1f}, unaffected {s.unaffected_before:.1f} -> "
            f"{s.unaffected_after:.1f}",
        )
    for label, run in (("model v1", result.first), ("model v2", result.second)):
        champion = (
            f", champion v{run.gate.champion_version} {run.gate.champion:.4f} on the same holdout"
            if run.gate.champion is not None
            else ""
        )
        table.add_row(
            label,
            f"version {run.version} as of {run.as_of}: holdout WAPE {run.metrics['wape']:.4f}"
            f"{champion}; gate {'passed' if run.gate.passed else 'rejected'}; "
            f"alias {run.alias or 'none'}; ONNX {run.onnx}",
        )
    served = result.served
    table.add_row(
        "serving",
        f"{served.day}: {served.requests} HTTP requests, {served.predictions} predictions by "
        f"v{', v'.join(served.versions)}, {served.feedback} outcomes fed back, "
        f"{served.logged_rows} rows in the prediction log, server p50 "
        f"{served.server_p50_ms:.2f} ms",
    )
    skew = result.skew
    mismatches = sum(f.mismatches for f in skew.features)
    table.add_row(
        "skew check",
        f"{skew.rows} served rows ({skew.source}) x {len(skew.features)} features: "
        f"{mismatches} mismatches "
        f"({'pass' if skew.passed else 'FAIL'})",
    )
    return table


@app.command()
def demo(
    project: Annotated[
        Path, typer.Option("--project", "-p", help="Demo project folder, created when absent.")
    ] = Path("driftloop-demo"),
    seed: Annotated[int, typer.Option(min=0, help="Seed of the generated data.")] = 1,
    json_out: JsonOption = False,
) -> None:
    """The main job: a retail project through features, training, registry and serving."""
    from driftloop.demo import DEMO_STEPS, run_demo

    with handle_errors():
        with step_progress(DEMO_STEPS, json_out) as step:
            result = run_demo(project, seed=seed, progress=step)
        if json_out:
            emit_json(result)
            return
        console.print(_demo_table(result))
        console.print(
            "Did: generated the scenario, computed features with one function, applied them "
            "to Feast (DuckDB offline, SQLite online), materialized, joined a training set "
            "point-in-time, trained and gated two LightGBM versions and registered them in "
            "MLflow with lineage, served a day over HTTP with outcomes fed back, and checked "
            "the served features against offline recomputation.\n"
            f"Next: cd {result.project} && driftloop models list"
        )
        if not result.skew.passed:
            raise typer.Exit(code=1)


app.add_typer(features.app, name="features")
app.command()(train)
app.add_typer(models.app, name="models")
app.command()(serve)
app.command()(monitor)
app.add_typer(rollout.app, name="rollout")
app.command()(optimize)
app.command()(doctor)
app.command()(report)


def main() -> None:
    """Console-script entry point."""
    app()
