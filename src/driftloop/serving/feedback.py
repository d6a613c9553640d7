"""The feedback endpoint: outcomes by request id, or by entity and date.

Every outcome is stored (a label may come before its prediction is flushed, or for a
prediction another replica served). The answer says which request ids matched a logged
prediction. The check is cheap in the common case and bounded otherwise:

1. the live monitor's index of the most recent ``MAX_RECENT`` request ids it counted
   (filled by the log flusher, never on the request path);
2. the predictions still buffered in memory (not flushed yet);
3. only for ids found in neither: the prediction log segments of the last
   ``LOOKBACK_DAYS`` serving days on disk (DuckDB reads the ``request_id`` column only).

An id older than that (served more than ``LOOKBACK_DAYS`` days ago and past the index) is
answered as unmatched although the offline join may still find it.
"""

from __future__ import annotations

import difflib
import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftloop.errors import RequestError
from driftloop.monitoring.predlog import logged_request_ids
from driftloop.serving.entity_parse import parse_json_object, parse_key, parse_time

if TYPE_CHECKING:
    from driftloop.serving.context import ServerContext

__all__ = ["LOOKBACK_DAYS", "MAX_LISTED", "handle_feedback"]

OUTCOME_KINDS = ("label", "business")
OUTCOME_FIELDS = ("value", "request_id", "kind", "name", "date")
LOOKBACK_DAYS = 7  # serving days of the on-disk log searched for ids not in memory
# names people send for a field, beside what difflib finds close
USUAL_NAMES = {
    "label": "value",
    "target": "value",
    "outcome": "value",
    "y": "value",
    "id": "request_id",
    "requestId": "request_id",
    "day": "date",
}
MAX_LISTED = 100  # unmatched request ids named in one answer (the count is always whole)


def _unknown_fields(item: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in item if k not in allowed]
    if not unknown:
        return
    name = unknown[0]
    close = (
        [USUAL_NAMES[name]]
        if name in USUAL_NAMES
        else difflib.get_close_matches(str(name), allowed, n=1)
    )
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RequestError(
        f"{where} has unknown field {name!r}{hint}; an outcome takes {', '.join(allowed)}", 422
    )


def _parse(ctx: ServerContext, i: int, item: Any, now: datetime) -> dict[str, Any]:
    where = f"outcomes[{i}]"
    if not isinstance(item, dict):
        raise RequestError(f"{where} must be an object", 422)
    names = ctx.entity_keys
    _unknown_fields(item, (*OUTCOME_FIELDS, *names), where)
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"{where}.value must be a finite number, got {value!r}", 422)
    kind = item.get("kind", "label")
    if kind not in OUTCOME_KINDS:
        raise RequestError(f"{where}.kind {kind!r} must be one of {OUTCOME_KINDS}", 422)
    name = item.get("name", "label")
    if not isinstance(name, str) or not name:
        raise RequestError(f"{where}.name must be a non-empty string", 422)
    request_id = item.get("request_id")
    if request_id is not None and (
        isinstance(request_id, bool) or request_id == "" or not isinstance(request_id, str | int)
    ):
        raise RequestError(f"{where}.request_id must be a non-empty string", 422)
    day: date | None = None
    keys: list[Any] = [None] * len(names)
    if request_id is None:
        if not all(k in item for k in names) or "date" not in item:
            raise RequestError(
                f"{where} needs a request_id, or {' and '.join(names)} with a date", 422
            )
        keys = [parse_key(item[k], ctx.layout.entity_types[k], f"{where}.{k}") for k in names]
        day = parse_time(item["date"], f"{where}.date").date()
    return {
        "received_at": now,
        "request_id": None if request_id is None else str(request_id),
        **dict(zip(names, keys, strict=True)),
        "date": day,
        "name": name,
        "kind": kind,
        "value": float(value),
    }


def _buffered_ids(ctx: ServerContext) -> set[str]:
    """Request ids of the predictions not flushed yet."""
    ids: set[str] = set()
    for item in ctx.predictions.buffered():
        ids.update(getattr(item, "request_ids", ()) or ())
    return ids


def match_request_ids(ctx: ServerContext, ids: set[str]) -> set[str]:
    """Which of ``ids`` belong to a logged (or buffered) prediction."""
    found = ctx.live.seen(ids)
    missing = ids - found
    if missing:
        found |= missing & _buffered_ids(ctx)
        missing = ids - found
    if missing:
        today = ctx.clock.now().date()
        days = [today - timedelta(days=d) for d in range(LOOKBACK_DAYS)]
        found |= logged_request_ids(ctx.project.state_dir, missing, days)
        found |= ctx.live.seen(ids - found)  # flushed while the log was read
    return found


def handle_feedback(ctx: ServerContext, body: bytes) -> dict[str, Any]:
    """Store outcomes (all or none of a request) and say which request ids matched a
    logged prediction. Runs off the event loop (it may read the log on disk)."""
    doc = parse_json_object(body, "outcomes")
    now = ctx.clock.now()
    rows = [_parse(ctx, i, item, now) for i, item in enumerate(doc["outcomes"])]
    ctx.feedback.append(rows)
    ids = {r["request_id"] for r in rows if r["request_id"] is not None}
    found = match_request_ids(ctx, ids) if ids else set()
    unmatched = [
        r["request_id"]
        for r in rows
        if r["request_id"] is not None and r["request_id"] not in found
    ]
    by_request = sum(r["request_id"] is not None for r in rows)
    return {
        "accepted": len(rows),
        "matched": by_request - len(unmatched),
        "unmatched": len(unmatched),
        "unmatched_request_ids": unmatched[:MAX_LISTED],
        "by_entity_and_date": len(rows) - by_request,
    }
