"""The role of one column of a user's table: the target's task, and each feature's kind
(numeric, categorical, or ignored with the reason), as ``infer`` applies them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from driftloop.errors import DataError
from driftloop.monitoring.calendar import is_calendar_position
from driftloop.tabular.columns import to_numbers, value_kind

__all__ = [
    "MAX_CATEGORIES",
    "ColumnFeature",
    "Role",
    "Task",
    "classify_feature",
    "classify_target",
    "is_calendar_column",
]

Task = Literal["regression", "classification"]
Role = Literal["entity", "timestamp", "target", "numeric", "categorical", "ignored"]

MAX_CATEGORIES = 50


@dataclass(frozen=True)
class ColumnFeature:
    """A non-key column's role, why, its categories, and numeric values as float64."""

    role: Role
    detail: str
    categories: tuple[str, ...] = ()
    values: pd.Series | None = None  # numeric features as float64, for the leakage check


def classify_target(series: pd.Series, name: str, task: Task | None) -> tuple[pd.Series, Task, str]:
    """The target as float64, the task (given or inferred), and a note; DataError if unusable."""
    missing = series.isna()
    if missing.any():
        raise DataError(
            f"target {name!r} is empty in {int(missing.sum()):,} rows: rows without a label "
            f"cannot train; drop them (e.g. WHERE {name} IS NOT NULL) or fill them"
        )
    kind = value_kind(series, name)
    if kind.kind not in ("numbers", "booleans"):
        values = sorted(map(str, series.unique()))
        listed = ", ".join(map(repr, values[:4])) + (", ..." if len(values) > 4 else "")
        fix = (
            f"recode it to 0/1 (e.g. CASE WHEN {name} = {values[-1]!r} THEN 1 ELSE 0 END in a "
            "DuckDB query) for classification"
            if len(values) == 2
            else "make it a number (regression) or a 0/1 class (classification)"
        )
        raise DataError(f"target {name!r} holds {kind.kind} ({listed}): {fix}")
    y = to_numbers(series)
    infinite = ~np.isfinite(y.to_numpy())
    if infinite.any():
        raise DataError(
            f"target {name!r} is infinite in {int(infinite.sum()):,} rows: drop or fix them"
        )
    distinct = np.unique(y.to_numpy())
    binary = len(distinct) == 2 and set(distinct.tolist()) <= {0.0, 1.0}
    chosen: Task = task or ("classification" if binary else "regression")
    listed = ", ".join(f"{v:g}" for v in distinct[:4]) + (", ..." if len(distinct) > 4 else "")
    if chosen == "classification" and not set(distinct.tolist()) <= {0.0, 1.0}:
        raise DataError(
            f"--task classification needs a 0/1 target, but {name!r} holds {listed}: recode it "
            f"to 0/1 (e.g. CASE WHEN {name} = ... THEN 1 ELSE 0 END), or use --task regression"
        )
    if len(distinct) < 2:
        need = "rows of both classes 0 and 1" if chosen == "classification" else "a varying value"
        raise DataError(
            f"target {name!r} is constant ({listed}): nothing to learn; the target needs {need}; "
            "check you named the right column"
        )
    if chosen == "classification":
        return y, chosen, f"0/1, {float(y.mean()):.1%} positive"
    return y, chosen, f"{series.dtype}, {len(distinct):,} distinct values"


def classify_feature(series: pd.Series, name: str, rows: int) -> ColumnFeature:
    """The role of one non-key column, with a note for people."""
    kind = value_kind(series, name)
    missing = float(series.isna().mean())
    if kind.kind == "empty" or missing == 1.0:
        return ColumnFeature("ignored", "empty: every value is missing")
    if kind.kind == "times":
        return ColumnFeature(
            "ignored", "a second time column: derive features from it in transform()"
        )
    if kind.kind == "other":
        return ColumnFeature("ignored", f"holds {kind.note}: derive numbers from it in transform()")
    gaps = f"{missing:.0%} missing" if missing >= 0.005 else ("<1% missing" if missing else "")
    if kind.kind in ("numbers", "booleans"):
        values = to_numbers(series)
        present = values.dropna().to_numpy()
        if present.min() == present.max():
            return ColumnFeature("ignored", "constant: the same value in every row")
        whole = len(present) == rows and bool((present == np.floor(present)).all())
        if whole and values.nunique() == rows:
            return ColumnFeature("ignored", "an id: a different whole number in every row")
        form = kind.note or str(series.dtype)
        return ColumnFeature("numeric", ", ".join(filter(None, [form, gaps])), values=values)
    uniques = pd.unique(series.dropna().to_numpy(dtype=object))
    distinct = len(uniques)
    if distinct <= 1:
        return ColumnFeature("ignored", "constant: the same value in every row")
    if distinct == rows or (distinct > MAX_CATEGORIES and distinct > rows / 2):
        return ColumnFeature("ignored", f"an id or free text ({distinct:,} distinct values)")
    if distinct > MAX_CATEGORIES:
        return ColumnFeature(
            "ignored",
            f"{distinct:,} categories, more than {MAX_CATEGORIES}: group rare ones in transform()",
        )
    categories = tuple(sorted({str(v) for v in uniques}))
    detail = ", ".join(filter(None, [f"{len(categories)} categories", gaps]))
    return ColumnFeature("categorical", detail, categories=categories)


def is_calendar_column(name: str, feature: ColumnFeature) -> bool:
    """A numeric column of whole numbers whose name and range spell a calendar position."""
    if feature.values is None:
        return False
    present = feature.values.dropna().to_numpy("float64")
    whole = bool((present == np.floor(present)).all())
    return whole and is_calendar_position(name, float(present.min()), float(present.max()))
