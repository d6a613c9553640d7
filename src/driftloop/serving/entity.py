"""The entity endpoint (features fetched from the online store)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import anyio
import numpy as np
import pandas as pd
from starlette.background import BackgroundTask

from driftloop.errors import FeatureStoreError, RequestError
from driftloop.serving.entity_parse import parse_entities, parse_json_object, parse_time
from driftloop.serving.routing import choose, splits
from driftloop.serving.rows import CachedRow, RowBlock, UnknownEntities, block_from_frame
from driftloop.serving.service import ServedModel

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

__all__ = ["answer_item", "handle_predict", "ttl_warning"]


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


@dataclass(frozen=True)
class _Entities:
    """One request's entities with their feature rows (from row ``first`` of ``block``)."""

    rid: str
    keys: list[tuple[Any, ...]]
    ids: list[str]
    event_time: datetime | None
    block: RowBlock
    outside: list[bool]  # per entity: features further than the TTL from event_time
    logged: list[list[str]] | None  # the request-time values each entity sent, for the log
    first: int = 0

    def block_rows(self, mine: list[int]) -> list[int]:
        """The block's rows of the entities at positions ``mine``."""
        return [self.first + i for i in mine]

    def log_fields(self, mine: list[int]) -> dict[str, Any]:
        """What the prediction log records of the entities ``mine`` beside the answers."""
        return {
            "event_time": self.event_time,
            "entities": [self.keys[i] for i in mine],
            "feature_times": self.block.seconds[self.block_rows(mine)],
            "overrides": None if self.logged is None else [self.logged[i] for i in mine],
            "outside_ttl": [self.outside[i] for i in mine],
        }


def _logged(ctx: ServerContext, sent: list[dict[str, Any]]) -> list[list[str]] | None:
    """The request-time values each entity sent, by name (None: no column to fill)."""
    return [sorted(v) for v in sent] if not ctx.layout.event_requests and any(sent) else None


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
    event_time = parse_time(doc["event_time"], "event_time") if "event_time" in doc else None
    keys, ids, sent = parse_entities(ctx, doc, rid)
    key = doc.get("routing_key", routing_key)
    if key is not None and (not isinstance(key, str) or not key):
        raise RequestError(f"routing_key must be a non-empty string, got {key!r}", 422)
    block = await _rows(ctx, keys, sent, event_time)
    ttl_days = ctx.project.config.features.ttl_days
    outside = block.outside(
        None if event_time is None else event_time.timestamp(), ttl_days * 86400.0
    )
    req = _Entities(rid, keys, ids, event_time, block, outside, _logged(ctx, sent))
    state = ctx.service.state
    if key is not None or not splits(state.routes):  # one answer for every entity
        routed = [choose(state.routes, key or "")] * len(keys)
    else:
        routed = [choose(state.routes, ":".join(str(v) for v in k)) for k in keys]
    results: list[dict[str, Any]] = [{} for _ in keys]
    task = None
    for version in sorted({v for _, v in routed}):
        rows = [i for i, (_, v) in enumerate(routed) if v == version]
        served, route = state.models[version], routed[rows[0]][0]
        x = block.matrix(served.feature_names, rows, ctx.nullable_features)
        preds = await ctx.run_model(served, x)
        seconds = time.perf_counter() - started
        _record(ctx, req, served, route, rows, x, preds, seconds, results)
        if route == "champion" and state.routes.shadow and state.routes.challenger:
            task = _shadow_task(ctx, req, state.models[state.routes.challenger], rows, preds)
    payload: dict[str, Any] = {
        "model_name": ctx.model_name,
        "request_id": rid,
        "predictions": results,
    }
    warning = ttl_warning(sum(outside), len(keys), ttl_days)
    if warning:
        payload["warning"] = warning
    return payload, task


def _record(
    ctx: ServerContext,
    req: _Entities,
    served: ServedModel,
    route: str,
    mine: list[int],
    x: np.ndarray,
    preds: np.ndarray,
    seconds: float,
    results: list[dict[str, Any]],
) -> None:
    """Log and count one version's answers to the entities ``mine``; fill their
    ``results``."""
    ctx.record(
        request_ids=[req.ids[i] for i in mine],
        served=served,
        route=route,
        endpoint="entity",
        x=x,
        preds=preds,
        seconds=seconds,
        **req.log_fields(mine),
    )
    names = ctx.entity_keys
    for i, p, row in zip(mine, preds.tolist(), req.block_rows(mine), strict=True):
        results[i] = answer_item(
            req.ids[i],
            dict(zip(names, req.keys[i], strict=True)),
            p,
            served.version,
            route,
            req.block.iso[row],
            req.outside[i],
        )


def _shadow_task(
    ctx: ServerContext,
    req: _Entities,
    challenger: ServedModel,
    mine: list[int],
    champion_preds: np.ndarray,
) -> BackgroundTask:
    """The challenger scored in shadow on the entities ``mine``, after the answer."""
    rows = req.block_rows(mine)
    return BackgroundTask(
        ctx.shadow,
        challenger,
        lambda: req.block.matrix(challenger.feature_names, rows, ctx.nullable_features),
        champion_preds,
        request_ids=[req.ids[i] for i in mine],
        endpoint="entity",
        **req.log_fields(mine),
    )
