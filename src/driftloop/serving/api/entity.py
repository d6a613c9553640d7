"""Entity predictions: features looked up by entity keys, one request or a batch."""

from __future__ import annotations

import orjson
from fastapi import Request, Response

from driftloop.serving.api.common import hot_headers, read_body, request_id, server_context
from driftloop.serving.batch import handle_predict_batch
from driftloop.serving.entity import handle_predict

__all__ = ["predict_batch", "predict_entities"]


async def predict_entities(request: Request) -> Response:
    ctx = server_context(request)
    headers = hot_headers(request)
    rid = request.state.request_id = request_id(request, headers)
    body = await read_body(request, ctx.settings.max_body_bytes, headers.get(b"content-length"))
    payload, background = await handle_predict(ctx, body, rid, headers.get(b"x-routing-key"))
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers={"X-Request-Id": rid},
        background=background,
    )


async def predict_batch(request: Request) -> Response:
    ctx = server_context(request)
    request.state.request_id = request_id(request)
    body = await read_body(request, ctx.settings.max_body_bytes)
    payload, background = await handle_predict_batch(ctx, body, request.state.request_id)
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers={"X-Request-Id": request.state.request_id},
        background=background,
    )
