"""Rollout state and event log in the project's state database (SQLite).

One row per rollout holds where it is; every transition is one transaction that updates
that row only if nobody else changed it since it was read (a sequence number), and appends
the transition with its evidence to the event log. A crash between a transition and the
router call that applies it leaves ``applied = 0``: the next run applies it (routers are
idempotent and the rollout reads the live weight first), and the event is never written
twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from driftloop.errors import RolloutError
from driftloop.storage.statedb import connect, immediate

__all__ = ["ACTIVE_STATES", "TERMINAL_STATES", "Rollout", "RolloutEvent", "RolloutStore"]

TERMINAL_STATES = ("promoted", "rolled_back", "aborted")
ACTIVE_STATES = ("pending", "shadow", "step")
# not finished: in an active state, or ended but its last transition not applied yet
_UNFINISHED = f"model = ? AND (state IN ({', '.join('?' for _ in ACTIVE_STATES)}) OR applied = 0)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    stable TEXT NOT NULL,
    strategy TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL,
    weight REAL NOT NULL,
    shadow INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    phase_started_at TEXT,
    baseline TEXT,
    last_check TEXT,
    reason TEXT NOT NULL,
    abort_requested TEXT,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rollout_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
    at TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    weight REAL NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rollouts_model ON rollouts(model, id);
"""


@dataclass(frozen=True)
class Rollout:
    """Where one rollout stands."""

    id: int
    model: str
    version: str
    stable: str
    strategy: str
    state: str  # pending | shadow | step | promoted | rolled_back | aborted
    step: int  # index into the steps while state == "step", else -1
    weight: float  # the challenger weight this state wants
    shadow: bool
    applied: bool  # the router has the weight / the alias moves are done
    phase_started_at: datetime | None
    baseline: Mapping[str, Any] | None  # metrics snapshot when the phase began
    last_check: Mapping[str, Any] | None  # the latest verdict and its evidence
    reason: str
    abort_requested: str | None
    seq: int
    created_at: datetime
    updated_at: datetime

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def label(self) -> str:
        if self.state == "step":
            return f"step {self.step + 1} ({self.weight:g}%)"
        return self.state.replace("_", " ")


@dataclass(frozen=True)
class RolloutEvent:
    """One transition with the numbers that decided it."""

    id: int
    rollout_id: int
    at: datetime
    from_state: str
    to_state: str
    weight: float
    reason: str
    evidence: Mapping[str, Any]


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


_COLUMNS = (
    "id, model, version, stable, strategy, state, step, weight, shadow, applied, "
    "phase_started_at, baseline, last_check, reason, abort_requested, seq, created_at, updated_at"
)


def _row(row: tuple[Any, ...]) -> Rollout:
    (
        id_,
        model,
        version,
        stable,
        strategy,
        state,
        step,
        weight,
        shadow,
        applied,
        started,
        baseline,
        last_check,
        reason,
        abort,
        seq,
        created,
        updated,
    ) = row
    return Rollout(
        int(id_),
        model,
        version,
        stable,
        strategy,
        state,
        int(step),
        float(weight),
        bool(shadow),
        bool(applied),
        _dt(started),
        _json(baseline),
        _json(last_check),
        reason,
        abort,
        int(seq),
        datetime.fromisoformat(created),
        datetime.fromisoformat(updated),
    )


