"""Alias history: MLflow keeps only the current alias, so driftloop records every move."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from driftloop.storage.statedb import connect, immediate

__all__ = ["AliasHistory", "AliasMove", "previous_holder"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alias_moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: who, when, from which version to which, and why."""

    model: str
    alias: str
    from_version: str | None
    to_version: str | None  # None: the alias was removed
    kind: str  # "train" | "promote" | "rollback" | "clear"
    actor: str
    reason: str
    at: datetime


def previous_holder(moves: list[AliasMove]) -> str | None:
    """The version an alias held before its current one, with rollbacks undone.

    Moves are replayed as a stack: a move pushes its target, a rollback pops, so
    rolling back twice walks back two champions rather than toggling between two.
    """
    stack: list[str | None] = []
    for move in moves:
        if move.kind == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(move.to_version)
    while len(stack) >= 2:
        candidate = stack[-2]
        if candidate is not None and candidate != stack[-1]:
            return candidate
        stack.pop(-2)
    return None


class AliasHistory:
    """Append-only log of alias moves in the project's state database (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    @contextmanager
    def recording(self, move: AliasMove) -> Iterator[None]:
        """Write ``move`` only if the block (the registry call) succeeds."""
        with immediate(self.path) as db:
            db.execute(
                "INSERT INTO alias_moves (model, alias, from_version, to_version, kind, actor,"
                " reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    move.model,
                    move.alias,
                    move.from_version,
                    move.to_version,
                    move.kind,
                    move.actor,
                    move.reason,
                    move.at.isoformat(),
                ),
            )
            yield

    def moves(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Moves of ``model`` (optionally one alias), oldest first."""
        query = "SELECT model, alias, from_version, to_version, kind, actor, reason, at FROM "
        query += "alias_moves WHERE model = ?"
        args: tuple[str, ...] = (model,)
        if alias is not None:
            query += " AND alias = ?"
            args = (model, alias)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        return [
            AliasMove(m, a, f, t, k, who, why, datetime.fromisoformat(at))
            for m, a, f, t, k, who, why, at in rows
        ]
