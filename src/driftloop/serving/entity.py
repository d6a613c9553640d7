"""The entity endpoint (features fetched from the online store) and the feedback endpoint."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
import orjson
from starlette.background import BackgroundTask

from driftloop.errors import RequestError
from driftloop.features.engineering import ENTITY_KEYS, TIMESTAMP_COLUMN
from driftloop.serving.routing import choose
from driftloop.serving.service import ServedModel, predict

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

__all__ = ["handle_feedback", "handle_predict", "parse_json_object"]

OUTCOME_KINDS = ("label", "business")


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


def _parse_entities(ctx: ServerContext, doc: dict[str, Any], rid: str) -> tuple[
    list[tuple[int, int]], list[str], list[dict[str, float]]
]:  # fmt: skip
    items = doc["entities"]
    if len(items) > ctx.settings.max_batch_rows:
        raise RequestError(
            f"{len(items)} entities exceed serving.max_batch_rows "
            f"{ctx.settings.max_batch_rows}; split the request", 413,
        )  # fmt: skip
    allowed = {*ENTITY_KEYS, "request_id", *ctx.request_time_features}
    keys, ids, overrides = [], [], []
    for i, item in enumerate(items):
        where = f"entities[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object with {' and '.join(ENTITY_KEYS)}", 422)
        unknown = sorted(set(item) - allowed)
        if unknown:
            history = [u for u in unknown if u in ctx.layout.all_features]
            hint = (
                f"{history} come from the online store and cannot be sent"
                if history
                else f"allowed: {', '.join(ENTITY_KEYS)}, request_id, and request-time "
                f"features {sorted(ctx.request_time_features)}"
            )
            raise RequestError(f"{where}: unknown field(s) {unknown}; {hint}", 422)
        missing = [k for k in ENTITY_KEYS if k not in item]
        if missing:
            raise RequestError(f"{where} lacks {missing}", 422)
        keys.append((_whole(item[ENTITY_KEYS[0]], f"{where}.{ENTITY_KEYS[0]}"),
                     _whole(item[ENTITY_KEYS[1]], f"{where}.{ENTITY_KEYS[1]}")))  # fmt: skip
        given = item.get("request_id")
        ids.append(str(given) if given is not None else (rid if len(items) == 1 else f"{rid}:{i}"))
        values: dict[str, float] = {}
        for name in ctx.request_time_features & set(item):
            value = item[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise RequestError(f"{where}.{name} must be a finite number, got {value!r}", 422)
            values[name] = float(value)
        overrides.append(values)
    return keys, ids, overrides


async def handle_predict(
    ctx: ServerContext, body: bytes, rid: str, routing_key: str | None = None
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Look up features, route each entity, predict, log; returns (payload, shadow task).

    Each entity is routed by its own key (sticky per store and product), unless the
    request names a ``routing_key`` (body or ``X-Routing-Key``): then the whole request
    goes to one version, sticky per that key (a session, a batch job's run).
    """
    started = time.perf_counter()
    doc = parse_json_object(body, "entities")
    event_time = _time(doc["event_time"], "event_time") if "event_time" in doc else None
    keys, ids, overrides = _parse_entities(ctx, doc, rid)
    unique = sorted(set(keys))
    online = await anyio.to_thread.run_sync(ctx.feature_store().online, unique)
    if online.missing:
        s, p = online.missing[0]
        raise RequestError(
            f"entity {ENTITY_KEYS[0]}={s}, {ENTITY_KEYS[1]}={p} has no features in the online "
            f"store ({len(online.missing)} unknown in all); check the keys or run "
            "`driftloop features materialize`", 404,
        )  # fmt: skip
    table = online.frame.set_index(list(ENTITY_KEYS))
    state = ctx.service.state
    key = doc.get("routing_key", routing_key)
    if key is not None and (not isinstance(key, str) or not key):
        raise RequestError(f"routing_key must be a non-empty string, got {key!r}", 422)
    if key is not None:
        routed = [choose(state.routes, key)] * len(keys)
    else:
        routed = [choose(state.routes, f"{s}:{p}") for s, p in keys]
    results: list[dict[str, Any]] = [{} for _ in keys]
    shadow_rows: list[int] = []
    champion_preds = np.empty(0)
    for version in sorted({v for _, v in routed}):
        rows = [i for i, (_, v) in enumerate(routed) if v == version]
        served = state.models[version]
        x = _matrix(ctx, served, table, [keys[i] for i in rows], [overrides[i] for i in rows])
        preds = await ctx.run_model(served, x)
        route = routed[rows[0]][0]
        feature_times = [table.loc[keys[i], TIMESTAMP_COLUMN] for i in rows]
        seconds = time.perf_counter() - started
        ctx.log_rows(request_ids=[ids[i] for i in rows], served=served, route=route,
                     endpoint="entity", x=x, preds=preds, seconds=seconds, event_time=event_time,
                     entities=[keys[i] for i in rows], feature_times=feature_times,
                     overrides=[list(overrides[i]) for i in rows])  # fmt: skip
        ctx.metrics.observe(version, route, "entity", preds, seconds)
        for j, i in enumerate(rows):
            results[i] = {
                "request_id": ids[i], ENTITY_KEYS[0]: keys[i][0], ENTITY_KEYS[1]: keys[i][1],
                "prediction": float(preds[j]), "model_version": version, "route": route,
                "feature_time": feature_times[j].isoformat(),
            }  # fmt: skip
        if route == "champion":
            shadow_rows, champion_preds = rows, preds
    payload = {"model_name": ctx.model_name, "request_id": rid, "predictions": results}
    task = None
    if state.routes.shadow and state.routes.challenger and shadow_rows:
        challenger = state.models[state.routes.challenger]
        task = BackgroundTask(
            _shadow, ctx, challenger, table, [keys[i] for i in shadow_rows],
            [overrides[i] for i in shadow_rows], [ids[i] for i in shadow_rows], event_time,
            champion_preds,
        )  # fmt: skip
    return payload, task


