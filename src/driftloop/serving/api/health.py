"""Health and description: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import anyio
from fastapi import Request, Response

from driftloop.serving.api.common import json_response, server_context
from driftloop.serving.openapi import openapi_document

__all__ = ["live", "metrics", "openapi", "ready"]


async def openapi(request: Request) -> Response:
    from driftloop import __version__

    ctx = server_context(request)
    keys = {k: "string" if t == "string" else "integer" for k, t in ctx.layout.entity_types.items()}
    return json_response(openapi_document(ctx.model_name, __version__, keys))


async def live() -> Response:
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    # Ready means "can answer inference": a registry or online store that is down makes
    # the server degraded (listed), not unready; a 503 would take every replica out of
    # its Service at once for an outage that V2 inference does not depend on.
    ctx = server_context(request)
    ok = ctx.service.ready
    dependencies = await anyio.to_thread.run_sync(ctx.dependencies)
    return json_response({"ready": ok, **ctx.health(dependencies)}, 200 if ok else 503)


async def metrics(request: Request) -> Response:
    ctx = server_context(request)
    ctx.metrics.log_pending.set(ctx.predictions.pending)
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")
