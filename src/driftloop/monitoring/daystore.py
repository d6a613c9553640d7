"""Per-version, per-event-day monitoring aggregates, folded as the logs grow.

For each (version, event day) the store holds the counts of every feature and of the
prediction in the version's reference-profile bins, and the label aggregates of the day's
predictions (the sums of ``AccuracyStats``, per-class score histograms for ROC AUC, business
outcomes). A window is a merge of stored days, so judging it costs the same on day 700 as
on day 7.

It is one SQLite file beside the logs (``.driftloop/monitor_days.db``): a day's label
aggregates change when a late label arrives, and several processes fold (the server's log
flusher, ``driftloop monitor``, the loop), so it needs in-place updates under a transaction
rather than append-only Parquet. Folding is exactly once: each log segment is folded in the
same transaction that records its name. A slim index of served predictions (request id,
version, day, prediction, entity, label) lets a label arriving weeks later be folded into the
day of the prediction it judges, by request id or by entity and date, as ``join_labels`` does;
the day's label aggregates are then recomputed from that index (exact, not a running
difference). The store is derived: ``rebuild`` makes it again from the logs, and any segment
it has not seen is folded before a read (``sync``), so a project from before the store works.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.monitoring.assess import AccuracyStats
from driftloop.monitoring.labels import ScoreHistogram, accuracy_arrays
from driftloop.monitoring.predlog import (
    FEEDBACK,
    PREDICTIONS,
    entity_strings,
    event_days,
    feature_column,
    feedback_dir,
    predictions_dir,
    read_segment,
    segment_files,
)
from driftloop.monitoring.profile import ReferenceProfile, bin_counts
from driftloop.monitoring.sketch import BinnedSketch

__all__ = ["STORE_FILE", "DayStore", "ProfileSource", "WindowCounts"]

STORE_FILE = "monitor_days.db"
STORE_FORMAT = "1"
PREDICTION = ""  # the column name under which the prediction's counts are stored
ProfileSource = Callable[[str], ReferenceProfile]
_EMPTY_STATS = json.dumps(AccuracyStats().__dict__)
_EMPTY_SCORES = ScoreHistogram().to_json()

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
CREATE INDEX IF NOT EXISTS served_entity ON served (entity, day);
CREATE INDEX IF NOT EXISTS served_day ON served (version, day);
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


@dataclass
class WindowCounts:
    """One version's merged days: what ``assess_version`` and the business table need."""

    features: dict[str, BinnedSketch]
    prediction: BinnedSketch
    accuracy: AccuracyStats = field(default_factory=AccuracyStats)
    scores: ScoreHistogram = field(default_factory=ScoreHistogram)
    business: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> count, sum

    @property
    def rows(self) -> int:
        return self.prediction.total


