"""``driftloop serve``: the model server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import ProjectOption, console, handle_errors

__all__ = ["serve"]


def serve(
    project: ProjectOption = Path("."),
    host: Annotated[str | None, typer.Option(help="Address to bind (default from config).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default from config).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the project's champion (and challenger) over HTTP until stopped."""
    from driftloop.project import Project
    from driftloop.serving.server import build_context, run_server

    with handle_errors():
        proj = Project.load(project)
        ctx = build_context(proj)
        cfg = proj.config.serving
        bind_host, bind_port = host or cfg.host, cfg.port if port is None else port
        admin = "on" if ctx.admin_token else "off (set DRIFTLOOP_ADMIN_TOKEN)"
        console.print(
            f"serving model {ctx.model_name!r} on http://{bind_host}:{bind_port} "
            f"(V2 at /v2/models/{ctx.model_name}/infer, entities at /v1/predict, "
            f"metrics at /metrics, admin API {admin})"
        )
        run_server(ctx, bind_host, bind_port, log_level)
