"""``POST /v1/predict/batch``: several ``/v1/predict`` requests in one HTTP call.

A replay (or any client that gathers independent requests) sends the requests of one
time step together. Each one is answered exactly as ``/v1/predict`` answers it on its
own, by the same handler: its own ``event_time``, its own routing (its ``routing_key``,
else each entity by its key), its own request id, its own log rows and its own count in
``/metrics``; requests are served in order, so real-time features (an activity state the
server steps at each event) are stepped event by event. The whole batch is checked
before any of it is served; an entity unknown to the online store still fails its
request (404) after the requests before it were served and logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.background import BackgroundTask, BackgroundTasks

from driftloop.errors import RequestError
from driftloop.serving.entity import _parse_entities, _time, handle_predict, parse_json_object

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

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


async def handle_predict_batch(
    ctx: ServerContext, body: bytes, rid: str
) -> tuple[dict[str, Any], BackgroundTask | None]:
    """Answer each request of the batch as /v1/predict would; returns (payload, shadow)."""
    doc = parse_json_object(body, "requests")
    requests = _parse(ctx, body, rid)
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
