"""The entity endpoint (features fetched from the online store)."""

from __future__ import annotations

import contextlib
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import anyio
import numpy as np
import orjson
import pandas as pd
from starlette.background import BackgroundTask

from driftloop.errors import FeatureStoreError, RequestError
from driftloop.serving.routing import choose, splits
from driftloop.serving.rows import CachedRow, RowBlock, UnknownEntities, block_from_frame
from driftloop.serving.service import ServedModel, predict

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

__all__ = ["answer_item", "handle_predict", "parse_json_object", "ttl_warning"]

EARLIEST_TIME = datetime(1678, 1, 1, tzinfo=UTC)  # within pandas' nanosecond timestamps
LATEST_TIME = datetime(2261, 12, 31, tzinfo=UTC)


def parse_json_object(body: bytes, key: str) -> dict[str, Any]:
    """A JSON object holding a non-empty list under ``key``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list) or not doc[key]:
        raise RequestError(f"request body must be a JSON object with a non-empty {key!r} list")
    return doc


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{where} must be a whole number, got {value!r}", 422)
    return value


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise RequestError(f"{where} must be an ISO date or timestamp string", 422)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{where} {value!r} is not an ISO date or timestamp", 422) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST_TIME <= moment <= LATEST_TIME:  # the log stores nanosecond timestamps
        raise RequestError(
            f"{where} {value!r} is outside the times driftloop logs "
            f"({EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d})",
            422,
        )
    return moment


def _key(value: Any, kind: str, where: str) -> Any:
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise RequestError(f"{where} must be a non-empty string, got {value!r}", 422)
        return str(value)
    return _whole(value, where)


def _number(value: Any, where: str, nullable: bool = False) -> float:
    if value is None and nullable:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"{where} must be a finite number, got {value!r}", 422)
    return float(value)


def _parse_entities(
    ctx: ServerContext, doc: dict[str, Any], rid: str
) -> tuple[list[tuple[Any, ...]], list[str], list[dict[str, Any]]]:
    """Keys, request ids, and per entity what it sends: request-time feature values
    (retail) or the event's own fields (a table project)."""
    items = doc["entities"]
    if len(items) > ctx.settings.max_batch_rows:
        raise RequestError(
            f"{len(items)} entities exceed serving.max_batch_rows "
            f"{ctx.settings.max_batch_rows}; split the request",
            413,
        )
    layout, names = ctx.layout, ctx.entity_keys
    fields, numeric, sendable, allowed = ctx.entity_fields
    required = (*names, *sorted(fields))
    types = layout.entity_types
    strings = any(types[k] == "string" for k in names)
    keys, ids, sent = [], [], []
    for i, item in enumerate(items):
        where = f"entities[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object with {' and '.join(names)}", 422)
        if not allowed.issuperset(item):
            unknown = sorted(set(item) - allowed)
            stored = [u for u in unknown if u in layout.all_features]
            hint = (
                f"{stored} come from the online store and cannot be sent"
                if stored
                else f"allowed: {', '.join(names)}, request_id, and {sorted(sendable)}"
            )
            raise RequestError(f"{where}: unknown field(s) {unknown}; {hint}", 422)
        missing = [k for k in required if k not in item]
        if missing:
            raise RequestError(f"{where} lacks {missing}", 422)
        key = tuple(item[k] for k in names)
        if not all(type(v) is int for v in key) or strings:  # type(): a bool is no key
            key = tuple(_key(item[k], types[k], f"{where}.{k}") for k in names)
        keys.append(key)
        given = item.get("request_id")
        ids.append(str(given) if given is not None else (rid if len(items) == 1 else f"{rid}:{i}"))
        values: dict[str, Any] = {}
        if len(item) > len(names):  # anything besides the keys: request id or values
            for name in ctx.request_time_features.intersection(item):
                values[name] = _number(item[name], f"{where}.{name}")
        for name in fields:
            value = item[name]
            if name in numeric:
                values[name] = _number(value, f"{where}.{name}", nullable=True)
            elif value is not None and (
                isinstance(value, bool) or not isinstance(value, str | int | float)
            ):
                raise RequestError(f"{where}.{name} must be a string or number, got {value!r}", 422)
            else:
                values[name] = value
        sent.append(values)
    return keys, ids, sent


