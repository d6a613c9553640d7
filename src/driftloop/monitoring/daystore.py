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

By concern: ``dayledger`` (the SQLite file, its transactions, the folded ledger),
``dayfold`` (the fold's SQL), ``daywindow`` (a window's merge); this module the entry points.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.monitoring.dayfold import (
    add_counts,
    count_days,
    entity_labels,
    insert_business,
    insert_served,
    label_by_entity,
    label_by_id,
    prune_served,
    refresh,
)
from driftloop.monitoring.dayledger import STORE_FILE, DayLedger
from driftloop.monitoring.daywindow import ProfileSource, WindowCounts, merge_window
from driftloop.monitoring.predlog import (
    FEEDBACK,
    PREDICTIONS,
    entity_strings,
    event_days,
    feedback_dir,
    predictions_dir,
    read_segment,
    segment_files,
)

__all__ = ["STORE_FILE", "DayStore", "ProfileSource", "WindowCounts"]


class DayStore(DayLedger):
    """The per-day aggregates of one project, in ``state_dir / STORE_FILE``."""

    def __init__(
        self, state_dir: Path, keys: Sequence[str] = (), keep_days: int | None = None
    ) -> None:
        self.keys = tuple(keys)
        # Served predictions are kept for labels this many days after the day of the log
        # segment folded last (None: for ever); older days keep only their aggregates.
        self.keep_days = keep_days
        super().__init__(state_dir)

    # -- folding ------------------------------------------------------------------------
    def sync(self, profiles: ProfileSource) -> int:
        """Fold every log segment not folded yet; returns how many were folded. A store whose
        oldest folded day folder is gone from the logs (logs removed, or the store copied
        without them) is rebuilt."""
        logs = (
            (PREDICTIONS, predictions_dir(self.state_dir)),
            (FEEDBACK, feedback_dir(self.state_dir)),
        )
        with self._connect() as con:
            for log, folder in logs:
                oldest = con.execute(
                    "SELECT MIN(dir) FROM folded WHERE log = ?", (log,)
                ).fetchone()[0]
                if oldest is not None and not (folder / oldest).is_dir():
                    self._clear(con)
                    break
        # Both logs in the order they were written (day folder, then time-stamped name), so
        # a rebuild meets each label before the served predictions it judges are let go.
        pending: list[tuple[str, str, str, Path]] = []
        for log, folder in logs:
            with self._connect() as con:
                newest = (
                    con.execute("SELECT MAX(dir) FROM folded WHERE log = ?", (log,)).fetchone()[0]
                    or ""
                )
                seen = set(
                    con.execute(
                        "SELECT dir, name FROM folded WHERE log = ? AND dir >= ?", (log, newest)
                    ).fetchall()
                )
            for path in segment_files(folder, newest):
                if (path.parent.name, path.name) not in seen:
                    pending.append((path.parent.name, path.name, log, path))
        folded = 0
        for day_dir, name, log, path in sorted(pending):
            frame = read_segment(path)
            if frame is None:
                continue
            if log == PREDICTIONS:
                self.fold_predictions(frame, profiles, (day_dir, name))
            else:
                self.fold_feedback(frame, (day_dir, name))
            folded += 1
        return folded

    def rebuild(self, profiles: ProfileSource) -> int:
        """Forget everything and fold the whole logs again."""
        with self._connect() as con:
            self._clear(con)
        return self.sync(profiles)

    def fold_predictions(
        self,
        frame: pd.DataFrame,
        profiles: ProfileSource,
        segment: tuple[str, str] | None = None,
    ) -> None:
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
                add_counts(con, version, day, frame.iloc[index], profiles(version))
            count_days(con, groups)
            kept = self._served_from(con, segment, str(days.max()))
            if kept:  # a day before it is not indexed: no label can judge it any more
                recent = days >= kept
                if not recent.all():
                    frame, versions, days = frame[recent], versions[recent], days[recent]
                    request_ids = None if request_ids is None else request_ids[recent]
                    entity = entity[recent]
            # Only days whose new rows found a label (or a business outcome) that came first
            # need their label sums recomputed; the others only count more rows.
            judged = insert_served(con, frame, versions, days, request_ids, entity)
            refresh(con, sorted(judged))
            self._mark_in(con, segment, PREDICTIONS, len(frame))

    def _served_from(
        self, con: sqlite3.Connection, segment: tuple[str, str] | None, newest: str = ""
    ) -> str:
        """The first day (ISO) whose served predictions are kept, '' for all. It moves on
        with the newest event day folded (``newest``), capped by the day folder of the
        segment (the server's clock: an ``event_time`` in the future moves nothing), and
        moving it forgets the days before it (``prune_served``)."""
        if self.keep_days is None:
            return ""
        found = con.execute("SELECT value FROM meta WHERE key = 'served_from'").fetchone()
        kept = found[0] if found is not None else ""
        try:
            written = date.fromisoformat(segment[0]) if segment is not None else None
            latest = min(date.fromisoformat(newest), written) if written and newest else None
        except ValueError:  # not a day folder: nothing to go by
            latest = None
        if latest is not None:
            start = (latest - timedelta(days=self.keep_days)).isoformat()
            if start > kept:
                prune_served(con, start)
                con.execute("INSERT OR REPLACE INTO meta VALUES ('served_from', ?)", (start,))
                kept = start
        return kept

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
        by_id = pd.DataFrame(
            {
                "rid": rid[labels.index] if rid is not None else [],
                "value": labels["value"].astype("float64"),
            }
        )
        by_id = by_id.drop_duplicates("rid", keep="last")
        by_entity = entity_labels(frame[(frame["kind"] == "label") & ~has_id], self.keys)
        business = frame[(frame["kind"] == "business") & has_id]
        with self._connect() as con:
            if segment is not None and self._seen(con, FEEDBACK, segment):
                return
            touched = label_by_id(con, by_id)
            kept = self._served_from(con, None)  # older days' entity labels judge nothing
            touched |= label_by_entity(con, [e for e in by_entity if e[1] >= kept])
            if not business.empty and rid is not None:
                values = business["value"].astype("float64").tolist()
                rows = list(
                    zip(
                        rid[business.index].tolist(),
                        business["name"].astype(str),
                        values,
                        strict=True,
                    )
                )
                touched |= insert_business(con, rows)
            refresh(con, sorted(touched))
            self._mark_in(con, segment, FEEDBACK, len(frame))

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
            counts = con.execute(
                "SELECT version, col, bins, missing FROM counts WHERE day >= ? AND day < ?", bounds
            ).fetchall()
            labels = con.execute(
                "SELECT version, stats, auc, business FROM days WHERE day >= ? AND day < ?", bounds
            ).fetchall()
        return merge_window(counts, labels, profiles)

    def day_totals(self, start: date, end: date) -> list[tuple[date, int, int, int]]:
        """(day, rows, labelled rows, labelled positives) over all versions of every stored
        day in [start, end), newest first."""
        with self._connect() as con:
            found = con.execute(
                "SELECT day, SUM(rows), SUM(labeled), "
                "SUM(CAST(json_extract(stats, '$.positives') AS INTEGER)) FROM days "
                "WHERE day >= ? AND day < ? GROUP BY day ORDER BY day DESC",
                (start.isoformat(), end.isoformat()),
            ).fetchall()
        return [(date.fromisoformat(d), int(r), int(n), int(p)) for d, r, n, p in found]
