"""Exception handlers: every error answer has the shape ``{"error": ...}``."""

from __future__ import annotations

from fastapi import Request, Response
from starlette.exceptions import HTTPException

from driftloop.errors import DriftloopError, FeatureStoreError, RegistryError
from driftloop.serving.api.common import json_response, server_context

__all__ = ["driftloop_error", "http_error", "unexpected_error"]


async def driftloop_error(request: Request, exc: DriftloopError) -> Response:
    """Our own errors, with their HTTP status and a kind counted in the error metric."""
    ctx = server_context(request)
    version = getattr(exc, "version", "")
    kind = "model_error" if exc.http_status >= 500 else "bad_request"
    if isinstance(exc, RegistryError | FeatureStoreError):
        kind = "dependency"
    ctx.metrics.errors.labels(ctx.model_name, version, kind).inc()
    rid = str(request.headers.get("x-request-id") or getattr(request.state, "request_id", ""))
    message = f"{exc} (request id {rid})" if exc.http_status >= 500 and rid else str(exc)
    details = getattr(exc, "details", None) or {}  # e.g. every unknown entity, by position
    return json_response({"error": message, **details}, exc.http_status, {"X-Request-Id": rid})


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (unknown path, wrong method) in the same shape."""
    message = f"{request.method} {request.url.path}: {exc.detail}"
    if exc.status_code == 404:
        message += "; GET /openapi.json lists the endpoints"
    return json_response({"error": message}, exc.status_code, dict(exc.headers or {}))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else: a 500 naming the request id, the traceback in the server's log."""
    ctx = server_context(request)
    rid = getattr(request.state, "request_id", "")
    ctx.metrics.errors.labels(ctx.model_name, "", "internal").inc()
    ctx.log_exception(exc, rid)
    return json_response({"error": f"internal error (request id {rid})"}, 500)
