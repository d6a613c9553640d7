"""Feedback: ground-truth labels for earlier predictions."""

from __future__ import annotations

import anyio
from fastapi import Request, Response

from driftloop.serving.api.common import json_response, read_body, server_context
from driftloop.serving.feedback import handle_feedback

__all__ = ["feedback"]


async def feedback(request: Request) -> Response:
    ctx = server_context(request)
    body = await read_body(request, ctx.settings.max_body_bytes)
    return json_response(await anyio.to_thread.run_sync(handle_feedback, ctx, body))
