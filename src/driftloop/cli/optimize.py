"""``driftloop optimize V``: optimized variants of a version with their trade-off table."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from driftloop.cli.common import (
    JsonOption,
    ProjectOption,
    console,
    emit_json,
    handle_errors,
    step_progress,
)

if TYPE_CHECKING:
    from driftloop.optimize import OptimizationResult, VariantReport

__all__ = ["optimize"]


def _kib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024:,.1f}"


COLUMNS = ("technique", "KiB", "x FP32", "b1 p50", "b1 p99", "b1000 p50", "b1000 p99")


def _row(r: VariantReport, metric: str) -> list[str]:
    if not r.applicable:
        return [r.technique, *["-"] * (len(COLUMNS) + 1), "[dim]not applicable[/]"]
    b1, b1000 = r.latency_ms["batch_1"], r.latency_ms["batch_1000"]
    if r.verdict == "baseline":
        verdict = "baseline"
    else:
        verdict = "[green]kept[/]" if r.kept else "[red]rejected[/]"
    return [
        r.technique,
        _kib(r.size_bytes),
        f"{r.size_ratio:.2f}",
        f"{b1.p50_ms:.3f}",
        f"{b1.p99_ms:.3f}",
        f"{b1000.p50_ms:.2f}",
        f"{b1000.p99_ms:.2f}",
        f"{r.metrics[metric]:.5f} ({r.metric_loss or 0.0:+.2%})",
        f"{r.disagreement or 0.0:.2%}",
        verdict,
    ]


def _table(result: OptimizationResult) -> Table:
    table = Table(
        title=f"optimized variants of v{result.version} ({result.model_kind}, "
        f"{result.holdout_rows:,} holdout rows; latency in ms at batch 1 and 1000)"
    )
    table.add_column(COLUMNS[0])
    for name in COLUMNS[1:]:
        table.add_column(name, justify="right")
    table.add_column(f"{result.metric} (change)", justify="right")
    table.add_column("disagree", justify="right")
    table.add_column("verdict")
    for r in result.variants:
        table.add_row(*_row(r, result.metric))
    return table


def optimize(
    version: Annotated[str, typer.Argument(help="Registered version to optimize.")],
    project: ProjectOption = Path("."),
    register: Annotated[
        str,
        typer.Option(
            help="Which variant to register: best (smallest within the tolerances), none, "
            "or a technique: fused, int8-dynamic, int8-static, pruned, distilled."
        ),
    ] = "best",
    json_out: JsonOption = False,
) -> None:
    """ONNX, fused, INT8, pruned and distilled variants of V: table, gate, registration."""
    from driftloop.errors import GateFailed
    from driftloop.optimize import OPTIMIZE_STEPS, run_optimization
    from driftloop.project import Project
    from driftloop.registry import open_registry

    with handle_errors():
        proj = Project.load(project)
        registry = open_registry(proj)
        with step_progress(OPTIMIZE_STEPS, json_out) as step:
            result = run_optimization(
                proj,
                registry,
                version,
                register=register,
                actor=f"{getpass.getuser()} (cli)",
                progress=step,
            )
        if json_out:
            emit_json(result)
        else:
            console.print(_table(result))
            for r in result.variants:
                console.print(f"  [bold]{r.technique}[/]: {r.detail}", highlight=False)
                if r.applicable and r.verdict not in ("baseline", ""):
                    console.print(f"    {r.verdict}", highlight=False)
            if not result.data_matches_parent:
                console.print(
                    "[yellow]note:[/] the rebuilt training frame differs from the one "
                    f"v{result.version} was trained on (data digest); the table uses today's "
                    "feature-store rows for its window"
                )
            if not result.register_failed:  # a failure is printed once, as the error
                console.print(result.register_reason, highlight=False)
        if result.register_failed:
            raise GateFailed(result.register_reason)