class RolloutStore:
    """Rollouts and their events, one SQLite file shared with the rest of the project state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self.path)

    # -- reads ----------------------------------------------------------------------------
    def get(self, rollout_id: int) -> Rollout:
        with closing(self._connect()) as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM rollouts WHERE id = ?", (rollout_id,))
            found = row.fetchone()
        if found is None:
            raise RolloutError(f"there is no rollout #{rollout_id}; `driftloop rollout history`")
        return _row(found)

    def active(self, model: str) -> Rollout | None:
        with closing(self._connect()) as db:
            found = db.execute(
                f"SELECT {_COLUMNS} FROM rollouts WHERE {_UNFINISHED} ORDER BY id DESC LIMIT 1",
                (model, *ACTIVE_STATES),
            ).fetchone()
        return None if found is None else _row(found)

    def latest(self, model: str) -> Rollout | None:
        with closing(self._connect()) as db:
            found = db.execute(
                f"SELECT {_COLUMNS} FROM rollouts WHERE model = ? ORDER BY id DESC LIMIT 1",
                (model,),
            ).fetchone()
        return None if found is None else _row(found)

    def recent(self, model: str, limit: int = 20) -> list[Rollout]:
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM rollouts WHERE model = ? ORDER BY id DESC LIMIT ?",
                (model, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def events(self, rollout_id: int) -> list[RolloutEvent]:
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, rollout_id, at, from_state, to_state, weight, reason, evidence "
                "FROM rollout_events WHERE rollout_id = ? ORDER BY id",
                (rollout_id,),
            ).fetchall()
        return [
            RolloutEvent(
                int(i), int(r), datetime.fromisoformat(at), f, t, float(w), why, json.loads(ev)
            )
            for i, r, at, f, t, w, why, ev in rows
        ]

    # -- writes ---------------------------------------------------------------------------
    def create(
        self, model: str, version: str, stable: str, strategy: str, at: datetime, reason: str
    ) -> Rollout:
        """A new pending rollout, refused while another one of ``model`` is not finished."""
        with self._write() as db:
            busy = db.execute(
                f"SELECT id, version FROM rollouts WHERE {_UNFINISHED} LIMIT 1",
                (model, *ACTIVE_STATES),
            ).fetchone()
            if busy is not None:
                raise RolloutError(
                    f"rollout #{busy[0]} of v{busy[1]} is not finished; follow it with "
                    "`driftloop rollout status`, resume it with `driftloop rollout start "
                    f"{busy[1]}`, or stop it with `driftloop rollout abort`"
                )
            stamp = at.isoformat()
            cur = db.execute(
                "INSERT INTO rollouts (model, version, stable, strategy, state, step, weight, "
                "shadow, applied, reason, seq, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'pending', -1, 0, 0, 1, ?, 0, ?, ?)",
                (model, version, stable, strategy, reason, stamp, stamp),
            )
            rollout_id = int(cur.lastrowid or 0)
            db.execute(
                "INSERT INTO rollout_events (rollout_id, at, from_state, to_state, weight, "
                "reason, evidence) VALUES (?, ?, '', 'pending', 0, ?, '{}')",
                (rollout_id, stamp, reason),
            )
        return self.get(rollout_id)

    def transition(
        self,
        current: Rollout,
        *,
        at: datetime,
        state: str,
        reason: str,
        evidence: Mapping[str, Any],
        step: int = -1,
        weight: float = 0.0,
        shadow: bool = False,
    ) -> Rollout:
        """Move ``current`` to ``state`` (not yet applied) and log it, or RolloutError if the
        stored rollout changed since ``current`` was read."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE rollouts SET state = ?, step = ?, weight = ?, shadow = ?, applied = 0, "
                "phase_started_at = NULL, baseline = NULL, reason = ?, seq = seq + 1, "
                "updated_at = ? WHERE id = ? AND seq = ?",
                (state, step, weight, int(shadow), reason, at.isoformat(), current.id, current.seq),
            )
            if cur.rowcount != 1:
                raise RolloutError(
                    f"rollout #{current.id} was changed by another process; re-read its status"
                )
            db.execute(
                "INSERT INTO rollout_events (rollout_id, at, from_state, to_state, weight, "
                "reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    current.id,
                    at.isoformat(),
                    current.label,
                    replace(current, state=state, step=step, weight=weight).label,
                    weight,
                    reason,
                    json.dumps(evidence, default=str),
                ),
            )
        return self.get(current.id)

    def mark_applied(
        self, current: Rollout, at: datetime, baseline: Mapping[str, Any] | None
    ) -> Rollout:
        """The router has the state's weight (or the alias moves are done); its window starts."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE rollouts SET applied = 1, phase_started_at = ?, baseline = ?, "
                "seq = seq + 1, updated_at = ? WHERE id = ? AND seq = ?",
                (
                    at.isoformat(),
                    None if baseline is None else json.dumps(baseline),
                    at.isoformat(),
                    current.id,
                    current.seq,
                ),
            )
            if cur.rowcount != 1:
                raise RolloutError(
                    f"rollout #{current.id} was changed by another process; re-read its status"
                )
        return self.get(current.id)

    def record_check(self, current: Rollout, check: Mapping[str, Any]) -> Rollout:
        """The latest verdict (a wait), for ``status``; not an event, no sequence change."""
        with self._write() as db:
            db.execute(
                "UPDATE rollouts SET last_check = ? WHERE id = ?",
                (json.dumps(check, default=str), current.id),
            )
        return self.get(current.id)

    def request_abort(self, rollout_id: int, reason: str) -> None:
        with self._write() as db:
            db.execute("UPDATE rollouts SET abort_requested = ? WHERE id = ?", (reason, rollout_id))