def _feature_rows(
    ctx: ServerContext,
    online: Any,
    keys: list[tuple[Any, ...]],
    sent: list[dict[str, Any]],
    event_time: datetime | None,
) -> pd.DataFrame:
    """One row of features per requested entity, in request order, with its feature time:
    the online store's rows and what each entity sent, as the layout combines them
    (``ProjectLayout.online_frame``)."""
    names = list(ctx.entity_keys)
    index = (
        pd.MultiIndex.from_tuples(keys, names=names)
        if len(names) > 1
        else pd.Index([k[0] for k in keys], name=names[0])
    )
    stored = online.frame.set_index(names if len(names) > 1 else names[0])
    frame: pd.DataFrame = stored.reindex(index).reset_index(drop=True)
    moment = event_time or ctx.clock.now()
    return ctx.layout.online_frame(frame, keys, sent, moment, ctx.feature_store().push_activity)


def _lookup_rows(
    ctx: ServerContext,
    keys: list[tuple[Any, ...]],
    sent: list[dict[str, Any]],
    event_time: datetime | None,
) -> pd.DataFrame:
    """The online lookup and the feature rows; with real-time features both happen under
    the activity lock, so two requests of an entity never step the same state."""
    unique = sorted(set(keys))
    store = ctx.feature_store()
    with ctx.activity_lock if store.has_activity else contextlib.nullcontext():
        online = _online(ctx, unique)
        if online.missing and not ctx.layout.event_requests:  # an event: served without history
            _refuse_unknown(ctx, keys, set(online.missing))
        return _feature_rows(ctx, online, keys, sent, event_time)


def _online(ctx: ServerContext, keys: list[tuple[Any, ...]]) -> Any:
    try:
        return ctx.feature_store().online(keys)
    except FeatureStoreError as exc:
        raise FeatureStoreError(
            f"the online feature store ({ctx.project.online_store_label}) is unavailable: "
            f"{exc}; /v2 inference with the features in the request keeps serving"
        ) from exc


def _refuse_unknown(
    ctx: ServerContext, keys: list[tuple[Any, ...]], unknown: set[tuple[Any, ...]]
) -> None:
    at = [(i, k) for i, k in enumerate(keys) if k in unknown]
    raise UnknownEntities(ctx.entity_keys, at, len(keys))


def _read_missing(
    ctx: ServerContext, misses: list[tuple[Any, ...]], stamp: tuple[int, ...] | None
) -> dict[tuple[Any, ...], CachedRow]:
    """Rows the cache lacks, from the online store (a worker thread: Feast blocks);
    cached when nothing wrote to the store while they were read."""
    store, cache = ctx.feature_store(), ctx.row_cache
    rows = cache.convert(_online(ctx, misses).frame)
    if store.online_stamp() == stamp:
        cache.keep(stamp, rows)
    return rows


async def _rows(
    ctx: ServerContext,
    keys: list[tuple[Any, ...]],
    sent: list[dict[str, Any]],
    event_time: datetime | None,
) -> RowBlock:
    """The request's feature rows: from the row cache on the event loop when every entity
    is cached, else the misses read from Feast in a worker thread. A table project (event
    features, real-time state) builds its frame in a worker thread."""
    store = ctx.feature_store()
    if ctx.layout.event_requests or store.has_activity:
        frame = await anyio.to_thread.run_sync(_lookup_rows, ctx, keys, sent, event_time)
        models = ctx.service.state.models.values()
        return block_from_frame(frame, [n for m in models for n in m.feature_names])
    stamp = store.online_stamp()
    found = ctx.row_cache.get(stamp, keys)
    if None in found:
        misses = sorted({k for k, r in zip(keys, found, strict=True) if r is None})
        read = await anyio.to_thread.run_sync(_read_missing, ctx, misses, stamp)
        found = [r if r is not None else read.get(k) for k, r in zip(keys, found, strict=True)]
        unknown = {k for k, r in zip(keys, found, strict=True) if r is None}
        if unknown:
            _refuse_unknown(ctx, keys, unknown)
    return ctx.row_cache.block(cast("list[CachedRow]", found), sent)


def ttl_warning(flagged: int, total: int, ttl_days: float) -> str | None:
    """The answer's warning when ``flagged`` of ``total`` predictions used features
    further than the views' TTL from ``event_time`` (None when none did)."""
    if not flagged:
        return None
    return (
        f"{flagged} of {total} predictions used features further than the feature "
        f"views' TTL (features.ttl_days = {ttl_days}) from event_time; they are marked "
        "outside_ttl here and in the prediction log"
    )


def answer_item(
    request_id: str,
    keys: dict[str, Any],
    prediction: float,
    version: str,
    route: str,
    feature_time: str | None,
    outside_ttl: bool,
) -> dict[str, Any]:
    """One entity's prediction as ``/v1/predict`` answers it (and each request of a batch)."""
    return {
        "request_id": request_id,
        **keys,
        "prediction": prediction,
        "model_version": version,
        "route": route,
        "feature_time": feature_time,
        "outside_ttl": outside_ttl,
    }