class DayStore:
    """The per-day aggregates of one project, in ``state_dir / STORE_FILE``."""

    def __init__(self, state_dir: Path, keys: Sequence[str] = ()) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STORE_FILE
        self.keys = tuple(keys)
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
                self._con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None,
                                            check_same_thread=False)  # fmt: skip
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
        for table in ("folded", "counts", "served", "id_labels", "entity_labels", "business",
                      "days"):  # fmt: skip
            con.execute(f"DELETE FROM {table}")

    # -- folding ------------------------------------------------------------------------
    def sync(self, profiles: ProfileSource) -> int:
        """Fold every log segment not folded yet; returns how many were folded. A store whose
        oldest folded day folder is gone from the logs (logs removed, or the store copied
        without them) is rebuilt."""
        logs = ((PREDICTIONS, predictions_dir(self.state_dir)),
                (FEEDBACK, feedback_dir(self.state_dir)))  # fmt: skip
        with self._connect() as con:
            for log, folder in logs:
                oldest = con.execute("SELECT MIN(dir) FROM folded WHERE log = ?",
                                     (log,)).fetchone()[0]  # fmt: skip
                if oldest is not None and not (folder / oldest).is_dir():
                    self._clear(con)
                    break
        folded = 0
        for log, folder in logs:
            with self._connect() as con:
                newest = con.execute("SELECT MAX(dir) FROM folded WHERE log = ?",
                                     (log,)).fetchone()[0] or ""  # fmt: skip
                seen = set(con.execute("SELECT dir, name FROM folded WHERE log = ? AND dir >= ?",
                                       (log, newest)).fetchall())  # fmt: skip
            for path in segment_files(folder, newest):
                if (path.parent.name, path.name) in seen:
                    continue
                frame = read_segment(path)
                if frame is None:
                    continue
                if log == PREDICTIONS:
                    self.fold_predictions(frame, profiles, (path.parent.name, path.name))
                else:
                    self.fold_feedback(frame, (path.parent.name, path.name))
                folded += 1
        return folded

    def rebuild(self, profiles: ProfileSource) -> int:
        """Forget everything and fold the whole logs again."""
        with self._connect() as con:
            self._clear(con)
        return self.sync(profiles)

    def fold_predictions(
        self, frame: pd.DataFrame, profiles: ProfileSource,
        segment: tuple[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Count a batch of prediction-log rows into their (version, event day)."""
        if frame.empty:
            self._mark(segment, PREDICTIONS, 0)
            return
        days = event_days(frame["event_time"])
        versions = frame["version"].astype(str).to_numpy(dtype=object)
        keys = pd.Series(versions + "\x1f" + days)
        groups: dict[tuple[str, str], np.ndarray] = {}
        for key, index in keys.groupby(keys, sort=True).indices.items():
            version, day = str(key).split("\x1f")
            groups[(version, day)] = np.asarray(index)
        entity = entity_strings(frame, self.keys)
        request_ids = frame["request_id"].astype("string") if "request_id" in frame else None
        with self._connect() as con:
            if segment is not None and self._seen(con, PREDICTIONS, segment):
                return
            for (version, day), index in groups.items():
                self._add_counts(con, version, day, frame.iloc[index], profiles(version))
            first = con.execute("SELECT COALESCE(MAX(rowid), 0) + 1 FROM served").fetchone()[0]
            con.executemany(
                "INSERT INTO served (request_id, version, day, prediction, entity) "
                "VALUES (?, ?, ?, ?, ?)",
                zip(_texts(request_ids, len(frame)), versions.tolist(), days.tolist(),
                    frame["prediction"].astype("float64").tolist(), _texts(entity, len(frame)),
                    strict=True),
            )  # fmt: skip
            con.execute(
                "UPDATE served NOT INDEXED SET id_label = (SELECT value FROM id_labels l "
                "WHERE l.request_id = served.request_id) WHERE rowid >= ? AND request_id IN "
                "(SELECT request_id FROM id_labels)", (first,),
            )  # fmt: skip
            con.execute(
                "UPDATE served NOT INDEXED SET entity_label = (SELECT value FROM entity_labels l "
                "WHERE l.entity = served.entity AND l.day = served.day) WHERE rowid >= ? "
                "AND entity IS NOT NULL", (first,),
            )  # fmt: skip
            # Only days whose new rows found a label (or a business outcome) that came first
            # need their label sums recomputed; the others only count more rows.
            judged = {(v, d) for v, d in con.execute(
                "SELECT DISTINCT version, day FROM served NOT INDEXED WHERE rowid >= ? AND "
                "(COALESCE(id_label, entity_label) IS NOT NULL OR request_id IN "
                "(SELECT request_id FROM business))", (first,))}  # fmt: skip
            con.executemany(
                "INSERT INTO days VALUES (?, ?, ?, 0, ?, ?, '{}') ON CONFLICT (version, day) "
                "DO UPDATE SET rows = rows + excluded.rows",
                [(v, d, len(i), _EMPTY_STATS, _EMPTY_SCORES) for (v, d), i in groups.items()
                 if (v, d) not in judged],
            )  # fmt: skip
            self._refresh(con, sorted(judged))
            self._mark_in(con, segment, PREDICTIONS, len(frame))

    def fold_feedback(self, frame: pd.DataFrame, segment: tuple[str, str] | None = None) -> None:
        """Fold labels and business outcomes into the days of the predictions they judge."""
        if frame.empty or "kind" not in frame.columns:
            self._mark(segment, FEEDBACK, len(frame))
            return
        if "received_at" in frame.columns:
            frame = frame.sort_values("received_at", kind="stable")
        rid = frame["request_id"].astype("string") if "request_id" in frame else None
        has_id = rid.notna() if rid is not None else pd.Series(False, index=frame.index)
        labels = frame[(frame["kind"] == "label") & has_id]
        by_id = pd.DataFrame({"rid": rid[labels.index] if rid is not None else [],
                              "value": labels["value"].astype("float64")})  # fmt: skip
        by_id = by_id.drop_duplicates("rid", keep="last")
        by_entity = self._entity_labels(frame[(frame["kind"] == "label") & ~has_id])
        business = frame[(frame["kind"] == "business") & has_id]
        with self._connect() as con:
            if segment is not None and self._seen(con, FEEDBACK, segment):
                return
            touched = self._label_by_id(con, by_id)
            touched |= self._label_by_entity(con, by_entity)
            if not business.empty and rid is not None:
                values = business["value"].astype("float64").tolist()
                rows = list(zip(rid[business.index].tolist(), business["name"].astype(str),
                                values, strict=True))  # fmt: skip
                con.executemany("INSERT INTO business VALUES (?, ?, ?)", rows)
                touched |= self._touch(con, [(r[0],) for r in rows], "request_id TEXT",
                                       "s.request_id = n.request_id")  # fmt: skip
            self._refresh(con, sorted(touched))
            self._mark_in(con, segment, FEEDBACK, len(frame))

    def _label_by_id(self, con: sqlite3.Connection, by_id: pd.DataFrame) -> set[tuple[str, str]]:
        pairs = list(zip(by_id["rid"].tolist(), by_id["value"].tolist(), strict=True))
        if not pairs:
            return set()
        con.executemany("INSERT OR REPLACE INTO id_labels VALUES (?, ?)", pairs)
        touched = self._touch(con, pairs, "request_id TEXT PRIMARY KEY, value REAL",
                              "s.request_id = n.request_id")  # fmt: skip
        con.execute("UPDATE served SET id_label = (SELECT value FROM temp.new n "
                    "WHERE n.request_id = served.request_id) WHERE rowid IN "
                    "(SELECT s.rowid FROM temp.new n CROSS JOIN served s "
                    "ON s.request_id = n.request_id)")  # fmt: skip
        con.execute("DROP TABLE temp.new")
        return touched

    def _label_by_entity(
        self, con: sqlite3.Connection, labels: list[tuple[str, str, float]]
    ) -> set[tuple[str, str]]:
        if not labels:
            return set()
        con.executemany("INSERT OR REPLACE INTO entity_labels VALUES (?, ?, ?)", labels)
        touched = self._touch(con, labels, "entity TEXT, day TEXT, value REAL, "
                              "PRIMARY KEY (entity, day)",
                              "s.entity = n.entity AND s.day = n.day")  # fmt: skip
        con.execute("UPDATE served SET entity_label = (SELECT value FROM temp.new n "
                    "WHERE n.entity = served.entity AND n.day = served.day) WHERE rowid IN "
                    "(SELECT s.rowid FROM temp.new n CROSS JOIN served s "
                    "ON s.entity = n.entity AND s.day = n.day)")  # fmt: skip
        con.execute("DROP TABLE temp.new")
        return touched

    def _entity_labels(self, labels: pd.DataFrame) -> list[tuple[str, str, float]]:
        """(entity, day, value) of labels sent by entity and date, the last of each."""
        if labels.empty or not self.keys or "date" not in labels.columns:
            return []
        entity = entity_strings(labels, self.keys)
        keep = entity.notna() & labels["date"].notna()
        if not keep.any():
            return []
        frame = pd.DataFrame({
            "entity": entity[keep], "day": event_days(labels.loc[keep, "date"]),
            "value": labels.loc[keep, "value"].astype("float64"),
        }).drop_duplicates(["entity", "day"], keep="last")  # fmt: skip
        return list(frame.itertuples(index=False, name=None))

    @staticmethod
    def _touch(
        con: sqlite3.Connection, rows: Sequence[tuple[object, ...]], columns: str, join: str
    ) -> set[tuple[str, str]]:
        """Load ``rows`` into the table temp.new (``columns``); the (version, day)s of the
        served predictions they join (``join`` on s = served, n = new)."""
        con.execute("DROP TABLE IF EXISTS temp.new")
        con.execute(f"CREATE TEMP TABLE new ({columns})")
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT OR REPLACE INTO temp.new VALUES ({marks})", rows)
        found = con.execute(f"SELECT DISTINCT s.version, s.day FROM temp.new n "
                            f"CROSS JOIN served s ON {join}").fetchall()  # fmt: skip
        return {(v, d) for v, d in found}

    def _add_counts(
        self, con: sqlite3.Connection, version: str, day: str, rows: pd.DataFrame,
        profile: ReferenceProfile,
    ) -> None:  # fmt: skip
        columns = [(name, c.edges, feature_column(name)) for name, c in profile.features.items()]
        columns.append((PREDICTION, profile.prediction.edges, "prediction"))
        for name, edges, column in columns:
            values = (rows[column].to_numpy("float64") if column in rows.columns
                      else np.full(len(rows), np.nan))  # fmt: skip
            counts, missing = bin_counts(values, edges)
            found = con.execute("SELECT bins, missing FROM counts WHERE version = ? AND day = ? "
                                "AND col = ?", (version, day, name)).fetchone()  # fmt: skip
            if found is not None:
                counts = [a + b for a, b in zip(counts, json.loads(found[0]), strict=True)]
                missing += int(found[1])
            con.execute("INSERT OR REPLACE INTO counts VALUES (?, ?, ?, ?, ?)",
                        (version, day, name, json.dumps(counts), missing))  # fmt: skip

    @staticmethod
    def _refresh(con: sqlite3.Connection, days: Iterable[tuple[str, str]]) -> None:
        """Recompute the label aggregates of (version, day)s from the served index."""
        for version, day in days:
            total = con.execute("SELECT COUNT(*) FROM served WHERE version = ? AND day = ?",
                                (version, day)).fetchone()[0]  # fmt: skip
            rows = con.execute(
                "SELECT prediction, COALESCE(id_label, entity_label) FROM served "
                "WHERE version = ? AND day = ? AND COALESCE(id_label, entity_label) IS NOT NULL "
                "ORDER BY rowid", (version, day),
            ).fetchall()  # fmt: skip
            values = np.asarray(rows, dtype="float64").reshape(-1, 2)
            stats = accuracy_arrays(values[:, 1], values[:, 0])
            scores = ScoreHistogram.of(values[:, 1], values[:, 0])
            business = {name: [count, total] for name, count, total in con.execute(
                "SELECT name, COUNT(*), SUM(value) FROM business WHERE request_id IN "
                "(SELECT request_id FROM served WHERE version = ? AND day = ?) GROUP BY name",
                (version, day))}  # fmt: skip
            con.execute("INSERT OR REPLACE INTO days VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (version, day, total, stats.labeled, json.dumps(stats.__dict__),
                         scores.to_json(), json.dumps(business)))  # fmt: skip

    @staticmethod
    def _seen(con: sqlite3.Connection, log: str, segment: tuple[str, str]) -> bool:
        return con.execute("SELECT 1 FROM folded WHERE log = ? AND dir = ? AND name = ?",
                           (log, *segment)).fetchone() is not None  # fmt: skip

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

    # -- reading ------------------------------------------------------------------------
    def day_range(self) -> tuple[date, date] | None:
        """The first and last event day with predictions, or None when nothing is stored."""
        with self._connect() as con:
            low = con.execute("SELECT MIN(day) FROM days").fetchone()[0]  # two index seeks
            high = con.execute("SELECT MAX(day) FROM days").fetchone()[0]
        if low is None:
            return None
        return date.fromisoformat(low), date.fromisoformat(high)

    def window(self, start: date, end: date, profiles: ProfileSource) -> dict[str, WindowCounts]:
        """Every version's merged days from ``start`` (inclusive) to ``end`` (exclusive)."""
        bounds = (start.isoformat(), end.isoformat())
        with self._connect() as con:
            counts = con.execute("SELECT version, col, bins, missing FROM counts "
                                 "WHERE day >= ? AND day < ?", bounds).fetchall()  # fmt: skip
            labels = con.execute("SELECT version, stats, auc, business FROM days "
                                 "WHERE day >= ? AND day < ?", bounds).fetchall()  # fmt: skip
        summed: dict[tuple[str, str], tuple[np.ndarray, int]] = {}
        for version, col, bins, missing in counts:
            have = summed.get((version, col))
            values = np.asarray(json.loads(bins), dtype=np.int64)
            summed[(version, col)] = ((values, missing) if have is None
                                      else (have[0] + values, have[1] + missing))  # fmt: skip
        out: dict[str, WindowCounts] = {}
        for version in sorted({v for v, _ in summed}):
            profile = profiles(version)
            features = {name: _sketch(c.edges, summed.get((version, name)))
                        for name, c in profile.features.items()}  # fmt: skip
            prediction = _sketch(profile.prediction.edges, summed.get((version, PREDICTION)))
            if prediction.total:
                out[version] = WindowCounts(features, prediction)
        for version, stats, auc, business in labels:
            window = out.get(version)
            if window is None:
                continue
            window.accuracy = window.accuracy + AccuracyStats(**json.loads(stats))
            window.scores = window.scores + ScoreHistogram.from_json(auc)
            for name, (count, total) in json.loads(business).items():
                n, s = window.business.get(name, (0, 0.0))
                window.business[name] = (n + int(count), s + float(total))
        return out

    def day_totals(self, start: date, end: date) -> list[tuple[date, int, int, int]]:
        """(day, rows, labelled rows, labelled positives) over all versions of every stored
        day in [start, end), newest first."""
        with self._connect() as con:
            found = con.execute(
                "SELECT day, SUM(rows), SUM(labeled), "
                "SUM(CAST(json_extract(stats, '$.positives') AS INTEGER)) FROM days "
                "WHERE day >= ? AND day < ? GROUP BY day ORDER BY day DESC",
                (start.isoformat(), end.isoformat()),
            ).fetchall()  # fmt: skip
        return [(date.fromisoformat(d), int(r), int(n), int(p)) for d, r, n, p in found]


def _sketch(edges: Sequence[float], found: tuple[np.ndarray, int] | None) -> BinnedSketch:
    if found is None:
        return BinnedSketch(edges)
    return BinnedSketch.from_counts(edges, found[0], found[1])


def _texts(values: pd.Series | None, n: int) -> list[str | None]:
    if values is None:
        return [None] * n
    return [None if v is pd.NA else str(v) for v in values.tolist()]
