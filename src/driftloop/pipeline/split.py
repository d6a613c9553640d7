"""Time split of a training window: train, then validation, then holdout (latest)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from driftloop.errors import DataError
from driftloop.pipeline.metrics import MIN_HOLDOUT_ROWS, too_few_to_evaluate

__all__ = ["MAX_GROWN_SHARE", "SplitTooSmall", "TimeSplit", "grow_split", "plan_split"]

MAX_GROWN_SHARE = 1.0 / 3.0  # grown validation and holdout rows: at most this of the window's


class SplitTooSmall(DataError):
    """No validation and holdout large enough for the metric fit in the window: the retrain
    waits for more labelled days (not a failure of the data)."""


@dataclass(frozen=True)
class TimeSplit:
    """Inclusive day ranges of the three parts; the holdout is the most recent."""

    train_start: date
    train_end: date
    validation_start: date
    validation_end: date
    holdout_start: date
    holdout_end: date

    @property
    def window(self) -> tuple[date, date]:
        return self.train_start, self.holdout_end

    def to_json(self) -> str:
        """The split as stored in a version's ``driftloop.split`` tag."""
        return json.dumps({k: str(v) for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> TimeSplit:
        return cls(**{k: date.fromisoformat(v) for k, v in json.loads(text).items()})

    def parts(
        self, frame: pd.DataFrame, column: str = "event_timestamp"
    ) -> dict[str, pd.DataFrame]:
        """``frame``'s rows of train, validation and holdout, by the day of ``column``."""
        day = frame[column].dt.tz_convert(None).dt.date
        return {
            name: frame[
                (day >= getattr(self, f"{name}_start")) & (day <= getattr(self, f"{name}_end"))
            ]
            for name in ("train", "validation", "holdout")
        }


def plan_split(
    as_of: date,
    label_delay_days: int,
    window_days: int,
    validation_days: int,
    holdout_days: int,
    first_day: date | None = None,
) -> TimeSplit:
    """Split the ``window_days`` whose labels are known at ``as_of``.

    The sales of day d are known at d + label_delay_days, so the last usable label
    day is ``as_of - label_delay_days``. ``first_day`` clips the window to the data.
    """
    if min(window_days, validation_days, holdout_days) < 1 or label_delay_days < 0:
        raise ValueError("window, validation and holdout need at least one day each")
    last = as_of - timedelta(days=label_delay_days)
    start = last - timedelta(days=window_days - 1)
    if first_day is not None and start < first_day:
        start = first_day
    holdout_start = last - timedelta(days=holdout_days - 1)
    validation_start = holdout_start - timedelta(days=validation_days)
    return TimeSplit(
        train_start=start,
        train_end=validation_start - timedelta(days=1),
        validation_start=validation_start,
        validation_end=holdout_start - timedelta(days=1),
        holdout_start=holdout_start,
        holdout_end=last,
    )


def _grow(
    days: np.ndarray,
    labels: np.ndarray,
    end: date,
    start: date,
    floor: date,
    task: str,
    min_rows: int,
) -> tuple[date, str | None]:
    """The latest start on or before ``start`` (not before ``floor``) whose days to ``end``
    hold enough rows for the task's metric, and why not when even ``floor`` does not."""
    older = np.unique(days[(days < start) & (days >= floor)])[::-1]  # newest first
    for candidate in (start, *older):
        inside = (days >= candidate) & (days <= end)
        problem = too_few_to_evaluate(task, labels[inside], min_rows)
        if problem is None:
            return candidate, None
    return floor, problem


def grow_split(
    split: TimeSplit,
    days: np.ndarray,
    labels: np.ndarray,
    task: str,
    min_rows: int = MIN_HOLDOUT_ROWS,
    max_share: float = MAX_GROWN_SHARE,
) -> TimeSplit:
    """``split`` with its holdout, then its validation, reaching back over as many of the
    newest days as needed to hold ``min_rows`` labelled rows each (both classes for a
    classifier): sparse days are judged on more of them. A part that is large enough
    already keeps its days. Raises ``SplitTooSmall`` when the two would need more than
    ``max_share`` of the window's rows.

    ``days`` (``datetime.date`` objects) and ``labels`` are the window's rows."""
    days, labels = np.asarray(days, dtype=object), np.asarray(labels, dtype="float64")
    total = int(((days >= split.train_start) & (days <= split.holdout_end)).sum())
    holdout_start, why = _grow(
        days, labels, split.holdout_end, split.holdout_start, split.train_start, task, min_rows
    )
    validation_end = holdout_start - timedelta(days=1)
    validation_start = validation_end - (split.validation_end - split.validation_start)
    if why is None:
        validation_start, why = _grow(
            days, labels, validation_end, validation_start, split.train_start, task, min_rows
        )
    if why is None and validation_start == split.validation_start:
        return split  # both large enough as planned
    grown = ((days >= validation_start) & (days <= split.holdout_end)).sum()
    if why is None and grown > max_share * total:
        why = f"{int(grown)} rows, more than {max_share:.0%} of the window's {total}"
    if why is not None:
        raise SplitTooSmall(_too_small(split, days, labels, task, min_rows, why))
    return TimeSplit(
        split.train_start,
        validation_start - timedelta(days=1),
        validation_start,
        validation_end,
        holdout_start,
        split.holdout_end,
    )


def _too_small(
    split: TimeSplit, days: np.ndarray, labels: np.ndarray, task: str, min_rows: int, why: str
) -> str:
    """The message of a split that cannot grow enough: what the planned days hold, why
    reaching back does not help, and what to do."""
    name, start, end = "holdout", split.holdout_start, split.holdout_end
    planned = too_few_to_evaluate(task, labels[(days >= start) & (days <= end)], min_rows)
    if planned is None:
        name, start, end = "validation", split.validation_start, split.validation_end
        planned = too_few_to_evaluate(task, labels[(days >= start) & (days <= end)], min_rows)
    both = " and both classes" if task == "classification" else ""
    return (
        f"the {name} days {start} to {end} hold {planned or 'enough rows'}; validation and "
        f"holdout reaching back to {min_rows} labelled rows each{both} do not fit in the "
        f"window {split.train_start} to {split.holdout_end} ({why}): nothing is trained or "
        "registered, the retrain waits for more labelled days; widen training.window_days "
        "or choose a later --as-of"
    )
