"""``driftloop deploy``: manifests and a dashboard for running the project on a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import JsonOption, ProjectOption, console, emit_json, handle_errors

__all__ = ["app", "k8s"]

app = typer.Typer(help="Deployment manifests for a cluster (nothing is applied).")


@app.command()
def k8s(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write (new, empty, or an earlier output)."),
    ],
    project: ProjectOption = Path("."),
    weight: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=100,
            help="Challenger percent in the VirtualService (default: the server's saved "
            "weight for this challenger, else 0).",
        ),
    ] = None,
    shadow: Annotated[
        bool | None,
        typer.Option(
            "--shadow/--no-shadow",
            help="Mirror traffic to the challenger (default: the server's saved setting).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Kubernetes manifests (a Deployment and Service per served version, Istio
    VirtualService and DestinationRule with the canary weights, ServiceMonitor,
    PrometheusRule) and a Grafana dashboard, written to --out."""
    from driftloop.deploy import deploy_k8s
    from driftloop.deploy.write import check_output_dir
    from driftloop.project import Project
    from driftloop.registry import open_registry

    with handle_errors():
        check_output_dir(out.expanduser().resolve())  # before opening anything
        proj = Project.load(project)
        result = deploy_k8s(proj, open_registry(proj), out, weight, shadow)
        if json_out:
            emit_json(result)
            return
        served = f"v{result.champion} (champion)" + (
            f" and v{result.challenger} (challenger)" if result.challenger else ""
        )
        split = ", ".join(f"v{v} {w} %" for v, w in result.weights.items())
        console.print(
            f"wrote {len(result.files)} files to {result.out} for {served} in namespace "
            f"{result.namespace}: {split}"
            + (", mirrored to the challenger" if result.shadow else "")
        )
        for warning in result.warnings:
            console.print(f"[yellow]note:[/] {warning}", highlight=False)
        secret = proj.config.deploy.admin_secret
        console.print(
            f"next: kubectl -n {result.namespace} create secret generic {secret.name} "
            f"--from-literal={secret.key}=<admin token>, then kubectl apply -k "
            f"{result.out / 'manifests'} (docs/cluster.md)",
            highlight=False,
        )
