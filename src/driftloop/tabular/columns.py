"""What one column holds, and its conversion to the form a project stores.

Shared by schema inference and table preparation so both read a column the same way. Each
function takes one column and its name, and raises :class:`~driftloop.errors.DataError`
naming the column when its values cannot be used.
"""

from __future__ import annotations

import numbers
import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftloop.errors import DataError

__all__ = [
    "EPOCH_RANGES",
    "Kind",
    "ValueKind",
    "first_row",
    "parse_timestamp",
    "shown",
    "to_entity",
    "to_numbers",
    "to_text",
    "value_kind",
]

Kind = Literal["numbers", "booleans", "text", "times", "empty", "other"]
EntityType = Literal["int64", "string"]

# Integer timestamps are taken as epoch seconds or milliseconds only when every value falls
# between 2000-01-01 and 2100-01-01 in that unit; anything else is refused.
EPOCH_RANGES: tuple[tuple[Literal["s", "ms"], int, int], ...] = (
    ("s", 946_684_800, 4_102_444_800),
    ("ms", 946_684_800_000, 4_102_444_800_000),
)
_NUMERIC_KINDS = {"integer", "floating", "mixed-integer-float", "decimal", "integer-na"}
_TIME_KINDS = {"datetime", "datetime64", "date"}
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class ValueKind:
    """What a column holds (``kind``) and, for people, in what form (``note``)."""

    kind: Kind
    note: str = ""


def shown(value: object) -> str:
    """A value as a message shows it: text quoted, numbers and times plain (no numpy repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def first_row(mask: pd.Series) -> int:
    """The 1-based position of the first True in ``mask`` (a data row, header not counted)."""
    return int(np.argmax(mask.to_numpy(dtype=bool))) + 1


def value_kind(series: pd.Series, column: str) -> ValueKind:
    """Classify a column's non-missing values; DataError if it mixes numbers and text."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _kind_of_values(pd.Series(dtype.categories), column)
    if pd.api.types.is_bool_dtype(dtype):
        return ValueKind("booleans", "true/false as 1/0")
    if pd.api.types.is_numeric_dtype(dtype):
        return ValueKind("empty") if series.isna().all() else ValueKind("numbers")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ValueKind("times")
    if pd.api.types.is_timedelta64_dtype(dtype):
        return ValueKind("other", "durations")
    return _kind_of_values(series.dropna(), column)


def _kind_of_values(values: pd.Series, column: str) -> ValueKind:
    """Classify the distinct values of an object, string or category column."""
    try:
        uniques = pd.unique(values.to_numpy(dtype=object))
    except TypeError:  # unhashable values: lists, dicts, arrays
        return ValueKind("other", "list or record values")
    inferred = pd.api.types.infer_dtype(uniques, skipna=True)
    if inferred == "empty":
        return ValueKind("empty")
    if inferred == "string":
        return _text_or_numbers(uniques, column)
    if inferred in _NUMERIC_KINDS:
        return ValueKind("numbers")
    if inferred == "boolean":
        return ValueKind("booleans", "true/false as 1/0")
    if inferred in _TIME_KINDS:
        return ValueKind("times")
    if inferred in ("mixed", "mixed-integer"):
        return _mixed(uniques, column)
    return ValueKind("other", f"{inferred} values")


def _text_or_numbers(uniques: np.ndarray[Any, Any], column: str) -> ValueKind:
    """Strings: numbers written as text, plain text, or (an error) both."""
    parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").notna()
    if parsed.all():
        return ValueKind("numbers", "numbers written as text")
    if not parsed.any():
        return ValueKind("text")
    raise _mixed_error(column, uniques[parsed.to_numpy()][0], uniques[~parsed.to_numpy()][0])


def _mixed(uniques: np.ndarray[Any, Any], column: str) -> ValueKind:
    """Python objects of several types: numbers (or numeric strings) with text is an error."""
    strings = [v for v in uniques if isinstance(v, str)]
    others = [v for v in uniques if not isinstance(v, str | numbers.Number)]
    if others:
        return ValueKind("other", f"{type(others[0]).__name__} values")
    number = next(v for v in uniques if isinstance(v, numbers.Number))
    if strings:
        kind = _text_or_numbers(np.array(strings, dtype=object), column)
        if kind.kind == "text":
            raise _mixed_error(column, number, strings[0])
    return ValueKind("numbers", "numbers, some written as text" if strings else "")


def _mixed_error(column: str, number: object, text: object) -> DataError:
    return DataError(
        f"column {column!r} mixes numbers and text (e.g. {shown(number)} and {shown(text)}): make "
        f"it one kind: if {shown(text)} means missing, leave those cells empty; if the column is a "
        "category, write every value as text that is not a number (e.g. 'c12')"
    )


def to_numbers(series: pd.Series) -> pd.Series:
    """A numbers or booleans column as float64 (booleans 1/0, missing NaN)."""
    if not pd.api.types.is_numeric_dtype(series.dtype) or isinstance(
        series.dtype, pd.CategoricalDtype
    ):
        series = pd.to_numeric(series.astype(object), errors="coerce")
    return series.astype("float64")


