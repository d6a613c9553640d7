"""What every endpoint shares: the server context on the app, JSON answers, bounded bodies."""

from __future__ import annotations

import secrets
import time
from typing import Any, cast

import orjson
from fastapi import Request, Response

from driftloop.errors import RequestError
from driftloop.serving.context import ServerContext

__all__ = [
    "check_model",
    "json_response",
    "new_request_id",
    "read_body",
    "request_id",
    "server_context",
]


def server_context(request: Request) -> ServerContext:
    """The server's shared state, set on the app by ``create_app``."""
    return cast(ServerContext, request.app.state.ctx)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past ``limit`` bytes (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"body of {declared} bytes exceeds serving.max_body_bytes {limit}", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"body exceeds serving.max_body_bytes {limit}", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or new_request_id()


def new_request_id() -> str:
    """32 hex digits, time first (milliseconds, then 80 random bits, as in a UUIDv7): ids
    made one after another sort together, so the day store's index of served request ids
    grows at its end instead of at random places (twice the insert CPU at 600,000 rows)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def check_model(ctx: ServerContext, name: str) -> None:
    if name != ctx.model_name:
        raise RequestError(
            f"model {name!r} is not served here; this server serves {ctx.model_name!r}", 404
        )
