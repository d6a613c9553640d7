"""``POST /v1/predict/batch``: several ``/v1/predict`` requests in one HTTP call.

A replay (or any client that gathers independent requests) sends the requests of one
time step together. Each one is answered exactly as ``/v1/predict`` answers it on its
own: its own ``event_time``, its own routing (its ``routing_key``, else each entity by
its key), its own request id, its own log rows and its own count in ``/metrics``. The
server does the shared work once: one feature lookup (the online row cache, or a table
project's frame) per run of consecutive requests with the same ``event_time``, and one
model call per version for the whole batch; then each request is logged and counted in
order, as ``handle_predict`` logs it. The whole batch is checked before any of it is
served. When the shared path meets a request error (an entity unknown to the online
store, a missing value), nothing has been logged yet and the batch is served again
request by request through ``handle_predict``, which serves and logs the requests before
the failing one and fails it, as before. Real-time features (an activity state the
server steps at each event) are stepped event by event: such projects are served
request by request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.background import BackgroundTask, BackgroundTasks

from driftloop.errors import PredictionError, RequestError
from driftloop.serving.entity import (
    _Entities,
    _logged,
    _record,
    _rows,
    _shadow_task,
    handle_predict,
    ttl_warning,
)
from driftloop.serving.entity_parse import parse_entities, parse_json_object, parse_time
from driftloop.serving.routing import choose, splits

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext
    from driftloop.serving.rows import RowBlock

__all__ = ["BATCH_REQUEST_FIELDS", "handle_predict_batch"]

BATCH_REQUEST_FIELDS = ("entities", "event_time", "routing_key", "request_id")


@dataclass
class _Request:
    """One request of the batch, parsed as /v1/predict parses its body."""

    rid: str
    event_time: datetime | None
    routing_key: str | None
    keys: list[tuple[Any, ...]]
    ids: list[str]
    sent: list[dict[str, Any]]
    block: RowBlock | None = None  # its run's feature rows
    first: int = 0  # its first row in that block
    routed: list[tuple[str, str]] = field(default_factory=list)  # (route, version) per entity
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  # version -> its model input


def _parse(ctx: ServerContext, body: bytes, rid: str) -> list[_Request]:
    doc = parse_json_object(body, "requests")
    unknown_top = sorted(set(doc) - {"requests"})
    if unknown_top:
        raise RequestError(f"unknown field(s) {unknown_top}; a batch holds only 'requests'", 422)
    out: list[_Request] = []
    total = 0
    for j, item in enumerate(doc["requests"]):
        where = f"requests[{j}]"
        if not isinstance(item, dict) or not isinstance(item.get("entities"), list):
            raise RequestError(
                f"{where} must be a /v1/predict body: an object with 'entities'", 422
            )
        unknown = sorted(set(item) - set(BATCH_REQUEST_FIELDS))
        if unknown:
            raise RequestError(
                f"{where}: unknown field(s) {unknown}; allowed: {', '.join(BATCH_REQUEST_FIELDS)}",
                422,
            )
        if not item["entities"]:
            raise RequestError(f"{where}.entities must be a non-empty list", 422)
        total += len(item["entities"])
        if total > ctx.settings.max_batch_rows:
            raise RequestError(
                f"the batch's entities exceed serving.max_batch_rows "
                f"{ctx.settings.max_batch_rows} at {where}; split the batch",
                413,
            )
        own = item.get("request_id", f"{rid}-{j}")
        key = item.get("routing_key")
        for name, value in (("request_id", own), ("routing_key", key)):
            if value is not None and (not isinstance(value, str) or not value):
                raise RequestError(f"{where}.{name} must be a non-empty string, got {value!r}", 422)
        when = None
        if "event_time" in item:
            when = parse_time(item["event_time"], f"{where}.event_time")
        try:
            keys, ids, sent = parse_entities(ctx, item, own)
        except RequestError as exc:  # name the request the entity belongs to
            raise RequestError(f"{where}.{exc}", exc.http_status) from None
        out.append(_Request(own, when, key, keys, ids, sent))
    return out


async def handle_predict_batch(
    ctx: ServerContext, body: bytes, rid: str
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Answer each request of the batch as /v1/predict would; returns (payload, shadow)."""
    requests = _parse(ctx, body, rid)
    if not ctx.feature_store().has_activity:
        try:
            return await _shared(ctx, requests, rid)
        except (RequestError, PredictionError):
            pass  # nothing logged: serve request by request, which fails where it fails
    return await _one_by_one(ctx, body, rid, requests)


