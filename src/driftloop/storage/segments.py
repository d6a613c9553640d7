"""Append-only logs as Parquet segments: buffered in memory, flushed on an interval.

A segment is written to a temporary name and renamed, so a reader (DuckDB) sees whole
segments only. Rows acknowledged before a graceful stop are all flushed; a crash loses
at most the rows of one flush interval.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.clock import Clock, WallClock
from driftloop.errors import DataError
from driftloop.faults import crash_point
from driftloop.storage.quarantine import damaged_parquet, quarantine_file

__all__ = ["SEGMENT_GLOB", "SegmentLog", "read_segment_files", "read_segments", "records_frame"]

SEGMENT_GLOB = "part-*.parquet"  # a segment's file name in its day folder


def records_frame(items: Sequence[Any]) -> pd.DataFrame:
    """The default encoder: items are row dicts."""
    return pd.DataFrame.from_records(list(items))


class SegmentLog:
    """A buffered writer of items into ``folder/<day>/part-*.parquet``.

    Items are whatever the owner appends (row dicts by default); ``encode`` turns a
    flush's items into one frame, off the request path; ``after_write`` sees each segment
    once it is in place.
    """

    def __init__(
        self,
        folder: Path,
        flush_interval_s: float,
        flush_rows: int,
        clock: Clock | None = None,
        encode: Callable[[Sequence[Any]], pd.DataFrame] = records_frame,
        rows_of: Callable[[Any], int] = lambda _item: 1,
        after_write: Callable[[Path, pd.DataFrame], None] | None = None,
    ) -> None:
        self.folder = folder
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self.clock = clock or WallClock()
        self.encode = encode
        self.rows_of = rows_of
        self.after_write = after_write  # e.g. fold the segment into monitoring aggregates
        self._pending_rows = 0
        self._rows: list[Any] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = itertools.count()
        self.rows_written = 0
        self.last_error: str | None = None

    def append(self, items: Iterable[Any]) -> None:
        """Buffer items; a full buffer wakes the flusher."""
        items = list(items)
        count = sum(self.rows_of(item) for item in items)
        with self._lock:
            self._rows.extend(items)
            self._pending_rows += count
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()

    def append_one(self, item: Any, rows: int) -> None:
        """Buffer one item of ``rows`` rows (a server's request: no list built per call)."""
        with self._lock:
            self._rows.append(item)
            self._pending_rows += rows
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written."""
        with self._lock:
            return self._pending_rows

    def buffered(self) -> list[Any]:
        """A copy of the items not written yet."""
        with self._lock:
            return list(self._rows)

    def flush(self) -> int:
        """Write the buffered items as one segment; returns how many rows were written."""
        with self._write_lock:
            with self._lock:
                items, self._rows = self._rows, []
                count, self._pending_rows = self._pending_rows, 0
            if not items:
                return 0
            try:
                self._write(self.encode(items))
            except BaseException:
                with self._lock:  # keep them for the next attempt, in order
                    self._rows[:0] = items
                    self._pending_rows += count
                raise
            self.rows_written += count
            return count

    def _write(self, frame: pd.DataFrame) -> None:
        now = self.clock.now()
        day_dir = self.folder / now.strftime("%Y-%m-%d")
        day_dir.mkdir(parents=True, exist_ok=True)
        name = f"part-{now:%H%M%S%f}-{os.getpid()}-{next(self._seq):06d}.parquet"
        tmp = day_dir / f".{name}.tmp"
        frame.to_parquet(tmp, index=False)
        crash_point("log.segment_written")
        os.replace(tmp, day_dir / name)
        if self.after_write is not None:
            self.after_write(day_dir / name, frame)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self.flush()
                self.last_error = None
            except Exception as exc:  # disk full, permissions: keep serving, retry later
                self.last_error = f"{type(exc).__name__}: {exc}"

    def start(self) -> None:
        """Start flushing in the background."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="segment-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the flusher and write everything still buffered."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()


def read_segments(
    folder: Path, where: str = "", columns: Sequence[str] | None = None, from_day: str = ""
) -> pd.DataFrame:
    """All segments under ``folder`` as one frame (DuckDB; columns united by name), or only
    ``columns`` of them (Parquet reads only those); with ``from_day`` (``YYYY-MM-DD``) only
    the segments of day folders from that day on (written that day or later).

    A segment that cannot be read (overwritten, cut short, unreadable) is moved to the
    quarantine folder with a record of why (:mod:`driftloop.storage.quarantine`) and the frame
    comes from the others; a query that fails with every segment readable raises
    ``DataError`` naming the folder."""
    if not folder.is_dir():
        files: list[Path] = []
    elif from_day:  # only the day folders from that day on are listed
        days = sorted(d for d in folder.iterdir() if d.is_dir() and d.name >= from_day)
        files = [f for d in days for f in sorted(d.glob(SEGMENT_GLOB))]
    else:
        files = sorted(folder.glob(f"*/{SEGMENT_GLOB}"))
    if not files:
        return pd.DataFrame()
    return _read(
        folder, files, files if from_day else str(folder / "*" / SEGMENT_GLOB), where, columns
    )


def read_segment_files(
    folder: Path, files: list[Path], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """``files`` (segments of ``folder``) as :func:`read_segments` reads them: one frame,
    columns united by name, a segment that cannot be read quarantined."""
    return _read(folder, files, files, "", columns) if files else pd.DataFrame()


def _read(
    folder: Path,
    files: list[Path],
    pattern: str | list[Path],
    where: str,
    columns: Sequence[str] | None,
) -> pd.DataFrame:
    import duckdb

    selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        try:
            frame = _query(con, pattern, selected, where)
        except duckdb.Error as exc:
            frame = _read_around_damage(con, folder, files, selected, where, exc)
    for column in frame.columns:  # timestamps come back as UTC, always tz-aware
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            values = frame[column]
            frame[column] = (
                values.dt.tz_localize("UTC")
                if values.dt.tz is None
                else values.dt.tz_convert("UTC")
            )
    return frame


def _literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _query(con: Any, files: str | list[Path], selected: str, where: str) -> pd.DataFrame:
    source = (
        _literal(files)
        if isinstance(files, str)
        else ("[" + ", ".join(_literal(f) for f in files) + "]")
    )
    query = f"SELECT {selected} FROM read_parquet({source}, union_by_name = true)"
    if where:
        query += f" WHERE {where}"
    frame: pd.DataFrame = con.execute(query).df()
    return frame


def _unreadable(con: Any, path: Path) -> str | None:
    """Why DuckDB cannot read all of one segment (every column, every row), or None."""
    import duckdb

    reason = damaged_parquet(path)
    if reason is not None:
        return reason
    try:
        con.sql(f"SELECT * FROM read_parquet({_literal(path)})").to_arrow_table()
    except duckdb.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _read_around_damage(
    con: Any, folder: Path, files: list[Path], selected: str, where: str, error: Exception
) -> pd.DataFrame:
    """The query again without the segments that cannot be read, once they are moved
    aside; ``DataError`` if every segment reads and the query still fails."""
    import duckdb

    remaining = []
    damaged = 0
    for path in files:
        if not path.exists():  # moved meanwhile (another reader quarantined it)
            continue
        reason = _unreadable(con, path)
        if reason is None:
            remaining.append(path)
            continue
        quarantine_file(path, reason, folder.parent)
        damaged += 1
    if not damaged and len(remaining) == len(files):
        raise DataError(
            f"the segments in {folder} cannot be queried ({error}); every segment reads on "
            "its own: check the query's columns and the segments' column types"
        ) from error
    if not remaining:
        return pd.DataFrame()
    try:
        return _query(con, remaining, selected, where)
    except duckdb.Error as exc:
        raise DataError(f"the segments in {folder} cannot be queried ({exc})") from exc
