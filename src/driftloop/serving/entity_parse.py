"""The entity endpoints' request bodies parsed and checked: entities, keys, times.

A bad field raises :class:`~driftloop.errors.RequestError` (422) naming it and what it
must be; ``/v1/predict``, its batch form and ``/v1/feedback`` all parse through here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from driftloop.errors import RequestError

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "parse_entities",
    "parse_json_object",
    "parse_key",
    "parse_time",
]

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


def parse_time(value: Any, where: str) -> datetime:
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


def parse_key(value: Any, kind: str, where: str) -> Any:
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


def _field(value: Any, numeric: bool, where: str) -> Any:
    """An event field an entity sent: a number (missing allowed) or a string."""
    if numeric:
        return _number(value, where, nullable=True)
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise RequestError(f"{where} must be a string or number, got {value!r}", 422)
    return value


def _refuse_item(ctx: ServerContext, i: int, item: Any, required: tuple[str, ...]) -> NoReturn:
    """Why ``entities[i]`` is refused: not an object, unknown fields, or missing ones."""
    names, where = ctx.entity_keys, f"entities[{i}]"
    _fields, _numeric, sendable, allowed = ctx.entity_fields
    if not isinstance(item, dict):
        raise RequestError(f"{where} must be an object with {' and '.join(names)}", 422)
    if not allowed.issuperset(item):
        unknown = sorted(set(item) - allowed)
        stored = [u for u in unknown if u in ctx.layout.all_features]
        hint = (
            f"{stored} come from the online store and cannot be sent"
            if stored
            else f"allowed: {', '.join(names)}, request_id, and {sorted(sendable)}"
        )
        raise RequestError(f"{where}: unknown field(s) {unknown}; {hint}", 422)
    missing = [k for k in required if k not in item]
    raise RequestError(f"{where} lacks {missing}", 422)


def parse_entities(
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
    fields, numeric, _sendable, allowed = ctx.entity_fields
    required = (*names, *sorted(fields))
    types = layout.entity_types
    strings = any(types[k] == "string" for k in names)
    needed = frozenset(required)
    only_ints = frozenset({int})  # type(): a bool is no key
    keys, ids, sent = [], [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not allowed.issuperset(item) or not needed <= item.keys():
            _refuse_item(ctx, i, item, required)
        key = tuple([item[k] for k in names])
        if strings or not only_ints.issuperset(map(type, key)):
            key = tuple(parse_key(item[k], types[k], f"entities[{i}].{k}") for k in names)
        keys.append(key)
        given = item.get("request_id")
        ids.append(str(given) if given is not None else (rid if len(items) == 1 else f"{rid}:{i}"))
        values: dict[str, Any] = {}
        if len(item) > len(names):  # anything besides the keys: request id or values
            where = f"entities[{i}]"
            for name in ctx.request_time_features.intersection(item):
                values[name] = _number(item[name], f"{where}.{name}")
            for name in fields:
                values[name] = _field(item[name], name in numeric, f"{where}.{name}")
        sent.append(values)
    return keys, ids, sent
