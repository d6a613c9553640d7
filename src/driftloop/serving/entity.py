"""The entity endpoint (features fetched from the online store)."""

from __future__ import annotations

import contextlib
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
import orjson
import pandas as pd
from starlette.background import BackgroundTask

from driftloop.errors import FeatureStoreError, RequestError
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.serving.routing import choose
from driftloop.serving.service import ServedModel, predict

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

__all__ = ["handle_predict", "parse_json_object"]


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
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


def _parse_entities(ctx: ServerContext, doc: dict[str, Any], rid: str) -> tuple[
    list[tuple[Any, ...]], list[str], list[dict[str, Any]]
]:  # fmt: skip
    """Keys, request ids, and per entity what it sends: request-time feature values
    (retail) or the event's own fields (a table project)."""
    items = doc["entities"]
    if len(items) > ctx.settings.max_batch_rows:
        raise RequestError(
            f"{len(items)} entities exceed serving.max_batch_rows "
            f"{ctx.settings.max_batch_rows}; split the request", 413,
        )  # fmt: skip
    layout, names = ctx.layout, ctx.entity_keys
    fields = set(layout.request_fields)
    numeric = set(getattr(getattr(layout, "module", None), "NUMERIC", ()))
    sendable = ctx.request_time_features | fields
    allowed = {*names, "request_id", *sendable}
    keys, ids, sent = [], [], []
    for i, item in enumerate(items):
        where = f"entities[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object with {' and '.join(names)}", 422)
        unknown = sorted(set(item) - allowed)
        if unknown:
            stored = [u for u in unknown if u in layout.all_features]
            hint = (
                f"{stored} come from the online store and cannot be sent"
                if stored
                else f"allowed: {', '.join(names)}, request_id, and {sorted(sendable)}"
            )
            raise RequestError(f"{where}: unknown field(s) {unknown}; {hint}", 422)
        missing = [k for k in (*names, *sorted(fields)) if k not in item]
        if missing:
            raise RequestError(f"{where} lacks {missing}", 422)
        keys.append(tuple(_key(item[k], layout.entity_types[k], f"{where}.{k}") for k in names))
        given = item.get("request_id")
        ids.append(str(given) if given is not None else (rid if len(items) == 1 else f"{rid}:{i}"))
        values: dict[str, Any] = {}
        for name in ctx.request_time_features & set(item):
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
    ctx: ServerContext, online: Any, keys: list[tuple[Any, ...]], sent: list[dict[str, Any]],
    event_time: datetime | None,
) -> pd.DataFrame:  # fmt: skip
    """One row of features per requested entity, in request order, with its feature time.

    Retail: the online store's row with the request-time values sent. A table project:
    the event features of the sent fields (the repository's ``transform_events``) beside
    the entity's history from the online store (missing for an entity never seen), and
    its real-time features from its activity state, whose update is pushed back.
    """
    names = list(ctx.entity_keys)
    index = (
        pd.MultiIndex.from_tuples(keys, names=names)
        if len(names) > 1
        else pd.Index([k[0] for k in keys], name=names[0])
    )
    stored = online.frame.set_index(names if len(names) > 1 else names[0])
    frame: pd.DataFrame = stored.reindex(index).reset_index(drop=True)
    if ctx.layout.kind == "table":
        raw = pd.DataFrame(sent, columns=list(ctx.layout.request_fields))
        raw[TIMESTAMP_COLUMN] = pd.Timestamp(event_time or ctx.clock.now()).tz_convert("UTC")
        for j, k in enumerate(names):
            raw[k] = [key[j] for key in keys]
        events = ctx.layout.transform(raw)  # type: ignore[union-attr]
        frame = pd.concat(
            [frame.drop(columns=list(events.columns), errors="ignore"),
             events.reset_index(drop=True)], axis=1,
        )  # fmt: skip
        state = list(getattr(ctx.layout, "activity_state", ()))
        if state:
            layout, store = ctx.layout, ctx.feature_store()
            seeing, pushed = layout.update_activity(frame.reindex(columns=state), raw)  # type: ignore[union-attr]
            seen = events.join(seeing).assign(**{TIMESTAMP_COLUMN: raw[TIMESTAMP_COLUMN]})
            frame = frame.join(layout.realtime_features(seen))  # type: ignore[union-attr]
            store.push_activity(pushed)
        frame[TIMESTAMP_COLUMN] = frame[TIMESTAMP_COLUMN].fillna(raw[TIMESTAMP_COLUMN])
        return frame
    for r, values in enumerate(sent):
        for name, value in values.items():
            frame.loc[r, name] = value
    return frame


def _lookup_rows(
    ctx: ServerContext, keys: list[tuple[Any, ...]], sent: list[dict[str, Any]],
    event_time: datetime | None,
) -> pd.DataFrame:  # fmt: skip
    """The online lookup and the feature rows; with real-time features both happen under
    the activity lock, so two requests of an entity never step the same state."""
    names = ctx.entity_keys
    unique = sorted(set(keys))
    store = ctx.feature_store()
    with ctx.activity_lock if store.has_activity else contextlib.nullcontext():
        try:
            online = store.online(unique)
        except FeatureStoreError as exc:
            raise FeatureStoreError(
                f"the online feature store ({ctx.project.online_store_label}) is unavailable: "
                f"{exc}; /v2 inference with the features in the request keeps serving"
            ) from exc
        if online.missing and ctx.layout.kind != "table":  # a table's new entity: no history
            named = ", ".join(f"{k}={v}" for k, v in zip(names, online.missing[0], strict=True))
            raise RequestError(
                f"entity {named} has no features in the online "
                f"store ({len(online.missing)} unknown in all); check the keys or run "
                "`driftloop features materialize`", 404,
            )  # fmt: skip
        return _feature_rows(ctx, online, keys, sent, event_time)


