"""The day store's fold: the SQL that counts prediction rows into their (version, day)
and joins labels and business outcomes to the served predictions they judge.

Every function runs inside the caller's transaction (``con``); a day's label aggregates
are recomputed from the served index (``refresh``), exact rather than a running difference.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from driftloop.monitoring.assess import AccuracyStats, accuracy_stats
from driftloop.monitoring.dayledger import PREDICTION
from driftloop.monitoring.labels import ScoreHistogram
from driftloop.monitoring.predlog import entity_strings, event_days, feature_column
from driftloop.statistics.profile import ReferenceProfile, bin_counts

__all__ = [
    "add_counts",
    "count_days",
    "entity_labels",
    "insert_business",
    "insert_served",
    "label_by_entity",
    "label_by_id",
    "prune_served",
    "refresh",
]

_EMPTY_STATS = json.dumps(AccuracyStats().__dict__)
_EMPTY_SCORES = ScoreHistogram().to_json()
Day = tuple[str, str]  # (version, ISO event day)


def add_counts(
    con: sqlite3.Connection,
    version: str,
    day: str,
    rows: pd.DataFrame,
    profile: ReferenceProfile,
) -> None:
    """Add ``rows``' counts in the profile's bins to the stored counts of (version, day)."""
    columns = [(name, c.edges, feature_column(name)) for name, c in profile.features.items()]
    columns.append((PREDICTION, profile.prediction.edges, "prediction"))
    for name, edges, column in columns:
        values = (
            rows[column].to_numpy("float64")
            if column in rows.columns
            else np.full(len(rows), np.nan)
        )
        counts, missing = bin_counts(values, edges)
        found = con.execute(
            "SELECT bins, missing FROM counts WHERE version = ? AND day = ? AND col = ?",
            (version, day, name),
        ).fetchone()
        if found is not None:
            counts = [a + b for a, b in zip(counts, json.loads(found[0]), strict=True)]
            missing += int(found[1])
        con.execute(
            "INSERT OR REPLACE INTO counts VALUES (?, ?, ?, ?, ?)",
            (version, day, name, json.dumps(counts), missing),
        )


def insert_served(
    con: sqlite3.Connection,
    frame: pd.DataFrame,
    versions: np.ndarray,
    days: np.ndarray,
    request_ids: pd.Series | None,
    entity: pd.Series | None,
) -> set[Day]:
    """Index the served predictions of ``frame``, joined to labels that came first; the
    (version, day)s whose new rows found a label or a business outcome."""
    first = con.execute("SELECT COALESCE(MAX(rowid), 0) + 1 FROM served").fetchone()[0]
    con.executemany(
        "INSERT INTO served (request_id, version, day, prediction, entity) VALUES (?, ?, ?, ?, ?)",
        zip(
            _texts(request_ids, len(frame)),
            versions.tolist(),
            days.tolist(),
            frame["prediction"].astype("float64").tolist(),
            _texts(entity, len(frame)),
            strict=True,
        ),
    )
    con.execute(
        "UPDATE served NOT INDEXED SET id_label = (SELECT value FROM id_labels l "
        "WHERE l.request_id = served.request_id) WHERE rowid >= ? AND request_id IN "
        "(SELECT request_id FROM id_labels)",
        (first,),
    )
    # only the rows a label waits for are written (setting NULL again cost a row write)
    con.execute(
        "UPDATE served NOT INDEXED SET entity_label = (SELECT value FROM entity_labels l "
        "WHERE l.entity = served.entity AND l.day = served.day) WHERE rowid >= ? "
        "AND entity IS NOT NULL AND EXISTS (SELECT 1 FROM entity_labels l "
        "WHERE l.entity = served.entity AND l.day = served.day)",
        (first,),
    )
    return {
        (v, d)
        for v, d in con.execute(
            "SELECT DISTINCT version, day FROM served NOT INDEXED WHERE rowid >= ? AND "
            "(COALESCE(id_label, entity_label) IS NOT NULL OR request_id IN "
            "(SELECT request_id FROM business))",
            (first,),
        )
    }


def count_days(con: sqlite3.Connection, groups: dict[Day, np.ndarray]) -> None:
    """Add the new rows of each (version, day) to its row count."""
    con.executemany(
        "INSERT INTO days VALUES (?, ?, ?, 0, ?, ?, '{}') ON CONFLICT (version, day) "
        "DO UPDATE SET rows = rows + excluded.rows",
        [(v, d, len(i), _EMPTY_STATS, _EMPTY_SCORES) for (v, d), i in groups.items()],
    )


def label_by_id(con: sqlite3.Connection, by_id: pd.DataFrame) -> set[Day]:
    """Store labels sent by request id (columns rid, value); the (version, day)s judged."""
    pairs = list(zip(by_id["rid"].tolist(), by_id["value"].tolist(), strict=True))
    if not pairs:
        return set()
    con.executemany("INSERT OR REPLACE INTO id_labels VALUES (?, ?)", pairs)
    touched = _touch(
        con, pairs, "request_id TEXT PRIMARY KEY, value REAL", "s.request_id = n.request_id"
    )
    con.execute(
        "UPDATE served SET id_label = (SELECT value FROM temp.new n "
        "WHERE n.request_id = served.request_id) WHERE rowid IN "
        "(SELECT s.rowid FROM temp.new n CROSS JOIN served s "
        "ON s.request_id = n.request_id)"
    )
    con.execute("DROP TABLE temp.new")
    return touched


def label_by_entity(con: sqlite3.Connection, labels: list[tuple[str, str, float]]) -> set[Day]:
    """Store labels sent by entity and date; the (version, day)s judged."""
    if not labels:
        return set()
    con.executemany("INSERT OR REPLACE INTO entity_labels VALUES (?, ?, ?)", labels)
    touched = _touch(
        con,
        labels,
        "entity TEXT, day TEXT, value REAL, PRIMARY KEY (entity, day)",
        "s.entity = n.entity AND s.day = n.day",
    )
    con.execute(
        "UPDATE served SET entity_label = (SELECT value FROM temp.new n "
        "WHERE n.entity = served.entity AND n.day = served.day) WHERE rowid IN "
        "(SELECT s.rowid FROM temp.new n CROSS JOIN served s "
        "ON s.entity = n.entity AND s.day = n.day)"
    )
    con.execute("DROP TABLE temp.new")
    return touched


def insert_business(con: sqlite3.Connection, rows: list[tuple[str, str, float]]) -> set[Day]:
    """Store business outcomes (request id, name, value); the (version, day)s judged."""
    con.executemany("INSERT INTO business VALUES (?, ?, ?)", rows)
    return _touch(con, [(r[0],) for r in rows], "request_id TEXT", "s.request_id = n.request_id")


def entity_labels(labels: pd.DataFrame, keys: Sequence[str]) -> list[tuple[str, str, float]]:
    """(entity, day, value) of labels sent by entity and date, the last of each."""
    if labels.empty or not keys or "date" not in labels.columns:
        return []
    entity = entity_strings(labels, keys)
    keep = entity.notna() & labels["date"].notna()
    if not keep.any():
        return []
    frame = pd.DataFrame(
        {
            "entity": entity[keep],
            "day": event_days(labels.loc[keep, "date"]),
            "value": labels.loc[keep, "value"].astype("float64"),
        }
    ).drop_duplicates(["entity", "day"], keep="last")
    return list(frame.itertuples(index=False, name=None))


def refresh(con: sqlite3.Connection, days: Iterable[Day]) -> None:
    """Recompute the label aggregates of (version, day)s from the served index (their row
    counts are ``count_days``')."""
    for version, day in days:
        rows = con.execute(
            "SELECT prediction, COALESCE(id_label, entity_label) FROM served "
            "WHERE day = ? AND version = ? AND COALESCE(id_label, entity_label) IS NOT NULL "
            "ORDER BY rowid",
            (day, version),
        ).fetchall()
        values = np.asarray(rows, dtype="float64").reshape(-1, 2)
        stats = accuracy_stats(values[:, 1], values[:, 0])
        scores = ScoreHistogram.of(values[:, 1], values[:, 0])
        business = {
            name: [count, total]
            for name, count, total in con.execute(
                "SELECT name, COUNT(*), SUM(value) FROM business WHERE request_id IN "
                "(SELECT request_id FROM served WHERE day = ? AND version = ?) GROUP BY name",
                (day, version),
            )
        }
        con.execute(
            "INSERT INTO days VALUES (?, ?, 0, ?, ?, ?, ?) ON CONFLICT (version, day) DO UPDATE "
            "SET labeled = excluded.labeled, stats = excluded.stats, auc = excluded.auc, "
            "business = excluded.business",
            (
                version,
                day,
                stats.labeled,
                json.dumps(stats.__dict__),
                scores.to_json(),
                json.dumps(business),
            ),
        )


def prune_served(con: sqlite3.Connection, before: str) -> None:
    """Forget the served predictions of days before ``before`` (ISO), with the labels and
    business outcomes joined to them: their days' aggregates are final."""
    old = "SELECT request_id FROM served WHERE day < ?"
    con.execute(f"DELETE FROM id_labels WHERE request_id IN ({old})", (before,))
    con.execute(f"DELETE FROM business WHERE request_id IN ({old})", (before,))
    con.execute("DELETE FROM entity_labels WHERE day < ?", (before,))
    con.execute("DELETE FROM served WHERE day < ?", (before,))


def _touch(
    con: sqlite3.Connection, rows: Sequence[tuple[object, ...]], columns: str, join: str
) -> set[Day]:
    """Load ``rows`` into the table temp.new (``columns``); the (version, day)s of the
    served predictions they join (``join`` on s = served, n = new)."""
    con.execute("DROP TABLE IF EXISTS temp.new")
    con.execute(f"CREATE TEMP TABLE new ({columns})")
    marks = ", ".join("?" * len(rows[0]))
    con.executemany(f"INSERT OR REPLACE INTO temp.new VALUES ({marks})", rows)
    found = con.execute(
        f"SELECT DISTINCT s.version, s.day FROM temp.new n CROSS JOIN served s ON {join}"
    ).fetchall()
    return {(v, d) for v, d in found}


def _texts(values: pd.Series | None, n: int) -> list[str | None]:
    if values is None:
        return [None] * n
    return [None if v is pd.NA else str(v) for v in values.tolist()]