async def handle_predict(
    ctx: ServerContext, body: bytes, rid: str, routing_key: str | None = None
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Look up features, route each entity, predict, log; returns (payload, shadow task).

    Each entity is routed by its own key (sticky per entity), unless the request names
    a ``routing_key`` (body or ``X-Routing-Key``): then the whole request goes to one
    version, sticky per that key (a session, a batch job's run). A prediction whose
    features are further than the feature views' TTL from ``event_time`` is answered and
    logged with ``outside_ttl`` true (and a warning in the answer).
    """
    started = time.perf_counter()
    doc = parse_json_object(body, "entities")
    event_time = _time(doc["event_time"], "event_time") if "event_time" in doc else None
    keys, ids, sent = _parse_entities(ctx, doc, rid)
    key = doc.get("routing_key", routing_key)
    if key is not None and (not isinstance(key, str) or not key):
        raise RequestError(f"routing_key must be a non-empty string, got {key!r}", 422)
    names = ctx.entity_keys
    block = await _rows(ctx, keys, sent, event_time)
    ttl_days = ctx.project.config.features.ttl_days
    outside = block.outside(
        None if event_time is None else event_time.timestamp(), ttl_days * 86400.0
    )
    state = ctx.service.state
    if key is not None or not splits(state.routes):  # one answer for every entity
        routed = [choose(state.routes, key or "")] * len(keys)
    else:
        routed = [choose(state.routes, ":".join(str(v) for v in k)) for k in keys]
    # the request-time values each entity sent (none: no column to fill in the log)
    logged = [sorted(v) for v in sent] if not ctx.layout.event_requests and any(sent) else None
    results: list[dict[str, Any]] = [{} for _ in keys]
    shadow_rows: list[int] = []
    champion_preds = np.empty(0)
    for version in sorted({v for _, v in routed}):
        rows = [i for i, (_, v) in enumerate(routed) if v == version]
        served = state.models[version]
        x = block.matrix(served.feature_names, rows, ctx.nullable_features)
        preds = await ctx.run_model(served, x)
        route = routed[rows[0]][0]
        seconds = time.perf_counter() - started
        ctx.log_rows(
            request_ids=[ids[i] for i in rows],
            served=served,
            route=route,
            endpoint="entity",
            x=x,
            preds=preds,
            seconds=seconds,
            event_time=event_time,
            entities=[keys[i] for i in rows],
            feature_times=block.seconds[rows],
            overrides=None if logged is None else [logged[i] for i in rows],
            outside_ttl=[outside[i] for i in rows],
        )
        ctx.metrics.observe(version, route, "entity", preds, seconds)
        for i, p in zip(rows, preds.tolist(), strict=True):
            results[i] = answer_item(
                ids[i],
                dict(zip(names, keys[i], strict=True)),
                p,
                version,
                route,
                block.iso[i],
                outside[i],
            )
        if route == "champion":
            shadow_rows, champion_preds = rows, preds
    payload: dict[str, Any] = {
        "model_name": ctx.model_name,
        "request_id": rid,
        "predictions": results,
    }
    warning = ttl_warning(sum(outside), len(keys), ttl_days)
    if warning:
        payload["warning"] = warning
    task = None
    if state.routes.shadow and state.routes.challenger and shadow_rows:
        challenger = state.models[state.routes.challenger]
        task = BackgroundTask(
            _shadow,
            ctx,
            challenger,
            block,
            shadow_rows,
            [keys[i] for i in shadow_rows],
            None if logged is None else [logged[i] for i in shadow_rows],
            [ids[i] for i in shadow_rows],
            event_time,
            champion_preds,
            [outside[i] for i in shadow_rows],
        )
    return payload, task


def _shadow(
    ctx: ServerContext,
    challenger: ServedModel,
    block: RowBlock,
    rows: list[int],
    keys: list[tuple[Any, ...]],
    logged: list[list[str]] | None,
    ids: list[str],
    event_time: datetime | None,
    champion_preds: np.ndarray,
    outside: list[bool],
) -> None:
    started = time.perf_counter()
    try:
        x = block.matrix(challenger.feature_names, rows, ctx.nullable_features)
        preds = predict(challenger, x)
    except Exception:
        ctx.metrics.shadow.labels(ctx.model_name, challenger.version, "error").inc()
        return
    ctx.log_rows(
        request_ids=ids,
        served=challenger,
        route="shadow",
        endpoint="entity",
        x=x,
        preds=preds,
        seconds=time.perf_counter() - started,
        event_time=event_time,
        entities=keys,
        feature_times=block.seconds[rows],
        overrides=logged,
        outside_ttl=outside,
    )
    ctx.metrics.observe_shadow(challenger.version, preds, champion_preds)