async def handle_predict(
    ctx: ServerContext, body: bytes, rid: str, routing_key: str | None = None
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Look up features, route each entity, predict, log; returns (payload, shadow task).

    Each entity is routed by its own key (sticky per entity), unless the request names
    a ``routing_key`` (body or ``X-Routing-Key``): then the whole request goes to one
    version, sticky per that key (a session, a batch job's run).
    """
    started = time.perf_counter()
    doc = parse_json_object(body, "entities")
    event_time = _time(doc["event_time"], "event_time") if "event_time" in doc else None
    keys, ids, sent = _parse_entities(ctx, doc, rid)
    names = ctx.entity_keys
    frame = await anyio.to_thread.run_sync(_lookup_rows, ctx, keys, sent, event_time)
    state = ctx.service.state
    key = doc.get("routing_key", routing_key)
    if key is not None and (not isinstance(key, str) or not key):
        raise RequestError(f"routing_key must be a non-empty string, got {key!r}", 422)
    if key is not None:
        routed = [choose(state.routes, key)] * len(keys)
    else:
        routed = [choose(state.routes, ":".join(str(v) for v in k)) for k in keys]
    logged = [sorted(v) for v in sent] if ctx.layout.kind != "table" else None
    results: list[dict[str, Any]] = [{} for _ in keys]
    shadow_rows: list[int] = []
    champion_preds = np.empty(0)
    for version in sorted({v for _, v in routed}):
        rows = [i for i, (_, v) in enumerate(routed) if v == version]
        served = state.models[version]
        x = _matrix(ctx, served, frame.iloc[rows])
        preds = await ctx.run_model(served, x)
        route = routed[rows[0]][0]
        feature_times = [frame.at[i, TIMESTAMP_COLUMN] for i in rows]
        seconds = time.perf_counter() - started
        ctx.log_rows(request_ids=[ids[i] for i in rows], served=served, route=route,
                     endpoint="entity", x=x, preds=preds, seconds=seconds, event_time=event_time,
                     entities=[keys[i] for i in rows], feature_times=feature_times,
                     overrides=None if logged is None else [logged[i] for i in rows])  # fmt: skip
        ctx.metrics.observe(version, route, "entity", preds, seconds)
        for j, i in enumerate(rows):
            results[i] = {
                "request_id": ids[i], **dict(zip(names, keys[i], strict=True)),
                "prediction": float(preds[j]), "model_version": version, "route": route,
                "feature_time": _iso(feature_times[j]),
            }  # fmt: skip
        if route == "champion":
            shadow_rows, champion_preds = rows, preds
    payload = {"model_name": ctx.model_name, "request_id": rid, "predictions": results}
    task = None
    if state.routes.shadow and state.routes.challenger and shadow_rows:
        challenger = state.models[state.routes.challenger]
        task = BackgroundTask(
            _shadow, ctx, challenger, frame.iloc[shadow_rows], [keys[i] for i in shadow_rows],
            None if logged is None else [logged[i] for i in shadow_rows],
            [ids[i] for i in shadow_rows], event_time, champion_preds,
        )  # fmt: skip
    return payload, task


def _iso(stamp: Any) -> str | None:
    return None if stamp is None or pd.isna(stamp) else pd.Timestamp(stamp).isoformat()


def _matrix(ctx: ServerContext, served: ServedModel, rows: pd.DataFrame) -> np.ndarray:
    names = list(served.feature_names)
    x = rows[names].to_numpy(dtype="float64")
    bad = ~np.isfinite(x)
    if bad.any():
        cols = sorted(
            {names[j] for j in np.nonzero(bad)[1] if names[j] not in ctx.nullable_features}
        )
        if cols:
            raise RequestError(
                f"no value for {cols}: send them as request-time values, or rematerialize the "
                "features", 422,
            )  # fmt: skip
    matrix: np.ndarray = x.astype("float32")
    return matrix


def _shadow(
    ctx: ServerContext, challenger: ServedModel, rows: pd.DataFrame, keys: list[tuple[Any, ...]],
    logged: list[list[str]] | None, ids: list[str], event_time: datetime | None,
    champion_preds: np.ndarray,
) -> None:  # fmt: skip
    started = time.perf_counter()
    try:
        x = _matrix(ctx, challenger, rows)
        preds = predict(challenger, x)
    except Exception:
        ctx.metrics.shadow.labels(ctx.model_name, challenger.version, "error").inc()
        return
    times = list(rows[TIMESTAMP_COLUMN])
    ctx.log_rows(request_ids=ids, served=challenger, route="shadow", endpoint="entity", x=x,
                 preds=preds, seconds=time.perf_counter() - started, event_time=event_time,
                 entities=keys, feature_times=times, overrides=logged)  # fmt: skip
    ctx.metrics.observe_shadow(challenger.version, preds, champion_preds)
