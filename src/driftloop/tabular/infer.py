"""Infer a project's schema from a user's table, and prepare the table as the project stores it.

Rules, applied in this order; the first problem raises one DataError naming the column and
what to do (exit 2):

- Names: ``entity`` (one or more), ``timestamp`` and ``target`` must be columns of the table
  (a missing one is named with close matches and the table's columns) and must differ.
- Size: at least 1,000 rows, and at least ``min_days`` days from the first to the last time.
- Timestamp: datetime columns as they are; text parsed as ISO 8601, else pandas' format guess;
  whole numbers only as epoch seconds or milliseconds between 2000 and 2100. Missing or
  unparsable values are refused with their count and the first one. Times without a time zone
  are taken as UTC (and a check says so).
- Entity: integers (and floats holding only whole numbers) become int64, text stays text;
  missing values, fractions and true/false are refused.
- Target: no missing values. 0/1 or true/false with both values infers classification, other
  numbers regression (say ``task`` to choose). Classification needs 0/1 with both classes;
  text targets are refused with advice to recode; a constant target is refused.
- Mixed types: a column holding both numbers (or numbers written as text) and other text is
  refused, naming both kinds with examples. Text that is all numbers is numbers.
- Features (every other column): numbers and booleans are numeric, unless constant or (whole
  numbers) unique per row, an id; text with at most 50 values is categorical (its categories
  sorted as strings); text unique per row, or with more than 50 values in more than half the
  rows, is an id or free text; other text with more than 50 values, second time columns,
  empty columns and lists are ignored, each with its reason. Numeric whole-number columns
  whose name and range spell a calendar position (``month``, ``hr``, ``doy``, ``weekday``,
  ``is_weekend``...; ``driftloop.monitoring.calendar``) stay features and are listed in
  ``calendar``: ``init`` leaves them out of drift monitoring.
- Keys: (entity..., timestamp) must be unique; a repeat is refused with the count and the first.
- Label delay: if not given, the median gap between an entity's consecutive events rounded up
  to whole days, at least one day.

``checks`` lists what the user should look at: the inferred task, the assumed label delay,
naive timestamps, ignored columns, columns with many missing values, the positive rate, and
numeric columns that follow the target too closely (possible leakage).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftloop.errors import DataError
from driftloop.monitoring.calendar import calendar_position
from driftloop.tabular import checks as _checks
from driftloop.tabular.classify import (
    MAX_CATEGORIES,
    ColumnFeature,
    Role,
    Task,
    classify_feature,
    classify_target,
    is_calendar_column,
)
from driftloop.tabular.columns import (
    parse_timestamp,
    shown,
    to_entity,
    to_numbers,
    to_text,
)
from driftloop.tabular.read import parse_duration, read_table

__all__ = [
    "MAX_CATEGORIES",
    "MIN_ROWS",
    "ColumnRole",
    "TableSchema",
    "Task",
    "infer_schema",
    "parse_duration",
    "prepare_table",
    "read_table",
]

MIN_ROWS = 1_000


@dataclass(frozen=True)
class ColumnRole:
    """One column of the table: its role, the dtype it was read as, and a note for people."""

    name: str
    role: Role
    dtype: str
    detail: str


@dataclass(frozen=True)
class TableSchema:
    """What a table holds and how a project uses each column."""

    entity: tuple[str, ...]
    entity_types: dict[str, Literal["int64", "string"]]
    timestamp: str
    target: str
    task: Task
    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]
    ignored: dict[str, str]
    label_delay: timedelta
    rows: int
    entities: int
    first: datetime
    last: datetime
    spacing: timedelta
    columns: tuple[ColumnRole, ...]
    checks: tuple[str, ...]
    # numeric columns that are calendar positions (month, hour, day of year...): features,
    # but not judged for drift (they move with the calendar by construction)
    calendar: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Keys:
    entities: int
    spacing: timedelta


def _column_roles(
    frame: pd.DataFrame,
    roles: dict[str, tuple[Role, str]],
    features: dict[str, ColumnFeature],
    calendar: tuple[str, ...],
) -> tuple[ColumnRole, ...]:
    """Each column's role and why, in the table's order: ``roles`` holds the entity,
    timestamp and target columns'; the features' come from ``features``."""
    roles = dict(roles)
    for name, feature in features.items():
        ignored = feature.role == "ignored"
        detail = f"ignored: {feature.detail}" if ignored else feature.detail
        if name in calendar:
            detail += f"; calendar position ({calendar_position(name)}): not judged for drift"
        roles[name] = (feature.role, detail)
    return tuple(
        ColumnRole(name, roles[name][0], str(frame[name].dtype), roles[name][1])
        for name in frame.columns
    )


def infer_schema(
    frame: pd.DataFrame,
    entity: Sequence[str],
    timestamp: str,
    target: str,
    task: Task | None = None,
    label_delay: timedelta | None = None,
    min_days: int = 60,
) -> TableSchema:
    """Validate and classify the table; one DataError naming the column and the fix if bad.

    ``task`` and ``label_delay`` are inferred when not given (see the module docstring).
    """
    entity = tuple(entity)
    _check_names(frame, entity, timestamp, target)
    _check_arguments(len(frame), task, label_delay)
    times, time_note = parse_timestamp(frame[timestamp], timestamp)
    first, last = times.min().to_pydatetime(), times.max().to_pydatetime()
    _check_span(first, last, timestamp, min_days)
    rows = len(frame)
    entity_types = {name: to_entity(frame[name], name)[1] for name in entity}
    y, task_used, target_detail = classify_target(frame[target], target, task)
    features = {
        name: classify_feature(frame[name], name, rows)
        for name in frame.columns
        if name not in (*entity, timestamp, target)
    }
    keys = _keys(frame, entity, times, timestamp)
    delay = label_delay if label_delay is not None else _default_delay(keys.spacing)
    roles: dict[str, tuple[Role, str]] = {
        name: ("entity", f"{frame[name].nunique():,} distinct ids") for name in entity
    }
    roles[timestamp] = ("timestamp", _time_detail(time_note, first, last))
    roles[target] = ("target", target_detail)
    calendar = tuple(n for n, f in features.items() if is_calendar_column(n, f))
    columns = _column_roles(frame, roles, features, calendar)
    checks = _checks.collect(
        frame=frame,
        target=target,
        y=y,
        task=task_used,
        task_inferred=task is None,
        time_note=time_note,
        timestamp=timestamp,
        first=first,
        last=last,
        delay=delay,
        delay_assumed=label_delay is None,
        spacing=keys.spacing,
        ignored={n: f.detail for n, f in features.items() if f.role == "ignored"},
        numeric={n: f.values for n, f in features.items() if f.values is not None},
        categorical=[n for n, f in features.items() if f.role == "categorical"],
        times=times,
    )
    return TableSchema(
        entity=entity,
        entity_types=entity_types,
        timestamp=timestamp,
        target=target,
        task=task_used,
        numeric=tuple(n for n, f in features.items() if f.role == "numeric"),
        categorical={n: f.categories for n, f in features.items() if f.role == "categorical"},
        ignored={n: f.detail for n, f in features.items() if f.role == "ignored"},
        label_delay=delay,
        rows=rows,
        entities=keys.entities,
        first=first,
        last=last,
        spacing=keys.spacing,
        columns=columns,
        checks=checks,
        calendar=calendar,
    )


def prepare_table(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The table as the project stores it: typed columns, ignored ones dropped, sorted.

    Timestamp as datetime64[ns, UTC] (naive times taken as UTC), entities int64 or Python
    strings, target and numeric features float64, categoricals Python strings with missing
    values kept as NaN; rows sorted by (timestamp, entity...), index 0..n-1.
    """
    wanted = [c.name for c in schema.columns if c.role != "ignored"]
    absent = [name for name in wanted if name not in frame.columns]
    if absent:
        raise DataError(
            f"the table lacks column(s) {', '.join(map(repr, absent))} that its schema names: "
            "infer the schema again from this table"
        )
    out: dict[str, pd.Series] = {}
    for column in schema.columns:
        series = frame[column.name]
        if column.role == "timestamp":
            out[column.name] = parse_timestamp(series, column.name)[0]
        elif column.role == "entity":
            out[column.name] = to_entity(series, column.name)[0]
        elif column.role in ("target", "numeric"):
            out[column.name] = to_numbers(series)
        elif column.role == "categorical":
            out[column.name] = to_text(series)
    # Sort on integer keys (the entity's sorted codes): far faster than sort_values on 1M rows.
    codes = [pd.factorize(out[name], sort=True)[0] for name in schema.entity]
    order = np.lexsort((*reversed(codes), _nanos(out[schema.timestamp])))
    return pd.DataFrame(out).take(order).reset_index(drop=True)


