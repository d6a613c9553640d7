"""The HTTP model server (ASGI): Open Inference Protocol V2, entity predictions,
feedback, Prometheus metrics and an admin API behind a bearer token."""

from __future__ import annotations

import gc
import hmac
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
from fastapi import FastAPI, Request, Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.routing import Route

from driftloop.errors import DriftloopError, FeatureStoreError, RegistryError, RequestError
from driftloop.serving.batch import handle_predict_batch
from driftloop.serving.context import ServerContext
from driftloop.serving.entity import handle_predict
from driftloop.serving.feedback import handle_feedback
from driftloop.serving.openapi import openapi_document
from driftloop.serving.routing import choose
from driftloop.serving.service import ServedModel
from driftloop.serving.v2 import BINARY_HEADER, decode_request, encode_response, features_matrix

__all__ = ["create_app", "json_response", "read_body"]

Handler = Callable[[Request], Awaitable[Response]]


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


def _request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def create_app(ctx: ServerContext) -> FastAPI:
    """An ASGI app serving ``ctx``'s model; the lifespan starts and stops its logs."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.start()
        await anyio.to_thread.run_sync(ctx.initial_load)
        # Everything loaded so far (MLflow, pandas, the models) lives as long as the server:
        # keep it out of the cyclic collector, whose full passes over it stalled requests
        # for tens of milliseconds (p99 100 ms against 1 ms without).
        gc.collect()
        gc.freeze()
        # The log flusher is a Python thread: hand the GIL back to requests every 0.5 ms
        # rather than every 5 ms while it encodes (p99 5.7 ms -> see benchmarks/serving.py).
        sys.setswitchinterval(0.0005)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(ctx.stop)

    app = FastAPI(
        title="driftloop model server", lifespan=lifespan, docs_url=None, redoc_url=None,
        openapi_url=None,  # the handlers read raw bodies: serving/openapi.py describes them
    )  # fmt: skip
    app.state.ctx = ctx

    @app.exception_handler(DriftloopError)
    async def _driftloop_error(request: Request, exc: DriftloopError) -> Response:
        version = getattr(exc, "version", "")
        kind = "model_error" if exc.http_status >= 500 else "bad_request"
        if isinstance(exc, RegistryError | FeatureStoreError):
            kind = "dependency"
        ctx.metrics.errors.labels(ctx.model_name, version, kind).inc()
        rid = str(request.headers.get("x-request-id") or getattr(request.state, "request_id", ""))
        message = f"{exc} (request id {rid})" if exc.http_status >= 500 and rid else str(exc)
        details = getattr(exc, "details", None) or {}  # e.g. every unknown entity, by position
        return json_response({"error": message, **details}, exc.http_status, {"X-Request-Id": rid})

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own answers (unknown path, wrong method) in the same {"error": ...} shape.
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 404:
            message += "; GET /openapi.json lists the endpoints"
        return json_response({"error": message}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        rid = getattr(request.state, "request_id", "")
        ctx.metrics.errors.labels(ctx.model_name, "", "internal").inc()
        ctx.log_exception(exc, rid)
        return json_response({"error": f"internal error (request id {rid})"}, 500)

    # -- health and metadata ---------------------------------------------------------
    @app.get("/openapi.json")
    async def openapi() -> Response:
        from driftloop import __version__

        keys = {k: "string" if t == "string" else "integer"
                for k, t in ctx.layout.entity_types.items()}  # fmt: skip
        return json_response(openapi_document(ctx.model_name, __version__, keys))

    @app.get("/v2/health/live")
    async def live() -> Response:
        return json_response({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        # Ready means "can answer inference": a registry or online store that is down makes
        # the server degraded (listed), not unready; a 503 would take every replica out of
        # its Service at once for an outage that V2 inference does not depend on.
        ok = ctx.service.ready
        dependencies = await anyio.to_thread.run_sync(ctx.dependencies)
        return json_response({"ready": ok, **ctx.health(dependencies)}, 200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> Response:
        from driftloop import __version__

        return json_response({"name": "driftloop", "version": __version__,
                              "extensions": ["binary_tensor_data"]})  # fmt: skip

    def _check_model(name: str) -> None:
        if name != ctx.model_name:
            raise RequestError(
                f"model {name!r} is not served here; this server serves {ctx.model_name!r}", 404
            )

    def _metadata(served: ServedModel, versions: list[str]) -> dict[str, Any]:
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

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        _check_model(name)
        state = ctx.service.state
        return json_response(
            _metadata(state.models[state.routes.champion], list(state.routes.versions()))
        )

    @app.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(name: str, version: str) -> Response:
        _check_model(name)
        served = ctx.served(version)
        return json_response(_metadata(served, [version]))

    def _ready(name: str) -> Response:
        ok = ctx.service.ready
        return json_response({"name": name, "ready": ok}, 200 if ok else 503)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        _check_model(name)
        return _ready(name)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: str) -> Response:
        _check_model(name)
        ctx.served(version)
        return _ready(name)

    # -- inference -------------------------------------------------------------------
    async def _infer(request: Request, name: str, version: str | None) -> Response:
        started = time.perf_counter()
        rid = _request_id(request)
        request.state.request_id = rid
        _check_model(name)
        body = await read_body(request, ctx.settings.max_body_bytes)
        v2 = decode_request(body, request.headers.get(BINARY_HEADER), ctx.settings.max_batch_rows)
        state = ctx.service.state
        if version is None:
            key = str(v2.parameters.get("routing_key") or request.headers.get("x-routing-key")
                      or v2.id or rid)  # fmt: skip
            route, version = choose(state.routes, key)
        else:
            route = "direct"
        served = state.models.get(version) or ctx.served(version)
        x = features_matrix(v2, served.feature_names, ctx.nullable_features)
        preds = await ctx.run_model(served, x)
        seconds = time.perf_counter() - started
        ctx.record_v2(rid, served, route, x, preds, seconds)
        body_out, headers = encode_response(
            ctx.model_name, served.version, v2.id, preds, v2.binary_output,
            {"route": route, "request_id": rid},
        )  # fmt: skip
        headers["X-Request-Id"] = rid
        task = None
        if route == "champion" and state.routes.shadow and state.routes.challenger:
            task = BackgroundTask(
                ctx.shadow_v2, rid, state.models[state.routes.challenger], x, preds
            )
        media = "application/octet-stream" if v2.binary_output else "application/json"
        return Response(body_out, media_type=media, headers=headers, background=task)

    # The hot paths are plain Starlette routes, first in the table: FastAPI's dependency
    # solving for path parameters cost about 0.1 ms a request here (measured with cProfile).
    async def infer(request: Request) -> Response:
        return await _infer(request, request.path_params["name"], None)

    async def infer_version(request: Request) -> Response:
        params = request.path_params
        return await _infer(request, params["name"], params["version"])

    async def predict_entities(request: Request) -> Response:
        request.state.request_id = _request_id(request)
        body = await read_body(request, ctx.settings.max_body_bytes)
        payload, background = await handle_predict(
            ctx, body, request.state.request_id, request.headers.get("x-routing-key")
        )
        return Response(
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
            headers={"X-Request-Id": request.state.request_id},
            background=background,
        )

    async def predict_batch(request: Request) -> Response:
        request.state.request_id = _request_id(request)
        body = await read_body(request, ctx.settings.max_body_bytes)
        payload, background = await handle_predict_batch(ctx, body, request.state.request_id)
        return Response(
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
            headers={"X-Request-Id": request.state.request_id},
            background=background,
        )

    hot = [
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer_version, methods=["POST"]),
        Route("/v1/predict", predict_entities, methods=["POST"]),
        Route("/v1/predict/batch", predict_batch, methods=["POST"]),
    ]
    app.router.routes[:0] = hot

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Response:
        body = await read_body(request, ctx.settings.max_body_bytes)
        return json_response(await anyio.to_thread.run_sync(handle_feedback, ctx, body))

    @app.get("/metrics")
    async def metrics() -> Response:
        ctx.metrics.log_pending.set(ctx.predictions.pending)
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")

    # -- admin ------------------------------------------------------------------------
    def _authorize(request: Request) -> None:
        token = ctx.admin_token
        if token is None:
            raise RequestError(
                "the admin API is disabled: set DRIFTLOOP_ADMIN_TOKEN (or serving.admin_token) "
                "and restart the server", 403,
            )  # fmt: skip
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
            raise RequestError("admin calls need 'Authorization: Bearer <token>'", 401)

    async def _admin_json(request: Request) -> dict[str, Any]:
        _authorize(request)
        body = await read_body(request, 64 * 1024)
        if not body.strip():
            return {}
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"request body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise RequestError("request body must be a JSON object")
        return doc

    @app.get("/admin/routes")
    async def routes(request: Request) -> Response:
        _authorize(request)
        return json_response(ctx.routes_payload())

    @app.post("/admin/weights")
    async def weights(request: Request) -> Response:
        doc = await _admin_json(request)
        weight = doc.get("challenger_weight")
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise RequestError("challenger_weight must be a number of percent, 0..100", 422)
        shadow = doc.get("shadow")
        if shadow is not None and not isinstance(shadow, bool):
            raise RequestError("shadow must be true or false", 422)
        await anyio.to_thread.run_sync(ctx.admin_weights, float(weight), shadow)
        return json_response(ctx.routes_payload())

    @app.post("/admin/reload")
    async def reload(request: Request) -> Response:
        await _admin_json(request)
        await anyio.to_thread.run_sync(ctx.admin_reload)
        return json_response(ctx.routes_payload())

    @app.post("/admin/promote")
    async def promote(request: Request) -> Response:
        doc = await _admin_json(request)
        version = doc.get("version")
        reason = str(doc.get("reason") or "promoted through the admin API")
        await anyio.to_thread.run_sync(ctx.admin_promote, version, reason)
        return json_response(ctx.routes_payload())

    @app.post("/admin/rollback")
    async def rollback(request: Request) -> Response:
        doc = await _admin_json(request)
        reason = str(doc.get("reason") or "rolled back through the admin API")
        await anyio.to_thread.run_sync(ctx.admin_rollback, reason)
        return json_response(ctx.routes_payload())

    @app.post("/admin/flush")
    async def flush(request: Request) -> Response:
        await _admin_json(request)
        written = await anyio.to_thread.run_sync(ctx.flush_logs)
        return json_response({"flushed_rows": written})

    return app