async def _one_by_one(
    ctx: ServerContext, body: bytes, rid: str, requests: list[_Request]
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Each request through ``handle_predict`` in order."""
    doc = parse_json_object(body, "requests")
    responses: list[dict[str, Any]] = []
    tasks = BackgroundTasks()
    for j, (r, item) in enumerate(zip(requests, doc["requests"], strict=True)):
        own = orjson.dumps({k: v for k, v in item.items() if k != "request_id"})
        try:
            payload, task = await handle_predict(ctx, own, r.rid)
        except RequestError as exc:  # name the request
            raise RequestError(f"requests[{j}]: {exc}", exc.http_status) from None
        payload.pop("model_name", None)
        responses.append(payload)
        if task is not None:
            tasks.tasks.append(task)
    answer = {"model_name": ctx.model_name, "request_id": rid, "responses": responses}
    return answer, (tasks if tasks.tasks else None)


async def _lookups(ctx: ServerContext, requests: list[_Request]) -> None:
    """One feature lookup per run of consecutive requests sharing an event time; each
    request keeps its run's block and its first row in it."""
    runs: list[list[_Request]] = []
    for r in requests:
        if not runs or runs[-1][0].event_time != r.event_time:
            runs.append([])
        runs[-1].append(r)
    for run in runs:
        keys = [k for r in run for k in r.keys]
        sent = [s for r in run for s in r.sent]
        block = await _rows(ctx, keys, sent, run[0].event_time)
        row = 0
        for r in run:
            r.block, r.first, row = block, row, row + len(r.keys)


async def _predict(ctx: ServerContext, requests: list[_Request]) -> dict[str, np.ndarray]:
    """Route every entity as its request alone would, then one model call per version over
    the whole batch; per version, the predictions in batch order of its rows."""
    state = ctx.service.state
    inputs: dict[str, list[np.ndarray]] = {}
    for r in requests:
        if r.routing_key is not None or not splits(state.routes):
            r.routed = [choose(state.routes, r.routing_key or "")] * len(r.keys)
        else:
            r.routed = [choose(state.routes, ":".join(str(v) for v in k)) for k in r.keys]
    for r in requests:
        for version in sorted({v for _, v in r.routed}):
            rows = [r.first + i for i, (_, v) in enumerate(r.routed) if v == version]
            names = state.models[version].feature_names
            r.inputs[version] = _block(r).matrix(names, rows, ctx.nullable_features)
            inputs.setdefault(version, []).append(r.inputs[version])
    return {
        version: await ctx.run_model(state.models[version], np.concatenate(xs))
        for version, xs in inputs.items()
    }


def _block(r: _Request) -> RowBlock:
    assert r.block is not None, "the lookups come first"
    return r.block


async def _shared(
    ctx: ServerContext, requests: list[_Request], rid: str
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """The batch with its lookups and model calls shared; then each request is logged,
    counted and answered as ``handle_predict`` does it."""
    started = time.perf_counter()
    await _lookups(ctx, requests)
    preds = await _predict(ctx, requests)
    seconds = time.perf_counter() - started
    total = sum(len(r.keys) for r in requests)
    taken = dict.fromkeys(preds, 0)
    responses, tasks = [], BackgroundTasks()
    for r in requests:
        own: dict[str, np.ndarray] = {}
        for version in sorted({v for _, v in r.routed}):
            n = sum(v == version for _, v in r.routed)
            own[version] = preds[version][taken[version] : taken[version] + n]
            taken[version] += n
        response, task = _answer(ctx, r, own, seconds * len(r.keys) / total)
        responses.append(response)
        if task is not None:
            tasks.tasks.append(task)
    answer = {"model_name": ctx.model_name, "request_id": rid, "responses": responses}
    return answer, (tasks if tasks.tasks else None)


def _answer(
    ctx: ServerContext, r: _Request, preds: dict[str, np.ndarray], seconds: float
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Log, count and answer one request whose versions predicted ``preds`` (its rows of
    each version in order), as ``handle_predict`` does."""
    block, state = _block(r), ctx.service.state
    ttl_days = ctx.project.config.features.ttl_days
    outside = [False] * len(r.keys)  # as RowBlock.outside, on this request's rows only
    if r.event_time is not None:
        gap = np.abs(r.event_time.timestamp() - block.seconds[r.first : r.first + len(r.keys)])
        outside = (gap > ttl_days * 86400.0).tolist()  # no feature time (NaN) is never flagged
    logged = _logged(ctx, r.sent)
    req = _Entities(r.rid, r.keys, r.ids, r.event_time, block, outside, logged, r.first)
    results: list[dict[str, Any]] = [{} for _ in r.keys]
    task = None
    for version, values in preds.items():
        mine = [i for i, (_, v) in enumerate(r.routed) if v == version]
        served, route = state.models[version], r.routed[mine[0]][0]
        _record(ctx, req, served, route, mine, r.inputs[version], values, seconds, results)
        if route == "champion" and state.routes.shadow and state.routes.challenger:
            task = _shadow_task(ctx, req, state.models[state.routes.challenger], mine, values)
    payload: dict[str, Any] = {"request_id": r.rid, "predictions": results}
    warning = ttl_warning(sum(outside), len(r.keys), ttl_days)
    if warning:
        payload["warning"] = warning
    return payload, task
