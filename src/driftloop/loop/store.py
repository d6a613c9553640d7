"""The loop's event log in the project's state database: every check and every decision.

The controller keeps no other state: the recent checks (for persistence), the retrains
(for the cool-down and the cap) and the rollouts it mirrored are all read back from
this log, so a controller restarted after a crash decides exactly as the one before.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from driftloop.loop.policy import Signals
from driftloop.storage.statedb import connect, immediate

__all__ = ["EVENT_KINDS", "LoopEvent", "LoopStore"]

EVENT_KINDS = (
    "check",  # one assessment and the decision taken on it
    "drift_detected",  # a trigger became sustained
    "hold",  # a retrain is warranted but held (cool-down, cap, rollout, disabled ...)
    "retrain_started",
    "retrain_failed",
    "retrain_waiting",  # too few labelled rows for a holdout the metric can judge: none made
    "gate_passed",
    "gate_rejected",
    "rollout_started",
    "rollout_refused",  # the rollout controller would not start it (another one runs ...)
    "rollout_step",
    "promoted",
    "rolled_back",
    "aborted",
    "recovered",  # the triggers stopped firing
    "paused",  # a dependency (server, registry, feature store) is unreachable: nothing runs
    "resumed",  # every dependency answers again
    "retrain_interrupted",  # a retrain stopped before it registered a version (a kill)
    "quarantined",  # a damaged log segment or state file was moved aside
    "lease_acquired",  # this controller became the project's active one
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loop_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    version TEXT,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loop_events_model_kind ON loop_events (model, kind, id);
"""


@dataclass(frozen=True)
class LoopEvent:
    id: int
    model: str
    at: datetime
    kind: str
    version: str | None
    message: str
    evidence: Mapping[str, Any]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, dates and other objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _event(row: tuple[Any, ...]) -> LoopEvent:
    return LoopEvent(
        row[0], row[1], datetime.fromisoformat(row[2]), row[3], row[4], row[5], json.loads(row[6])
    )


_COLUMNS = "id, model, at, kind, version, message, evidence"


class LoopStore:
    """``loop_events`` in ``state.db``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(connect(path)) as db:
            db.executescript(_SCHEMA)

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[LoopEvent]:
        with closing(connect(self.path)) as db:
            return [_event(r) for r in db.execute(sql, args).fetchall()]

    def record(
        self,
        model: str,
        at: datetime,
        kind: str,
        message: str,
        *,
        version: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> LoopEvent:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown loop event kind {kind!r}")
        doc = json.dumps(_clean(dict(evidence or {})), allow_nan=False)
        with immediate(self.path) as db:
            cur = db.execute(
                "INSERT INTO loop_events (model, at, kind, version, message, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (model, at.isoformat(), kind, version, message, doc),
            )
            new_id = cur.lastrowid
        assert new_id is not None
        return LoopEvent(new_id, model, at, kind, version, message, json.loads(doc))

    def events(
        self, model: str, *, kinds: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[LoopEvent]:
        """Events oldest first (the newest ``limit`` of them)."""
        where, args = "model = ?", [model]
        if kinds:
            where += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            args.extend(kinds)
        sql = f"SELECT {_COLUMNS} FROM loop_events WHERE {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            found = self._read(sql, tuple(args))
        except sqlite3.OperationalError:
            return []
        return list(reversed(found))

    def checks(self, model: str, limit: int) -> list[Signals]:
        """The signals of the newest ``limit`` checks, oldest first."""
        return [
            Signals.from_json(e.evidence["signals"])
            for e in self.events(model, kinds=("check",), limit=limit)
        ]

    def retrains(self, model: str, *, scheduled: bool = True) -> list[datetime]:
        """When each retrain started, but those interrupted before registering a version
        (and without ``scheduled`` the scheduled challengers: they take no drift retrain's
        cool-down or cap)."""
        found = self.events(model, kinds=("retrain_started", "retrain_interrupted"))
        interrupted = {e.evidence.get("retrain") for e in found if e.kind == "retrain_interrupted"}
        return [
            e.at
            for e in found
            if e.kind == "retrain_started"
            and e.id not in interrupted
            and (scheduled or not e.evidence.get("scheduled"))
        ]

    def last(self, model: str, kind: str) -> LoopEvent | None:
        found = self.events(model, kinds=(kind,), limit=1)
        return found[0] if found else None