def to_text(series: pd.Series) -> pd.Series:
    """A text column as Python strings (object dtype), missing values kept as NaN."""
    values = series.astype(object)
    text = np.where(values.isna().to_numpy(), np.nan, values.astype(str).to_numpy())
    return pd.Series(text, index=series.index, dtype=object)


def to_entity(series: pd.Series, column: str) -> tuple[pd.Series, EntityType]:
    """An entity column as int64 or as strings; DataError if it is missing or not ids."""
    missing = series.isna()
    if missing.any():
        raise DataError(
            f"entity column {column!r} is empty in {int(missing.sum()):,} rows (the first is "
            f"row {first_row(missing)}): every row needs its entity; drop or fill those rows"
        )
    dtype = series.dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)):
        values = series.astype(object)
        uniques = pd.unique(values.to_numpy())
        inferred = pd.api.types.infer_dtype(uniques, skipna=True)
        if inferred == "string":
            return values.astype(str), "string"
        strings = [v for v in uniques if isinstance(v, str)]
        if inferred == "mixed-integer" and strings:
            number = next(v for v in uniques if isinstance(v, numbers.Number))
            raise _mixed_error(column, number, strings[0])
        if inferred not in ("integer", "floating", "mixed-integer-float"):
            raise _not_ids(column, f"{inferred} values such as {shown(uniques[0])}")
        series = pd.to_numeric(values)
    if pd.api.types.is_bool_dtype(series.dtype):
        raise _not_ids(column, "true/false values")
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("int64"), "int64"
    if pd.api.types.is_float_dtype(series.dtype):
        fractional = series != np.floor(series)
        if fractional.any():
            value = series[fractional].iloc[0]
            raise _not_ids(column, f"fractional numbers such as {shown(value)}")
        return series.astype("int64"), "int64"
    raise _not_ids(column, f"{dtype} values")


def _not_ids(column: str, what: str) -> DataError:
    return DataError(
        f"entity column {column!r} holds {what}: an entity must be an id (whole numbers or "
        "text); pass the id column(s) with --entity"
    )


def parse_timestamp(series: pd.Series, column: str) -> tuple[pd.Series, str]:
    """The timestamp column as datetime64[ns, UTC], and how it was read ("" if tz-aware).

    The note is ``"naive"`` (no time zone: taken as UTC) or ``"epoch s"`` / ``"epoch ms"``.
    """
    missing = series.isna()
    if missing.any():
        raise DataError(
            f"timestamp column {column!r} is empty in {int(missing.sum()):,} rows (the first "
            f"is row {first_row(missing)}): every row needs its time; drop or fill those rows"
        )
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is None:
            return series.dt.tz_localize("UTC").astype("datetime64[ns, UTC]"), "naive"
        return series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"), ""
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(object)
    elif pd.api.types.is_numeric_dtype(dtype):
        return _epoch(series, column)
    return _parse_text_times(series, column)


def _epoch(series: pd.Series, column: str) -> tuple[pd.Series, str]:
    """Whole numbers within an epoch range as times; DataError for any other numbers."""
    low, high = series.min(), series.max()
    whole = bool((series == np.floor(series)).all())
    for unit, start, end in EPOCH_RANGES:
        if whole and start <= low and high < end:
            parsed = pd.to_datetime(series.astype("int64"), unit=unit, utc=True)
            return parsed.astype("datetime64[ns, UTC]"), f"epoch {unit}"
    raise DataError(
        f"timestamp column {column!r} holds numbers ({shown(low)} to {shown(high)}), not "
        "times: write it as dates or times (2024-03-01, 2024-03-01T09:30:00Z), e.g. in a "
        f"DuckDB query with strptime(CAST({column} AS VARCHAR), '%Y%m%d'); whole numbers "
        "between 2000 and 2100 as epoch seconds or milliseconds are read as such"
    )


def _parse_text_times(series: pd.Series, column: str) -> tuple[pd.Series, str]:
    """Strings (or Python datetimes) as times: ISO 8601 first, then pandas' format guess."""
    with warnings.catch_warnings():
        # pandas warns when it cannot infer one format; the count of failures below says more.
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna()
        if bad.any():
            guessed = pd.to_datetime(series, utc=True, errors="coerce")
            if guessed.isna().sum() < bad.sum():
                parsed, bad = guessed, guessed.isna()
    if bad.any():
        raise DataError(
            f"timestamp column {column!r} has {int(bad.sum()):,} values that are not times "
            f"(the first: {shown(series[bad].iloc[0])} in row {first_row(bad)}): fix or drop those "
            "rows; write times as ISO 8601 (2024-03-01 or 2024-03-01T09:30:00Z)"
        )
    sample = series.iloc[:1000]
    naive = all(
        (_TZ_SUFFIX.search(v.strip()) is None) if isinstance(v, str) else _naive_object(v)
        for v in sample
    )
    return parsed.astype("datetime64[ns, UTC]"), "naive" if naive else ""


def _naive_object(value: object) -> bool:
    return getattr(value, "tzinfo", None) is None
