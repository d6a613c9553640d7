"""The prediction log and the feedback log: their folders, column names and reads.

The server appends both as Parquet segments (``driftloop.storage.segments``) under the project's
state folder: ``predictions/<day>/part-*.parquet`` (one row per served prediction, the
model's inputs as ``f__<feature>`` columns) and ``feedback/<day>/part-*.parquet`` (labels
and business outcomes). Every reader goes through this module, so the schema has one owner;
``driftloop.storage.segments.read_segments`` stays the one low-level reader.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.storage.quarantine import read_or_quarantine
from driftloop.storage.segments import SEGMENT_GLOB, read_segments

__all__ = [
    "FEATURE_PREFIX",
    "FEEDBACK",
    "PREDICTIONS",
    "entity_strings",
    "event_days",
    "feature_column",
    "feature_names",
    "feedback_dir",
    "has_predictions",
    "logged_request_ids",
    "predictions_dir",
    "read_feedback",
    "read_predictions",
    "read_segment",
    "segment_count",
    "segment_files",
]

logger = logging.getLogger("driftloop.monitoring")
PREDICTIONS = "predictions"
FEEDBACK = "feedback"
FEATURE_PREFIX = "f__"  # a model input logged beside its prediction: f__<feature name>


def predictions_dir(state_dir: Path) -> Path:
    """The folder of the prediction log."""
    return state_dir / PREDICTIONS


def feedback_dir(state_dir: Path) -> Path:
    """The folder of the feedback log (labels, business outcomes)."""
    return state_dir / FEEDBACK


def feature_column(name: str) -> str:
    """The log column holding model input ``name``."""
    return FEATURE_PREFIX + name


def feature_names(columns: Iterable[str]) -> list[str]:
    """The model inputs among a log frame's columns, without the prefix."""
    return [c[len(FEATURE_PREFIX) :] for c in columns if c.startswith(FEATURE_PREFIX)]


def read_predictions(
    state_dir: Path, where: str = "", columns: Sequence[str] | None = None, from_day: str = ""
) -> pd.DataFrame:
    """The prediction log (rows matching ``where``, only ``columns`` if given; with
    ``from_day``, ``YYYY-MM-DD``, only the segments written from that day on)."""
    return read_segments(predictions_dir(state_dir), where, columns, from_day)


def read_feedback(
    state_dir: Path, where: str = "", columns: Sequence[str] | None = None, from_day: str = ""
) -> pd.DataFrame:
    """The feedback log (as :func:`read_predictions` reads the prediction log)."""
    return read_segments(feedback_dir(state_dir), where, columns, from_day)


def logged_request_ids(state_dir: Path, wanted: set[str], days: Sequence[date]) -> set[str]:
    """Which of ``wanted`` the prediction log's segments written on ``days`` hold (DuckDB
    reads the ``request_id`` column only); a damaged segment answers none (the monitor
    quarantines it)."""
    import duckdb

    folder = predictions_dir(state_dir)
    files = [str(p) for d in days for p in sorted((folder / f"{d:%Y-%m-%d}").glob(SEGMENT_GLOB))]
    if not files or not wanted:
        return set()
    try:
        with duckdb.connect() as con:
            rows = con.execute(
                "SELECT DISTINCT request_id FROM read_parquet(?, union_by_name = true) "
                "WHERE request_id IN (SELECT unnest(?))",
                [files, sorted(wanted)],
            ).fetchall()
    except duckdb.Error:
        return set()
    return {str(r[0]) for r in rows}


def segment_files(folder: Path, from_day: str = "") -> list[Path]:
    """The segments of one log, oldest day folder first; only day folders >= ``from_day``."""
    if not folder.is_dir():
        return []
    days = sorted(p for p in folder.iterdir() if p.is_dir() and p.name >= from_day)
    return [f for day in days for f in sorted(day.glob(SEGMENT_GLOB))]


def segment_count(folder: Path) -> int:
    """How many segments a log holds."""
    return sum(1 for _ in folder.rglob(SEGMENT_GLOB)) if folder.is_dir() else 0


def has_predictions(state_dir: Path) -> bool:
    """Whether the server has logged any predictions."""
    folder = predictions_dir(state_dir)
    return folder.is_dir() and any(folder.rglob(SEGMENT_GLOB))


def entity_strings(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """One text key per row from the entity columns (3 and 3.0 alike), NA if any is missing."""
    present = [k for k in keys if k in frame.columns]
    if not present or len(present) < len(keys) or frame.empty:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    # Joined as object arrays and made text once: joining text Series cost the log
    # flusher's fold about 1 us a row.
    texts, missing = _key_texts(frame[present[0]])
    for key in present[1:]:
        part, gone = _key_texts(frame[key])
        texts, missing = texts + "\x1f" + part, missing | gone
    if missing.all():
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    texts[missing] = None
    return pd.Series(pd.array(texts, dtype="string"), index=frame.index)


def _key_texts(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """One entity key column as text (an object array) and where it is missing. Integer
    columns are written by NumPy, as ``_key_column`` writes them (below 2**53)."""
    if pd.api.types.is_integer_dtype(column.dtype):
        missing = column.isna().to_numpy(dtype=bool)
        ints = column.to_numpy(dtype="int64", na_value=0)
        if bool(((ints < _EXACT) & (ints > -_EXACT)).all()):
            return ints.astype(str).astype(object), missing
    text = _key_column(column)
    return text.to_numpy(dtype=object, na_value=""), text.isna().to_numpy(dtype=bool)


_EXACT = 2**53  # integers a float64 holds exactly (the Float64 path below goes through it)


def _key_column(column: pd.Series) -> pd.Series:
    """One entity key column as text; whole numbers without a decimal point (3.0 -> "3")."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = pd.to_numeric(column).astype("Float64")
        if bool(((values % 1 == 0) | values.isna()).all()):
            return values.astype("Int64").astype("string")
    return column.map(_key_text).astype("string")


def _key_text(value: object) -> str | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def event_days(stamps: pd.Series) -> np.ndarray:
    """ISO event days (UTC) of a timestamp column, one per row."""
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # a log's column: no parsing
        days = stamps.dt.tz_convert("UTC").dt.normalize()
    else:
        days = pd.to_datetime(stamps, utc=True).dt.normalize()
    codes, uniques = pd.factorize(days)
    names = np.array([d.strftime("%Y-%m-%d") for d in uniques], dtype=object)
    return names[codes]


def read_segment(path: Path) -> pd.DataFrame | None:
    """One segment, timestamps as UTC; None when it cannot be read: the damaged file is
    then moved to the quarantine with a record of why (monitoring goes on without it)."""
    frame = read_or_quarantine(path, pd.read_parquet)
    if frame is None:
        logger.warning("quarantined unreadable log segment %s", path)
        return None
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            values = frame[column]
            frame[column] = (
                values.dt.tz_localize("UTC")
                if values.dt.tz is None
                else values.dt.tz_convert("UTC")
            )
    return frame