def _check_names(frame: pd.DataFrame, entity: tuple[str, ...], timestamp: str, target: str) -> None:
    """The named columns exist, are distinct, and the table's column names are usable."""
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or any(not isinstance(c, str) for c in frame.columns):
        what = f"repeats {', '.join(map(repr, repeated))}" if repeated else "has unnamed columns"
        raise DataError(f"the table {what}: give every column its own name (a header row)")
    if not entity:
        raise DataError("--entity names no column: pass the id column(s), e.g. --entity user_id")
    named = [*(("--entity", e) for e in entity), ("--timestamp", timestamp), ("--target", target)]
    for flag, name in named:
        if name not in frame.columns:
            raise DataError(f"{flag} {name!r} is not a column of the table{_suggest(name, names)}")
    if len(set(entity)) < len(entity):
        raise DataError(f"--entity {','.join(entity)} names a column twice: name each once")
    for flag, other in (("--timestamp", timestamp), ("--target", target)):
        if other in entity:
            raise DataError(
                f"column {other!r} is both --entity and {flag}: an entity column identifies "
                f"the row; pick a different {flag} column"
            )
    if timestamp == target:
        raise DataError(
            f"column {target!r} is both --timestamp and --target: the target is the value to "
            "predict; pick a different column for one of them"
        )


