"""The day store's SQLite file: its schema, its one connection, and the ledger of folded
log segments that makes folding exactly once.

One file beside the logs (``.driftloop/monitor_days.db``, WAL mode): several processes
fold (the server's log flusher, ``driftloop monitor``, the loop), each fold one
``BEGIN IMMEDIATE`` transaction. A store written in another format is cleared on open
(it is derived: the next ``sync`` folds the logs again).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PREDICTION", "STORE_FILE", "STORE_FORMAT", "DayLedger"]

STORE_FILE = "monitor_days.db"
STORE_FORMAT = "2"
PREDICTION = ""  # the column name under which the prediction's counts are stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folded (log TEXT NOT NULL, dir TEXT NOT NULL, name TEXT NOT NULL,
    rows INTEGER NOT NULL, PRIMARY KEY (log, dir, name));
CREATE TABLE IF NOT EXISTS counts (version TEXT NOT NULL, day TEXT NOT NULL,
    col TEXT NOT NULL, bins TEXT NOT NULL, missing INTEGER NOT NULL,
    PRIMARY KEY (version, day, col));
CREATE INDEX IF NOT EXISTS counts_day ON counts (day);
CREATE TABLE IF NOT EXISTS served (request_id TEXT, version TEXT NOT NULL, day TEXT NOT NULL,
    prediction REAL NOT NULL, entity TEXT, id_label REAL, entity_label REAL);
CREATE INDEX IF NOT EXISTS served_request ON served (request_id);
DROP INDEX IF EXISTS served_entity;
DROP INDEX IF EXISTS served_day;
CREATE INDEX IF NOT EXISTS served_day_entity ON served (day, entity);
CREATE TABLE IF NOT EXISTS id_labels (request_id TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entity_labels (entity TEXT NOT NULL, day TEXT NOT NULL,
    value REAL NOT NULL, PRIMARY KEY (entity, day));
CREATE TABLE IF NOT EXISTS business (request_id TEXT NOT NULL, name TEXT NOT NULL,
    value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS business_request ON business (request_id);
CREATE TABLE IF NOT EXISTS days (version TEXT NOT NULL, day TEXT NOT NULL,
    rows INTEGER NOT NULL, labeled INTEGER NOT NULL, stats TEXT NOT NULL, auc TEXT NOT NULL,
    business TEXT NOT NULL, PRIMARY KEY (version, day));
CREATE INDEX IF NOT EXISTS days_day ON days (day);
"""


class DayLedger:
    """The store's file in ``state_dir / STORE_FILE``: schema, transactions, folded ledger."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STORE_FILE
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        state_dir.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60.0)
        try:
            con.executescript(_SCHEMA)
        finally:
            con.close()
        with self._connect() as con:
            found = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if found is not None and found[0] != STORE_FORMAT:
                self._clear(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on the store's connection (opened once: closing a WAL database
        checkpoints it, milliseconds a fold)."""
        with self._lock:
            if self._con is None:
                self._con = sqlite3.connect(
                    self.path, timeout=60.0, isolation_level=None, check_same_thread=False
                )
                self._con.execute("PRAGMA journal_mode = WAL")
                self._con.execute("PRAGMA synchronous = NORMAL")
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @staticmethod
    def _clear(con: sqlite3.Connection) -> None:
        for table in (
            "folded",
            "counts",
            "served",
            "id_labels",
            "entity_labels",
            "business",
            "days",
        ):
            con.execute(f"DELETE FROM {table}")
        con.execute("DELETE FROM meta WHERE key = 'served_from'")

    @staticmethod
    def _seen(con: sqlite3.Connection, log: str, segment: tuple[str, str]) -> bool:
        return (
            con.execute(
                "SELECT 1 FROM folded WHERE log = ? AND dir = ? AND name = ?", (log, *segment)
            ).fetchone()
            is not None
        )

    @staticmethod
    def _mark_in(
        con: sqlite3.Connection, segment: tuple[str, str] | None, log: str, rows: int
    ) -> None:
        if segment is not None:
            con.execute("INSERT OR IGNORE INTO folded VALUES (?, ?, ?, ?)", (log, *segment, rows))

    def _mark(self, segment: tuple[str, str] | None, log: str, rows: int) -> None:
        if segment is not None:
            with self._connect() as con:
                self._mark_in(con, segment, log, rows)
