"""``POST /v1/predict/batch``: several ``/v1/predict`` requests in one HTTP call.

A replay (or any client that gathers independent requests) sends the requests of one
time step together. Each one is answered exactly as ``/v1/predict`` would answer it on
its own: its own ``event_time``, its own routing (its ``routing_key``, else each entity
by its key), its own request id, its own log rows and its own count in ``/metrics``. The
server does the shared work once: one online lookup per run of requests with the same
event time, one model call per version for the whole batch.

Real-time features (an activity state the server steps at each event) are stepped in
the order of the requests: a request whose entity an earlier request of the batch
already stepped starts a new run, which reads the state that earlier one pushed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
import pandas as pd
from starlette.background import BackgroundTask

from driftloop.errors import RequestError
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.serving.entity import (
    _iso,
    _lookup_rows,
    _matrix,
    _parse_entities,
    _shadow,
    _time,
    parse_json_object,
)
from driftloop.serving.routing import choose

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext
    from driftloop.serving.service import ServedModel

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
    first: int = 0  # its first row in the batch's feature frame


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
            raise RequestError(f"{where}: unknown field(s) {unknown}; allowed: "
                               f"{', '.join(BATCH_REQUEST_FIELDS)}", 422)  # fmt: skip
        if not item["entities"]:
            raise RequestError(f"{where}.entities must be a non-empty list", 422)
        total += len(item["entities"])
        if total > ctx.settings.max_batch_rows:
            raise RequestError(
                f"the batch's entities exceed serving.max_batch_rows "
                f"{ctx.settings.max_batch_rows} at {where}; split the batch", 413,
            )  # fmt: skip
        own = item.get("request_id", f"{rid}-{j}")
        key = item.get("routing_key")
        for name, value in (("request_id", own), ("routing_key", key)):
            if value is not None and (not isinstance(value, str) or not value):
                raise RequestError(f"{where}.{name} must be a non-empty string, got {value!r}", 422)
        when = _time(item["event_time"], f"{where}.event_time") if "event_time" in item else None
        try:
            keys, ids, sent = _parse_entities(ctx, item, own)
        except RequestError as exc:  # name the request the entity belongs to
            raise RequestError(f"{where}.{exc}", exc.http_status) from None
        out.append(_Request(own, when, key, keys, ids, sent))
    return out


def _runs(ctx: ServerContext, requests: list[_Request]) -> list[list[_Request]]:
    """Consecutive requests sharing an event time; with real-time features a run also
    ends before a request whose entity the run already holds."""
    stateful = ctx.feature_store().has_activity
    runs: list[list[_Request]] = []
    seen: set[tuple[Any, ...]] = set()
    for r in requests:
        fresh = set(r.keys)
        if (
            not runs
            or runs[-1][0].event_time != r.event_time
            or (stateful and (seen & fresh or len(fresh) < len(r.keys)))
        ):
            runs.append([])
            seen = set()
        runs[-1].append(r)
        seen |= fresh
    return runs


def _frame(ctx: ServerContext, runs: list[list[_Request]]) -> pd.DataFrame:
    """Every request's feature rows, in batch order, one lookup per run."""
    parts, row = [], 0
    for run in runs:
        keys = [k for r in run for k in r.keys]
        sent = [s for r in run for s in r.sent]
        parts.append(_lookup_rows(ctx, keys, sent, run[0].event_time))
        for r in run:
            r.first, row = row, row + len(r.keys)
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return frame


async def handle_predict_batch(
    ctx: ServerContext, body: bytes, rid: str
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Answer each request of the batch as /v1/predict would; returns (payload, shadow)."""
    started = time.perf_counter()
    requests = _parse(ctx, body, rid)
    runs = _runs(ctx, requests)
    frame = await anyio.to_thread.run_sync(_frame, ctx, runs)
    state = ctx.service.state
    table = ctx.layout.kind == "table"
    n = len(frame)
    version_of: list[str] = [""] * n
    route_of: list[str] = [""] * n
    for r in requests:
        for i, k in enumerate(r.keys):
            key = r.routing_key if r.routing_key is not None else ":".join(str(v) for v in k)
            route_of[r.first + i], version_of[r.first + i] = choose(state.routes, key)
    preds = np.empty(n, dtype="float64")
    matrices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for version in sorted(set(version_of)):
        chosen = np.flatnonzero(np.array(version_of) == version)
        x = _matrix(ctx, state.models[version], frame.iloc[chosen])
        preds[chosen] = await ctx.run_model(state.models[version], x)
        matrices[version] = (chosen, x)
    seconds = time.perf_counter() - started
    times = frame[TIMESTAMP_COLUMN].tolist()
    responses, shadow = [], []
    for r in requests:
        span = range(r.first, r.first + len(r.keys))
        share = seconds * len(span) / n  # the batch's time, split by rows
        for version in sorted({version_of[i] for i in span}):
            rows = [i for i in span if version_of[i] == version]
            route = route_of[rows[0]]
            _log(ctx, r, rows, state.models[version], route, _rows_of(matrices[version], rows),
                 preds[rows], share, times, table)  # fmt: skip
            if route == "champion":
                shadow.append((r, rows))
        responses.append({"request_id": r.rid, "predictions": [
            {"request_id": r.ids[i - r.first],
             **dict(zip(ctx.entity_keys, r.keys[i - r.first], strict=True)),
             "prediction": float(preds[i]), "model_version": version_of[i], "route": route_of[i],
             "feature_time": _iso(times[i])}
            for i in span
        ]})  # fmt: skip
    payload = {"model_name": ctx.model_name, "request_id": rid, "responses": responses}
    task = None
    if state.routes.shadow and state.routes.challenger and shadow:
        challenger = state.models[state.routes.challenger]
        task = BackgroundTask(_shadows, ctx, challenger, frame, shadow, preds, table)
    return payload, task


def _log(
    ctx: ServerContext, r: _Request, rows: list[int], served: ServedModel, route: str,
    x: np.ndarray, preds: np.ndarray, seconds: float, times: list[Any], table: bool,
) -> None:  # fmt: skip
    """Log and count one request's rows of one version, as /v1/predict does."""
    own = [i - r.first for i in rows]
    ctx.log_rows(request_ids=[r.ids[i] for i in own], served=served, route=route,
                 endpoint="entity", x=x, preds=preds, seconds=seconds, event_time=r.event_time,
                 entities=[r.keys[i] for i in own], feature_times=[times[i] for i in rows],
                 overrides=None if table else [sorted(r.sent[i]) for i in own])  # fmt: skip
    ctx.metrics.observe(served.version, route, "entity", preds, seconds)


def _rows_of(matrix: tuple[np.ndarray, np.ndarray], rows: list[int]) -> np.ndarray:
    """The model inputs of batch rows ``rows`` from one version's matrix."""
    order, x = matrix
    picked: np.ndarray = x[np.searchsorted(order, rows)]
    return picked


def _shadows(
    ctx: ServerContext, challenger: ServedModel, frame: pd.DataFrame,
    shadow: list[tuple[_Request, list[int]]], preds: np.ndarray, table: bool,
) -> None:  # fmt: skip
    """The challenger scores each request's champion rows, as /v1/predict's shadow does."""
    for r, rows in shadow:
        _shadow(
            ctx, challenger, frame.iloc[rows], [r.keys[i - r.first] for i in rows],
            None if table else [sorted(r.sent[i - r.first]) for i in rows],
            [r.ids[i - r.first] for i in rows], r.event_time, preds[rows],
        )  # fmt: skip