def _check_arguments(rows: int, task: Task | None, label_delay: timedelta | None) -> None:
    """The task is known, the delay not negative, and the table not too small to split."""
    if task is not None and task not in ("regression", "classification"):
        raise DataError(f"--task {task!r} is not a task: use regression or classification")
    if label_delay is not None and label_delay < timedelta(0):
        raise DataError(f"--label-delay {label_delay} is negative: give a duration such as 1d")
    if rows < MIN_ROWS:
        raise DataError(
            f"the table has {rows:,} rows; driftloop needs at least {MIN_ROWS:,} to split it "
            "into training, validation and replay: add rows (a longer period or more entities)"
        )


def _suggest(name: str, names: list[str]) -> str:
    """'; did you mean ...? Its columns: ...' for a missing column name."""
    lowered = {n.lower(): n for n in names}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close += [n for n in difflib.get_close_matches(name, names, n=3, cutoff=0.6) if n not in close]
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    listed = ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
    return f"{hint} Its columns: {listed}"


def _check_span(first: datetime, last: datetime, timestamp: str, min_days: int) -> None:
    days = (last - first) / timedelta(days=1)
    if days < min_days:
        raise DataError(
            f"the table spans {days:.1f} days by {timestamp!r} ({first:%Y-%m-%d} to "
            f"{last:%Y-%m-%d}); driftloop needs at least {min_days} days to split it into "
            "training, validation and replay: add older or newer rows"
        )


def _keys(frame: pd.DataFrame, entity: tuple[str, ...], times: pd.Series, timestamp: str) -> _Keys:
    """Distinct entities and the median gap between an entity's events; DataError on repeats."""
    codes = [pd.factorize(frame[name], sort=True)[0] for name in entity]
    nanos = _nanos(times)
    order = np.lexsort((nanos, *reversed(codes)))
    same = np.ones(len(order) - 1, dtype=bool)
    for column in codes:
        ordered = column[order]
        same &= ordered[1:] == ordered[:-1]
    gaps = np.diff(nanos[order])
    repeats = same & (gaps == 0)
    if repeats.any():
        row = frame.iloc[order[int(np.argmax(repeats)) + 1]]
        key = ", ".join(f"{name}={shown(row[name])}" for name in (*entity, timestamp))
        raise DataError(
            f"{int(repeats.sum()):,} rows repeat an (entity, timestamp) key, e.g. {key}: keep one "
            f"row per key: aggregate the repeats (GROUP BY {', '.join(entity)}, {timestamp} in a "
            "DuckDB query), or add the column that tells them apart to --entity"
        )
    within = gaps[same]
    spacing_ns = int(np.median(within)) if len(within) else 0
    return _Keys(
        entities=int(len(order) - same.sum()),
        spacing=timedelta(microseconds=spacing_ns // 1_000),
    )


def _nanos(times: pd.Series) -> np.ndarray[Any, np.dtype[np.int64]]:
    """UTC times as int64 nanoseconds since the epoch."""
    nanos: np.ndarray[Any, np.dtype[np.int64]] = (
        times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")
    )
    return nanos


def _default_delay(spacing: timedelta) -> timedelta:
    """The spacing rounded up to whole days, at least one day."""
    return timedelta(days=max(1, math.ceil(spacing / timedelta(days=1))))


def _time_detail(note: str, first: datetime, last: datetime) -> str:
    how = {
        "naive": "no time zone: taken as UTC",
        "epoch s": "seconds since 1970-01-01 UTC",
        "epoch ms": "milliseconds since 1970-01-01 UTC",
    }.get(note, "UTC")
    return f"times {first:%Y-%m-%d} to {last:%Y-%m-%d}, {how}"
