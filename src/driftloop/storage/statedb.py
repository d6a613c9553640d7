"""The project's state database (SQLite): connections and all-or-nothing write blocks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["connect", "immediate"]

TIMEOUT_S = 30


def connect(path: Path) -> sqlite3.Connection:
    """A connection that waits up to 30 s for another process's write to finish."""
    return sqlite3.connect(path, timeout=TIMEOUT_S)


@contextmanager
def immediate(path: Path) -> Iterator[sqlite3.Connection]:
    """A write transaction taken at once (BEGIN IMMEDIATE), committed only if the block
    ends normally; any exception, even a KeyboardInterrupt, rolls it back."""
    db = connect(path)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        db.close()
