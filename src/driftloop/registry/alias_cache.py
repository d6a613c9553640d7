"""Alias reads kept while the SQLite registry database is unchanged.

A replay asks the registry for the champion and the challenger several times a simulated
day (the day's record, the controller's check, the scheduled challenger); each is an
MLflow query through SQLAlchemy, 5-10 % of a replay's main thread on the Chicago table.
For the default SQLite registry a read is kept until the database changes: SQLite's
``PRAGMA data_version``, read on a connection of this cache's own that never writes,
changes with every commit of any other connection, in this process (MLflow's) or in
another (``driftloop models promote``, a controller); the file's inode tells a database
replaced by another file. Another backend (a tracking server, PostgreSQL) is read every
time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from driftloop.registry.base import ModelVersion

__all__ = ["AliasCache"]

SQLITE_PREFIX = "sqlite:///"


class AliasCache:
    """``get(alias, read)``: ``read()``'s answer, again from memory while nothing changed."""

    def __init__(self, tracking_uri: str) -> None:
        plain = tracking_uri.startswith(SQLITE_PREFIX) and "?" not in tracking_uri
        self._path = Path(tracking_uri[len(SQLITE_PREFIX) :]) if plain else None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closer: weakref.finalize[[], AliasCache] | None = None
        self._inode: int | None = None
        self._token: tuple[int, int] | None = None
        self._found: dict[str, ModelVersion | None] = {}

    def _version(self) -> tuple[int, int] | None:
        """(inode, data_version) of the database now, or None: nothing is kept."""
        if self._path is None:
            return None
        try:
            inode = os.stat(self._path).st_ino
            if self._conn is None or inode != self._inode:
                if self._closer is not None:
                    self._closer()
                uri = f"file:{self._path}?mode=ro"
                self._conn = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10
                )
                # closed with the cache, not left to the collector (Python 3.13 warns)
                self._closer = weakref.finalize(self, self._conn.close)
                self._inode = inode
            return inode, int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except (OSError, sqlite3.Error):
            return None

    def get(self, alias: str, read: Callable[[], ModelVersion | None]) -> ModelVersion | None:
        # The token is taken before the read: a commit after it changes the next token, so
        # a kept answer is never older than the token it is kept under.
        with self._lock:
            token = self._version()
            if token is not None and token == self._token and alias in self._found:
                return self._found[alias]
        found = read()
        if token is not None:
            with self._lock:
                if token != self._token:
                    self._found, self._token = {}, token
                self._found[alias] = found
        return found
