"""Calendar-position columns, recognised by name and range wherever they come from.

A column that says where in the calendar a row sits (hour, day of week, day of month,
day of year, week of year, month, quarter, season, weekend, holiday) moves with the
calendar by construction: a week in July is never like the year before it, and that is
not a changed world. driftloop's own calendar features and a user's columns alike are
recognised here, so monitoring leaves them out (``monitoring.calendar_by_name``) and
``init --data`` lists them in ``monitoring.exclude_features``.

A name matches when, lowercased and with separators and camel case split into words, the
whole name or its last words spell one of the known positions (``hr``, ``mnth``,
``dayofweek``, ``pickup_hour``, ``WeekOfYear``); ambiguous short words (``day``,
``week``, ``mon``) only match as the whole name. The values must then be whole numbers
inside the position's range (0-based or 1-based), so a ``rides_per_hour`` rate is no
calendar column.
"""

from __future__ import annotations

import math
import re

__all__ = ["CALENDAR_RANGES", "calendar_position", "is_calendar_position"]

# position -> (lowest, highest) whole value, allowing 0- or 1-based counting
CALENDAR_RANGES: dict[str, tuple[int, int]] = {
    "hour": (0, 24),
    "day_of_week": (0, 7),
    "day_of_month": (0, 31),
    "day_of_year": (0, 366),
    "week_of_year": (0, 53),
    "month": (0, 12),
    "quarter": (0, 4),
    "season": (0, 4),
    "is_weekend": (0, 1),
    "is_holiday": (0, 1),
}
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "hour": ("hour", "hr", "hourofday", "hod"),
    "day_of_week": ("dayofweek", "dow", "weekday", "wday", "dayoftheweek", "weekdaynum"),
    "day_of_month": ("dayofmonth", "dom", "mday", "monthday"),
    "day_of_year": ("dayofyear", "doy", "yday", "yearday", "julianday"),
    "week_of_year": ("weekofyear", "woy", "isoweek", "weeknum", "weeknumber", "yearweek"),
    "month": ("month", "mnth", "monthofyear", "moy"),
    "quarter": ("quarter", "qtr", "quarterofyear"),
    "season": ("season",),
    "is_weekend": ("isweekend", "weekend", "workingday", "isworkingday", "workday"),
    "is_holiday": ("isholiday", "holiday"),
}
_WHOLE_NAME_ONLY: dict[str, str] = {
    "day": "day_of_month",
    "week": "week_of_year",
    "mon": "month",
    "wk": "week_of_year",
}
_BY_SPELLING = {s: position for position, names in _SPELLINGS.items() for s in names}
_MAX_WORDS = 4  # "day of the week"


def _words(name: str) -> list[str]:
    """Lowercase words of a column name: separators and camel case split it."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w]


def calendar_position(name: str) -> str | None:
    """The calendar position ``name`` spells (a key of ``CALENDAR_RANGES``), or None."""
    words = _words(name)
    if not words:
        return None
    whole = "".join(words)
    if whole in _WHOLE_NAME_ONLY:
        return _WHOLE_NAME_ONLY[whole]
    for n in range(min(len(words), _MAX_WORDS), 0, -1):
        position = _BY_SPELLING.get("".join(words[-n:]))
        if position is not None:
            return position
    return None


def is_calendar_position(name: str, minimum: float, maximum: float) -> bool:
    """Whether a column named ``name`` whose values span ``minimum`` to ``maximum`` is a
    calendar position: the name spells one and the span lies inside its range (whole
    numbers are checked by the caller that has the values; a NaN span is no position)."""
    position = calendar_position(name)
    if position is None or not (math.isfinite(minimum) and math.isfinite(maximum)):
        return False
    low, high = CALENDAR_RANGES[position]
    return low <= minimum and maximum <= high
