"""Open Inference Protocol V2: server and model metadata, readiness, and inference."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request, Response
from starlette.background import BackgroundTask

from driftloop.serving.api.common import (
    check_model,
    hot_headers,
    json_response,
    read_body,
    request_id,
    server_context,
)
from driftloop.serving.context import ServerContext
from driftloop.serving.routing import choose
from driftloop.serving.service import ServedModel
from driftloop.serving.v2 import (
    BINARY_HEADER,
    decode_request,
    encode_response,
    features_matrix,
    v2_row_ids,
)

__all__ = [
    "infer",
    "infer_version",
    "model_metadata",
    "model_ready",
    "server_metadata",
    "version_metadata",
    "version_ready",
]


async def server_metadata() -> Response:
    from driftloop import __version__

    return json_response(
        {"name": "driftloop", "version": __version__, "extensions": ["binary_tensor_data"]}
    )


def _metadata(ctx: ServerContext, served: ServedModel, versions: list[str]) -> dict[str, Any]:
    names = list(served.feature_names)
    return {
        "name": ctx.model_name,
        "versions": versions,
        "platform": f"driftloop/{served.model.format}",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, len(names)]}]
        + [{"name": n, "datatype": "FP32", "shape": [-1]} for n in names],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1, 1]}],
        "parameters": {"feature_order": names},
    }


async def model_metadata(request: Request, name: str) -> Response:
    ctx = server_context(request)
    check_model(ctx, name)
    state = ctx.service.state
    return json_response(
        _metadata(ctx, state.models[state.routes.champion], list(state.routes.versions()))
    )


async def version_metadata(request: Request, name: str, version: str) -> Response:
    ctx = server_context(request)
    check_model(ctx, name)
    served = ctx.served(version)
    return json_response(_metadata(ctx, served, [version]))


def _ready(ctx: ServerContext, name: str) -> Response:
    ok = ctx.service.ready
    return json_response({"name": name, "ready": ok}, 200 if ok else 503)


async def model_ready(request: Request, name: str) -> Response:
    ctx = server_context(request)
    check_model(ctx, name)
    return _ready(ctx, name)


async def version_ready(request: Request, name: str, version: str) -> Response:
    ctx = server_context(request)
    check_model(ctx, name)
    ctx.served(version)
    return _ready(ctx, name)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    started = time.perf_counter()
    ctx = server_context(request)
    headers_in = hot_headers(request)
    rid = request_id(request, headers_in)
    request.state.request_id = rid
    check_model(ctx, name)
    body = await read_body(request, ctx.settings.max_body_bytes, headers_in.get(b"content-length"))
    binary = headers_in.get(BINARY_HEADER.encode())
    v2 = decode_request(body, binary, ctx.settings.max_batch_rows)
    state = ctx.service.state
    if version is None:
        key = str(
            v2.parameters.get("routing_key") or headers_in.get(b"x-routing-key") or v2.id or rid
        )
        route, version = choose(state.routes, key)
    else:
        route = "direct"
    served = state.models.get(version) or ctx.served(version)
    x = features_matrix(v2, served.feature_names, ctx.nullable_features)
    preds = await ctx.run_model(served, x)
    seconds = time.perf_counter() - started
    ids = v2_row_ids(rid, len(preds))
    ctx.record(
        request_ids=ids,
        served=served,
        route=route,
        endpoint="v2",
        x=x,
        preds=preds,
        seconds=seconds,
    )
    body_out, headers = encode_response(
        ctx.model_name,
        served.version,
        v2.id,
        preds,
        v2.binary_output,
        {"route": route, "request_id": rid},
    )
    headers["X-Request-Id"] = rid
    task = None
    if route == "champion" and state.routes.shadow and state.routes.challenger:
        challenger = state.models[state.routes.challenger]
        task = BackgroundTask(
            ctx.shadow, challenger, lambda: x, preds, request_ids=ids, endpoint="v2"
        )
    media = "application/octet-stream" if v2.binary_output else "application/json"
    return Response(body_out, media_type=media, headers=headers, background=task)


async def infer(request: Request) -> Response:
    """``POST /v2/models/{name}/infer``: the route table picks the version (a plain route)."""
    return await _infer(request, request.path_params["name"], None)


async def infer_version(request: Request) -> Response:
    """``POST /v2/models/{name}/versions/{version}/infer``: one version, route "direct"."""
    params = request.path_params
    return await _infer(request, params["name"], params["version"])
