"""``driftloop models``: list, show, promote, rollback."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from driftloop.cli.common import JsonOption, ProjectOption, console, emit_json, handle_errors

if TYPE_CHECKING:
    from driftloop.registry.mlflow_registry import MlflowRegistry

__all__ = ["app"]

app = typer.Typer(help="Model registry: versions, aliases and their history.")

ReasonOption = Annotated[str | None, typer.Option(help="Why; recorded with the alias move.")]
SHOWN_METRICS = (
    "holdout_wape",
    "holdout_mape",
    "holdout_rmse",
    "holdout_bias",
    "holdout_roc_auc",
    "holdout_pr_auc",
    "holdout_log_loss",
)


def _registry(project_dir: Path) -> MlflowRegistry:
    from driftloop.project import Project
    from driftloop.registry import open_registry

    return open_registry(Project.load(project_dir))


def _actor() -> str:
    return f"{getpass.getuser()} (cli)"


def _version_row(v: Any) -> dict[str, Any]:
    return {
        "version": v.version,
        "created_at": v.created_at,
        "aliases": list(v.aliases),
        "gate": v.gate,
        "gate_summary": v.tags.get("driftloop.gate_summary", ""),
        "parent": v.parent,
        "as_of": v.tags.get("driftloop.as_of"),
        "window": [v.tags.get("driftloop.window_start"), v.tags.get("driftloop.window_end")],
        "metrics": {k: v.metrics[k] for k in SHOWN_METRICS if k in v.metrics},
        "onnx": "driftloop.onnx_sha256" in v.tags,
    }


@app.command("list")
def list_versions(project: ProjectOption = Path("."), json_out: JsonOption = False) -> None:
    """Every version with its aliases, gate verdict and holdout metrics."""
    with handle_errors():
        registry = _registry(project)
        rows = [_version_row(v) for v in registry.versions()]
        if json_out:
            emit_json({"model": registry.model_name, "versions": rows})
            return
        if not rows:
            console.print(f"model {registry.model_name!r} has no versions: run `driftloop train`")
            return
        table = Table(title=f"model {registry.model_name}")
        for column in ("version", "aliases", "gate", "as of", "parent", "holdout", "onnx"):
            table.add_column(column)
        for r in rows:
            metric = next(iter(r["metrics"].items()), None)
            table.add_row(
                r["version"],
                ", ".join(r["aliases"]) or "-",
                r["gate"],
                r["as_of"] or "-",
                r["parent"] or "-",
                f"{metric[0][8:]} {metric[1]:.4f}" if metric else "-",
                "yes" if r["onnx"] else "no",
            )
        console.print(table)


@app.command()
def show(
    version: Annotated[str, typer.Argument(help="Version number.")],
    project: ProjectOption = Path("."),
    json_out: JsonOption = False,
) -> None:
    """One version: lineage, metrics, gate, and the history of its model's aliases."""
    with handle_errors():
        registry = _registry(project)
        v = registry.get(version)
        moves = [m for m in registry.alias_history() if version in (m.from_version, m.to_version)]
        if json_out:
            emit_json(
                {
                    **_version_row(v),
                    "tags": dict(v.tags),
                    "all_metrics": dict(v.metrics),
                    "run_id": v.run_id,
                    "source": v.source,
                    "alias_moves": moves,
                }
            )
            return
        aliases = ", ".join(v.aliases) or "none"
        console.print(
            f"[bold]{registry.model_name} v{v.version}[/] created "
            f"{v.created_at:%Y-%m-%d %H:%M} UTC, aliases: {aliases}"
        )
        lineage = Table(title="lineage", show_header=False)
        for key in sorted(v.tags):
            if key.startswith("driftloop.") and key != "driftloop.split":
                lineage.add_row(key.removeprefix("driftloop."), v.tags[key])
        lineage.add_row("mlflow run", v.run_id)
        console.print(lineage)
        metrics = Table(title="metrics", show_header=False)
        for key in sorted(v.metrics):
            metrics.add_row(key, f"{v.metrics[key]:.6g}")
        console.print(metrics)
        history = Table(title="alias moves involving this version")
        for column in ("when", "alias", "from", "to", "kind", "who", "why"):
            history.add_column(column)
        for m in moves:
            history.add_row(
                f"{m.at:%Y-%m-%d %H:%M:%S}",
                m.alias,
                m.from_version or "-",
                m.to_version or "-",
                m.kind,
                m.actor,
                m.reason,
            )
        console.print(history)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    project: ProjectOption = Path("."),
    reason: ReasonOption = None,
    force: Annotated[bool, typer.Option(help="Promote even a version its gate rejected.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Make a version the champion (clears challenger if it pointed there)."""
    from driftloop.errors import AliasError
    from driftloop.registry import aliases

    with handle_errors():
        registry = _registry(project)
        aliases.check_promotion(registry, version, force=force)
        move = aliases.promote(
            registry, version, actor=_actor(), reason=reason or "manual promotion"
        )
        if move is None:  # promoted by another process since the check
            raise AliasError(f"version {version} is already the champion")
        if json_out:
            emit_json(move)
            return
        console.print(f"champion: v{move.from_version or '-'} -> v{move.to_version}")


@app.command()
def rollback(
    project: ProjectOption = Path("."),
    reason: ReasonOption = None,
    json_out: JsonOption = False,
) -> None:
    """Put champion back on the previous champion."""
    from driftloop.registry import CHAMPION, aliases

    with handle_errors():
        registry = _registry(project)
        target = aliases.rollback_target(registry)
        current = registry.alias(CHAMPION)
        why = reason or f"rollback from v{current.version if current else '-'}"
        move = aliases.rollback(registry, target, actor=_actor(), reason=why)
        if json_out:
            emit_json(move)
            return
        console.print(f"champion: v{move.from_version} -> v{move.to_version} (rollback)")
