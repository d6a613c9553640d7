"""The "what to check" sentences that schema inference hands the user (pure; no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from driftloop.tabular import leaks as _leaks_mod

__all__ = [
    "LEAK_CORRELATION",
    "MANY_MISSING",
    "RARE_CLASS",
    "collect",
    "describe_duration",
    "non_features",
]

MANY_MISSING = 0.2
LEAK_CORRELATION = 0.95
RARE_CLASS = 0.05


def collect(
    *,
    frame: pd.DataFrame,
    target: str,
    y: pd.Series,
    task: str,
    task_inferred: bool,
    time_note: str,
    timestamp: str,
    first: datetime,
    last: datetime,
    delay: timedelta,
    delay_assumed: bool,
    spacing: timedelta,
    ignored: dict[str, str],
    numeric: dict[str, pd.Series],
    categorical: list[str],
    times: pd.Series | None = None,
) -> tuple[str, ...]:
    """Every check, in a fixed order: task, time, label delay, columns, target, leakage,
    then parts of the target, split markers and ids (``times``: the parsed timestamps)."""
    out: list[str] = []
    if task_inferred:
        out.append(_task(target, y, task))
    out += _time(timestamp, time_note, first, last)
    if delay_assumed:
        out.append(_delay(delay, spacing))
    out += [f"column {name!r} is not a feature: {why}" for name, why in ignored.items()]
    for name in [*numeric, *categorical]:
        missing = float(frame[name].isna().mean())
        if missing >= MANY_MISSING:
            out.append(
                f"column {name!r} is {missing:.0%} missing: check it is missing the same way "
                "at prediction time (not filled in later)"
            )
    if task == "classification":
        out.append(_positive_rate(y))
    out += _leaks(target, y, numeric)
    if times is not None:
        out += non_features(frame, target, y, times, numeric, categorical)
    return tuple(out)


def non_features(
    frame: pd.DataFrame,
    target: str,
    y: pd.Series,
    times: pd.Series,
    numeric: dict[str, pd.Series],
    categorical: list[str],
) -> list[str]:
    """Exact parts of the target, split markers and ids among the features (see leaks)."""
    out = [
        f"columns {a!r} {op} {b!r} equal the target {target!r} exactly ({share:.0%} of rows): "
        "each is a part of the outcome; if either is recorded with or after the outcome, the "
        "other gives the target away: drop both unless both are known at prediction time"
        for a, op, b, share in _leaks_mod.exact_relations(
            target, y.to_numpy("float64"), {n: v.to_numpy("float64") for n, v in numeric.items()}
        )
    ]
    features = [*numeric, *categorical]
    split = _leaks_mod.split_markers(frame, times, features)
    out += [
        f"column {name!r} {why}: it tells how the table was split or which period a row is "
        "from, not what happened; drop it unless it is known at prediction time"
        for name, why in split.items()
    ]
    ids = _leaks_mod.id_like(
        frame,
        times,
        {n: v.to_numpy("float64") for n, v in numeric.items()},
        [n for n in features if n not in split],
    )
    out += [
        f"column {name!r} {why}: an id says which row it is, not what happened; drop it (or "
        "pass it as --entity) unless its value means something"
        for name, why in ids.items()
    ]
    return out


def _task(target: str, y: pd.Series, task: str) -> str:
    if task == "classification":
        return (
            f"task: classification, inferred because {target!r} holds only 0 and 1; pass "
            "--task regression if it is a quantity"
        )
    distinct = np.unique(y.to_numpy())
    if len(distinct) == 2:
        low, high = distinct.tolist()
        return (
            f"task: regression, inferred because {target!r} holds numbers; it has only two "
            f"values ({low:g} and {high:g}): if it is a class, recode it to 0/1 and pass "
            "--task classification"
        )
    return (
        f"task: regression, inferred because {target!r} holds numbers ({len(distinct):,} "
        "distinct values); pass --task classification for a 0/1 class"
    )


def _time(timestamp: str, note: str, first: datetime, last: datetime) -> list[str]:
    span = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    if note == "naive":
        return [
            f"timestamps in {timestamp!r} carry no time zone: taken as UTC ({span}); if they "
            "are local times, convert them to UTC first"
        ]
    if note.startswith("epoch"):
        unit = "seconds" if note == "epoch s" else "milliseconds"
        return [
            f"timestamp {timestamp!r} holds whole numbers: read as {unit} since 1970-01-01 UTC "
            f"({span}); check those dates are right"
        ]
    return []


def _delay(delay: timedelta, spacing: timedelta) -> str:
    days = delay.days
    if spacing == timedelta(0):
        basis = "no entity has two events, so 1 day is a guess"
    else:
        gap = describe_duration(spacing)
        basis = f"the median gap between an entity's events ({gap}) rounded up to whole days"
    return (
        f"label delay assumed {days} day{'s' if days != 1 else ''}: {basis}; if labels arrive "
        "later or sooner after the event, pass --label-delay (e.g. --label-delay 7d)"
    )


def _positive_rate(y: pd.Series) -> str:
    rate = float(y.mean())
    text = f"positive rate {rate:.1%} ({int(y.sum()):,} of {len(y):,} rows)"
    if min(rate, 1 - rate) < RARE_CLASS:
        rare = "positives" if rate < 0.5 else "negatives"
        return (
            f"{text}: few {rare}; accuracy says little here, so judge models by AUC and recall, "
            "and check the rare class is labelled correctly"
        )
    return text


def _leaks(target: str, y: pd.Series, numeric: dict[str, pd.Series]) -> list[str]:
    out = []
    for name, values in numeric.items():
        both = values.notna()
        if both.sum() < 3:
            continue
        x, t = values[both].to_numpy(), y[both].to_numpy()
        if np.std(x) == 0 or np.std(t) == 0:
            continue
        corr = float(np.corrcoef(x, t)[0, 1])
        if abs(corr) > LEAK_CORRELATION:
            out.append(
                f"column {name!r} follows the target {target!r} closely (correlation "
                f"{corr:.2f}): check it is known at prediction time, not only after the outcome"
            )
    return out


def describe_duration(duration: timedelta) -> str:
    """A duration for people: '3 days', '1 day 6 h', '2 h 30 min', '45 s'."""
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts[:2]) or "0 s"
