"""The admin API behind a bearer token: routes and weights, reload, promote, rollback, flush."""

from __future__ import annotations

import hmac
from typing import Any

import anyio
import orjson
from fastapi import Request, Response

from driftloop.errors import RequestError
from driftloop.serving.api.common import json_response, read_body, server_context
from driftloop.serving.context import ServerContext

__all__ = ["flush", "promote", "reload", "rollback", "routes", "weights"]


def _authorize(request: Request) -> ServerContext:
    ctx = server_context(request)
    token = ctx.admin_token
    if token is None:
        raise RequestError(
            "the admin API is disabled: set DRIFTLOOP_ADMIN_TOKEN (or serving.admin_token) "
            "and restart the server",
            403,
        )
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        raise RequestError("admin calls need 'Authorization: Bearer <token>'", 401)
    return ctx


async def _admin_json(request: Request) -> tuple[ServerContext, dict[str, Any]]:
    ctx = _authorize(request)
    body = await read_body(request, 64 * 1024)
    if not body.strip():
        return ctx, {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError("request body must be a JSON object")
    return ctx, doc


async def routes(request: Request) -> Response:
    ctx = _authorize(request)
    return json_response(ctx.routes_payload())


async def weights(request: Request) -> Response:
    ctx, doc = await _admin_json(request)
    weight = doc.get("challenger_weight")
    if not isinstance(weight, int | float) or isinstance(weight, bool):
        raise RequestError("challenger_weight must be a number of percent, 0..100", 422)
    shadow = doc.get("shadow")
    if shadow is not None and not isinstance(shadow, bool):
        raise RequestError("shadow must be true or false", 422)
    await anyio.to_thread.run_sync(ctx.admin_weights, float(weight), shadow)
    return json_response(ctx.routes_payload())


async def reload(request: Request) -> Response:
    ctx, _ = await _admin_json(request)
    await anyio.to_thread.run_sync(ctx.admin_reload)
    return json_response(ctx.routes_payload())


async def promote(request: Request) -> Response:
    ctx, doc = await _admin_json(request)
    version = doc.get("version")
    reason = str(doc.get("reason") or "promoted through the admin API")
    await anyio.to_thread.run_sync(ctx.admin_promote, version, reason)
    return json_response(ctx.routes_payload())


async def rollback(request: Request) -> Response:
    ctx, doc = await _admin_json(request)
    reason = str(doc.get("reason") or "rolled back through the admin API")
    await anyio.to_thread.run_sync(ctx.admin_rollback, reason)
    return json_response(ctx.routes_payload())


async def flush(request: Request) -> Response:
    ctx, _ = await _admin_json(request)
    written = await anyio.to_thread.run_sync(ctx.flush_logs)
    return json_response({"flushed_rows": written})
