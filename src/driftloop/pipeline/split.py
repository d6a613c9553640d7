"""Time split of a training window: train, then validation, then holdout (latest)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import pandas as pd

__all__ = ["TimeSplit", "plan_split"]


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