def _matrix(
    ctx: ServerContext,
    served: ServedModel,
    table: Any,
    keys: list[tuple[int, int]],
    overrides: list[dict[str, float]],
) -> np.ndarray:
    names = list(served.feature_names)
    x = table.loc[keys, names].to_numpy(dtype="float64")
    for r, values in enumerate(overrides):
        for name, value in values.items():
            if name in names:
                x[r, names.index(name)] = value
    bad = ~np.isfinite(x)
    if bad.any():
        cols = sorted(
            {names[j] for j in np.nonzero(bad)[1] if names[j] not in ctx.nullable_features}
        )
        if cols:
            raise RequestError(
                f"the online store has no value for {cols}; send them as request-time values "
                "or rematerialize the features", 422,
            )  # fmt: skip
    matrix: np.ndarray = x.astype("float32")
    return matrix


def _shadow(
    ctx: ServerContext, challenger: ServedModel, table: Any, keys: list[tuple[int, int]],
    overrides: list[dict[str, float]], ids: list[str], event_time: datetime | None,
    champion_preds: np.ndarray,
) -> None:  # fmt: skip
    started = time.perf_counter()
    try:
        x = _matrix(ctx, challenger, table, keys, overrides)
        preds = predict(challenger, x)
    except Exception:
        ctx.metrics.shadow.labels(ctx.model_name, challenger.version, "error").inc()
        return
    times = [table.loc[k, TIMESTAMP_COLUMN] for k in keys]
    ctx.log_rows(request_ids=ids, served=challenger, route="shadow", endpoint="entity", x=x,
                 preds=preds, seconds=time.perf_counter() - started, event_time=event_time,
                 entities=keys, feature_times=times,
                 overrides=[list(o) for o in overrides])  # fmt: skip
    ctx.metrics.observe_shadow(challenger.version, preds, champion_preds)


def handle_feedback(ctx: ServerContext, body: bytes) -> dict[str, Any]:
    """Store outcomes by request id, or by entity and date; all or none of a request."""
    doc = parse_json_object(body, "outcomes")
    now = ctx.clock.now()
    rows = []
    for i, item in enumerate(doc["outcomes"]):
        where = f"outcomes[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object", 422)
        value = item.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise RequestError(f"{where}.value must be a finite number, got {value!r}", 422)
        kind = item.get("kind", "label")
        if kind not in OUTCOME_KINDS:
            raise RequestError(f"{where}.kind {kind!r} must be one of {OUTCOME_KINDS}", 422)
        name = item.get("name", "label")
        if not isinstance(name, str) or not name:
            raise RequestError(f"{where}.name must be a non-empty string", 422)
        request_id = item.get("request_id")
        day: date | None = None
        keys: list[int | None] = [None, None]
        if request_id is None:
            if not all(k in item for k in ENTITY_KEYS) or "date" not in item:
                raise RequestError(
                    f"{where} needs a request_id, or {' and '.join(ENTITY_KEYS)} with a date", 422
                )
            keys = [_whole(item[k], f"{where}.{k}") for k in ENTITY_KEYS]
            day = _time(item["date"], f"{where}.date").date()
        rows.append({
            "received_at": now, "request_id": None if request_id is None else str(request_id),
            ENTITY_KEYS[0]: keys[0], ENTITY_KEYS[1]: keys[1], "date": day, "name": name,
            "kind": kind, "value": float(value),
        })  # fmt: skip
    ctx.feedback.append(rows)
    ctx.live.observe_labels(
        (r["request_id"], r["value"]) for r in rows if r["request_id"] and r["kind"] == "label"
    )
    return {"accepted": len(rows)}
