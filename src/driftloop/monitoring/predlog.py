"""The prediction log and the feedback log: their folders, column names and reads.

The server appends both as Parquet segments (``driftloop.segments``) under the project's
state folder: ``predictions/<day>/part-*.parquet`` (one row per served prediction, the
model's inputs as ``f__<feature>`` columns) and ``feedback/<day>/part-*.parquet`` (labels
and business outcomes). Every reader goes through this module, so the schema has one owner;
``driftloop.segments.read_segments`` stays the one low-level reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from driftloop.segments import read_segments

__all__ = [
    "FEATURE_PREFIX",
    "FEEDBACK",
    "PREDICTIONS",
    "feature_column",
    "feature_names",
    "feedback_dir",
    "has_predictions",
    "predictions_dir",
    "read_feedback",
    "read_predictions",
    "segment_count",
    "segment_files",
]

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
FEATURE_PREFIX = "f__"  # a model input logged beside its prediction: f__<feature name>
SEGMENT_GLOB = "part-*.parquet"


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
    state_dir: Path, where: str = "", columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The prediction log (rows matching ``where``, only ``columns`` if given)."""
    return read_segments(predictions_dir(state_dir), where, columns)


def read_feedback(
    state_dir: Path, where: str = "", columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The feedback log (rows matching ``where``, only ``columns`` if given)."""
    return read_segments(feedback_dir(state_dir), where, columns)


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
