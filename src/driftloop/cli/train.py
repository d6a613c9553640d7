"""``driftloop train``: the training pipeline with its gate and registration."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from driftloop.cli.common import (
    JsonOption,
    ProjectOption,
    console,
    emit_json,
    handle_errors,
    parse_day,
    step_progress,
)

__all__ = ["train"]


def train(
    project: ProjectOption = Path("."),
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Train with the labels known on this day (YYYY-MM-DD)."),
    ] = None,
    on_pass: Annotated[
        str | None,
        typer.Option(help="Alias for a passing model when a champion exists: champion|challenger."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Train on a time window, gate against the champion, register with lineage."""
    from driftloop.errors import GateFailed, UsageError
    from driftloop.pipeline.train import TRAIN_STEPS, run_training
    from driftloop.project import Project
    from driftloop.registry import ALIASES, open_registry

    with handle_errors():
        if on_pass is not None and on_pass not in ALIASES:
            raise UsageError(f"--on-pass {on_pass!r}: choose champion or challenger")
        day = parse_day(as_of, "--as-of")
        proj = Project.load(project)
        registry = open_registry(proj)
        with step_progress(TRAIN_STEPS, json_out) as step:
            result = run_training(
                proj,
                registry,
                day,
                actor=f"{getpass.getuser()} (cli)",
                on_pass=on_pass,
                progress=step,
            )
        if json_out:
            emit_json(result)
        else:
            table = Table(title=f"version {result.version} (as of {result.as_of})")
            table.add_column("metric")
            table.add_column("candidate", justify="right")
            table.add_column("champion", justify="right")
            for name, value in result.metrics.items():
                if name == "rows":
                    continue
                champ = (result.champion_metrics or {}).get(name)
                table.add_row(name, f"{value:.4f}", "-" if champ is None else f"{champ:.4f}")
            console.print(table)
            split = result.split
            console.print(
                f"window {split.train_start} to {split.holdout_end}: train {result.rows['train']:,}"
                f" rows, validation {result.rows['validation']:,}, holdout "
                f"{result.rows['holdout']:,} (from {split.holdout_start}); ONNX: {result.onnx}"
            )
            for check in result.gate.checks:
                mark = "[green]ok[/]" if check.passed else "[red]FAIL[/]"
                console.print(f"  {mark} {check.name}: {check.detail}", highlight=False)
            where = f"alias {result.alias}" if result.alias else "no alias"
            console.print(f"registered version {result.version}, {where}: {result.alias_reason}")
        if not result.gate.passed:
            raise GateFailed(
                f"version {result.version} was registered as rejected: {result.gate.summary()}"
            )
