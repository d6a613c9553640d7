"""Make a moved or copied project's local registry point into its own folder again.

MLflow records absolute artifact URIs (the experiment's root, each run's, each logged
model's and each version's storage location). A project copied or moved elsewhere
(``cp -a``, a rename, a container image) still names its old folder: loading would read
another project's files, or refuse them as outside the artifact root, and new runs would
write there. When the project's own SQLite registry names a root that ends in the state
folder's ``mlartifacts`` but is not this project's, the recorded URIs are rewritten to
this project's root, in one transaction, before MLflow opens the database. Only the
default local registry is touched; a configured tracking server or artifact store is
where the config says.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

from driftloop.errors import RegistryError

__all__ = ["ARTIFACT_COLUMNS", "relocate_local_registry"]

logger = logging.getLogger("driftloop.registry")

# Every column in which MLflow 3 stores an artifact URI (table, column).
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


def _columns(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """The artifact columns this database's schema has (older MLflow has fewer tables)."""
    present = []
    for table, column in ARTIFACT_COLUMNS:
        names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column in names:
            present.append((table, column))
    return present


def _old_roots(db: sqlite3.Connection, root_uri: str) -> list[str]:
    """Recorded experiment roots that are another folder's ``.../<state>/mlartifacts``."""
    suffix = "/" + "/".join(root_uri.rstrip("/").split("/")[-2:])  # /.driftloop/mlartifacts
    found = db.execute("SELECT DISTINCT artifact_location FROM experiments").fetchall()
    return sorted(
        str(loc).rstrip("/")
        for (loc,) in found
        if isinstance(loc, str)
        and loc.rstrip("/").endswith(suffix)
        and loc.rstrip("/") != root_uri.rstrip("/")
    )


def relocate_local_registry(db_path: Path, root_uri: str) -> dict[str, int]:
    """Rewrite URIs under another folder's artifact root to ``root_uri``; rows per old root.

    Nothing happens when the database does not exist yet or already points here.
    """
    if not db_path.is_file():
        return {}
    new = root_uri.rstrip("/")
    try:
        with closing(sqlite3.connect(db_path, timeout=30)) as db:
            if not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='experiments'"
            ).fetchone():
                return {}
            if not _old_roots(db, new):
                return {}
            db.execute("BEGIN IMMEDIATE")  # one writer; a second opener then finds none
            moved: dict[str, int] = {}
            for old in _old_roots(db, new):
                count = 0
                for table, column in _columns(db):
                    count += db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                        (new, len(old) + 1, old, len(old) + 1, old + "/"),
                    ).rowcount
                moved[old] = count
            db.commit()
    except sqlite3.Error as exc:
        raise RegistryError(
            f"the project's registry {db_path} could not be pointed at its own folder after a "
            f"move: {exc}; check the file is writable"
        ) from exc
    for old, count in moved.items():
        logger.info("registry moved with its project: %d artifact URIs %s -> %s", count, old, new)
    return moved
