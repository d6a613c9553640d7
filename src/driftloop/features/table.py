"""Features of a project made from a user's own table (``driftloop init --data``).

Each row of the table is one prediction event: entity keys, a timestamp, the columns
known when the prediction is made, and the target, which becomes known ``label delay``
later. The features come in two parts, both written by ``init`` into the project's
Feast repository (``feature_repo/features.py``), where the user may edit them:

- **event features**, computed from the row itself by ``transform_events`` (numbers as
  they are, categories as codes, calendar parts of the timestamp). Training applies it
  to the stored events; the server applies the same function to each request's fields.
- **history features**, the entity's past targets: the last known target and its mean
  and count over trailing windows. Labels arrive in a daily batch: the target of an
  event on day ``d`` is known at midnight of ``d + delay``, so the history changes only
  then: one row per (entity, arrival), kept in the offline store and materialized to the
  online store by Feast. Training reads it with a point-in-time join at each event's
  time, serving reads the entity's latest row: the same values either way.
- **real-time (activity) features**, optional: how busy the entity has just been and how
  this event's amount compares with its usual, from its earlier events (not their
  labels). They change with every event, so the server keeps them current itself: it
  reads the entity's activity state from the online store, computes the request's
  features from it and pushes the updated state (a Feast push) before the next event.
  Training reads the same state point-in-time from the offline table, which
  ``activity_history`` folds from the stored events with the same step function.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from driftloop.errors import ConfigError, DataError

__all__ = [
    "ACTIVITY_SCALES",
    "CALENDAR_FEATURES",
    "REPO_DIRNAME",
    "REPO_MODULE",
    "activity_feature_names",
    "activity_features",
    "activity_history",
    "activity_online",
    "activity_state_names",
    "activity_step",
    "calendar_features",
    "check_generated_names",
    "encode_categories",
    "history_feature_names",
    "history_features",
    "load_repo",
    "window_label",
]

TIMESTAMP_COLUMN = "event_timestamp"
REPO_DIRNAME = "feature_repo"
REPO_MODULE = "features.py"
CALENDAR_FEATURES = ("hour", "day_of_week", "month", "day_of_year")
# Time constants of the decayed activity counts: label -> seconds.
ACTIVITY_SCALES: Mapping[str, float] = {"1h": 3600.0, "24h": 86400.0, "30d": 30 * 86400.0}
# An activity row is valid just after its event: a point-in-time join at the event's own
# time must not see it (Feast joins rows stamped at or before the entity row's time).
ACTIVITY_AFTER = pd.Timedelta(microseconds=1)


def window_label(window: timedelta) -> str:
    """``7d``, ``36h``, ``90m``: a window as it appears in feature names."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def history_feature_names(target: str, windows: Sequence[timedelta]) -> tuple[str, ...]:
    names = [f"{target}_last"]
    for w in windows:
        names += [f"{target}_mean_{window_label(w)}", f"{target}_count_{window_label(w)}"]
    return tuple(names)


def history_features(
    events: pd.DataFrame,
    keys: Sequence[str],
    target: str,
    delay: timedelta,
    windows: Sequence[timedelta],
    timestamp: str = TIMESTAMP_COLUMN,
) -> pd.DataFrame:
    """One row per entity and label arrival: what is known of the entity's targets then.

    The label of an event at ``t`` arrives with its day's batch, at midnight of ``t``'s
    day plus ``delay`` (whole days). That row holds the last known target and, per window
    ``w``, the mean and count of the targets of the entity's events in ``(t - w, t]``.
    Events sharing an arrival give one row: the last, which holds them all.
    """
    if delay < timedelta(days=1) or delay % timedelta(days=1):
        raise ValueError(f"the label delay must be a whole number of days >= 1, got {delay}")
    cols = [*keys, timestamp, target]
    frame = events[cols].dropna(subset=[target]).sort_values([*keys, timestamp], kind="stable")
    frame = frame.reset_index(drop=True)
    out = frame[list(keys)].copy()
    # The label batch of the event's day arrives at midnight, ``delay`` later.
    out[timestamp] = frame[timestamp].dt.floor("D") + pd.Timedelta(delay)
    y = frame[target].astype("float64")
    out[f"{target}_last"] = y.to_numpy()
    indexed = pd.Series(y.to_numpy(), index=pd.DatetimeIndex(frame[timestamp]))
    grouper = [frame[k].to_numpy() for k in keys]
    for w in windows:
        rolling = indexed.groupby(grouper, sort=False).rolling(pd.Timedelta(w), closed="right")
        label = window_label(w)
        # groupby keeps the groups in order of appearance, which is the sorted frame's order
        out[f"{target}_mean_{label}"] = rolling.mean().to_numpy()
        out[f"{target}_count_{label}"] = rolling.count().to_numpy()
    # Several events of an entity whose labels arrive together: the last row holds them all.
    return out.drop_duplicates([*keys, timestamp], keep="last").reset_index(drop=True)


def check_generated_names(columns: Sequence[str], generated: Sequence[str]) -> None:
    """Refuse table columns named like a feature driftloop generates (history, activity,
    the stored time column): the two would overlap in every feature table. Calendar parts
    are not checked here: a user's own ``day_of_week`` replaces the derived one."""
    made = set(generated)
    clashes = [name for name in columns if name in made]
    if clashes:
        first = clashes[0]
        shown = ", ".join(generated[:6]) + (" ..." if len(generated) > 6 else "")
        raise DataError(
            f"column(s) {', '.join(map(repr, clashes))} of the table have the name of a "
            f"feature driftloop makes for the project ({shown}): rename them (e.g. --data "
            f"\"SELECT * EXCLUDE ({first}), {first} AS my_{first} FROM 'table.csv'\") or "
            "drop them, then run init again"
        )


def calendar_features(stamps: pd.Series, names: Sequence[str] = CALENDAR_FEATURES) -> pd.DataFrame:
    """Calendar parts of UTC timestamps, as integers."""
    t = pd.to_datetime(stamps, utc=True)
    parts = {
        "hour": t.dt.hour,
        "day_of_week": t.dt.dayofweek,
        "month": t.dt.month,
        "day_of_year": t.dt.dayofyear,
    }
    unknown = [n for n in names if n not in parts]
    if unknown:
        raise ValueError(f"unknown calendar feature(s) {unknown}; known: {sorted(parts)}")
    return pd.DataFrame({n: parts[n].astype("int64").to_numpy() for n in names}, index=stamps.index)


def encode_categories(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Each value's position in ``categories`` (compared as text); -1 for unknown, NaN for
    missing."""
    lookup = {c: float(i) for i, c in enumerate(categories)}
    text = values.astype("string")
    codes = text.map(lambda v: lookup.get(v, -1.0) if v is not pd.NA else np.nan)
    return codes.to_numpy(dtype="float64", na_value=np.nan)


def activity_state_names(scales: Mapping[str, float] = ACTIVITY_SCALES) -> tuple[str, ...]:
    """The stored activity state: the time of the last event (epoch seconds), a decayed
    count of events per time scale, and a decayed amount sum at the longest scale."""
    longest = max(scales, key=lambda k: scales[k])
    return ("activity_time", *(f"activity_n_{k}" for k in scales), f"activity_amount_{longest}")


def activity_feature_names(
    amount: str, scales: Mapping[str, float] = ACTIVITY_SCALES
) -> tuple[str, ...]:
    """The real-time model features computed from the state at an event's time."""
    longest = max(scales, key=lambda k: scales[k])
    return (*(f"txn_rate_{k}" for k in scales), "seconds_since_last", f"{amount}_vs_avg_{longest}")


def activity_step(
    state: Sequence[float], when: float, amount: float, scales: Mapping[str, float]
) -> list[float]:
    """The state after an event at ``when`` (epoch seconds) of ``amount``: every count and
    the amount sum decay by exp(-elapsed / scale), then the event adds 1 (and its amount).
    A state whose time is NaN is empty (the entity's first event)."""
    taus = list(scales.values())
    last = state[0]
    if math.isnan(last):
        counts = [1.0] * len(taus)
        total = 0.0 if math.isnan(amount) else amount
    else:
        elapsed = max(when - last, 0.0)
        decays = [math.exp(-elapsed / tau) for tau in taus]
        counts = [n * d + 1.0 for n, d in zip(state[1:-1], decays, strict=True)]
        kept = state[-1] * math.exp(-elapsed / max(taus))
        total = kept + (0.0 if math.isnan(amount) else amount)
    return [when, *counts, total]


_EPOCH = pd.Timestamp(0, tz="UTC")


def _epoch(stamps: pd.Series) -> np.ndarray:
    """Seconds since 1970 of UTC times, whatever their unit (Feast returns microseconds)."""
    elapsed = pd.to_datetime(stamps, utc=True) - _EPOCH
    values: np.ndarray = (elapsed / pd.Timedelta(seconds=1)).to_numpy("float64")
    return values


def activity_history(
    events: pd.DataFrame,
    keys: Sequence[str],
    amount: str,
    scales: Mapping[str, float] = ACTIVITY_SCALES,
    timestamp: str = TIMESTAMP_COLUMN,
) -> pd.DataFrame:
    """The offline activity table: per event, the entity's state after it, valid from just
    after the event (``ACTIVITY_AFTER``), folded over each entity's events in time order
    with ``activity_step``: the step the server applies to each request."""
    names = activity_state_names(scales)
    frame = events[[*keys, timestamp, amount]].sort_values([*keys, timestamp], kind="stable")
    frame = frame.reset_index(drop=True)
    when = _epoch(frame[timestamp])
    value = pd.to_numeric(frame[amount], errors="coerce").to_numpy("float64")
    entity = pd.MultiIndex.from_frame(frame[list(keys)]).codes
    first = np.ones(len(frame), dtype=bool)
    if len(frame):
        first[1:] = np.any([np.diff(c) != 0 for c in entity], axis=0)
    empty = [math.nan] * len(names)
    rows = np.empty((len(frame), len(names)))
    state = empty
    for i in range(len(frame)):
        state = activity_step(empty if first[i] else state, when[i], value[i], scales)
        rows[i] = state
    out = frame[list(keys)].copy()
    out[timestamp] = frame[timestamp] + ACTIVITY_AFTER
    for j, name in enumerate(names):
        out[name] = rows[:, j]
    return out


def activity_online(
    states: pd.DataFrame,
    events: pd.DataFrame,
    keys: Sequence[str],
    amount: str,
    scales: Mapping[str, float] = ACTIVITY_SCALES,
    timestamp: str = TIMESTAMP_COLUMN,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The server's side: ``states`` holds each event's entity state as the online store
    had it (NaN when none), aligned with ``events``. Returns the state each event sees
    (earlier events of the same entity in this batch included, in order) and the rows to
    push: each entity's state after its last event here."""
    names = activity_state_names(scales)
    seen: dict[tuple[Any, ...], list[float]] = {}
    before = np.empty((len(events), len(names)))
    when = _epoch(events[timestamp])
    value = pd.to_numeric(events[amount], errors="coerce").to_numpy("float64")
    stored = states[list(names)].to_numpy("float64")
    latest: dict[tuple[Any, ...], int] = {}
    order = np.argsort(when, kind="stable")
    ids = list(events[list(keys)].itertuples(index=False, name=None))
    for i in order:
        key = ids[i]
        state = seen.get(key, list(stored[i]))
        before[i] = state
        seen[key] = activity_step(state, when[i], value[i], scales)
        latest[key] = int(i)
    seeing = pd.DataFrame(before, columns=list(names), index=events.index)
    pushed = pd.DataFrame([dict(zip(keys, k, strict=True)) for k in seen])
    last_time = [events[timestamp].iloc[latest[k]] for k in seen]
    pushed[timestamp] = pd.to_datetime(last_time, utc=True) + ACTIVITY_AFTER
    for j, name in enumerate(names):
        pushed[name] = [seen[k][j] for k in seen]
    return seeing, pushed


def activity_features(
    frame: pd.DataFrame,
    amount: str,
    scales: Mapping[str, float] = ACTIVITY_SCALES,
    timestamp: str = TIMESTAMP_COLUMN,
) -> pd.DataFrame:
    """The real-time features of events (rows with their time, their ``amount`` feature
    and the entity's activity state before them): decayed event counts per scale at the
    event's time, seconds since the last event, and the amount against the decayed mean
    amount. No state (a first event): counts 0, the other two missing."""
    names = activity_state_names(scales)
    longest = max(scales, key=lambda k: scales[k])
    last = frame[names[0]].to_numpy("float64")
    elapsed = np.maximum(_epoch(frame[timestamp]) - last, 0.0)
    out = pd.DataFrame(index=frame.index)
    for k, tau in scales.items():
        counts = frame[f"activity_n_{k}"].to_numpy("float64")
        out[f"txn_rate_{k}"] = np.nan_to_num(counts * np.exp(-elapsed / tau), nan=0.0)
    out["seconds_since_last"] = elapsed
    mean = frame[f"activity_amount_{longest}"].to_numpy("float64") / frame[
        f"activity_n_{longest}"
    ].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = frame[amount].to_numpy("float64") / mean
    out[f"{amount}_vs_avg_{longest}"] = np.where(np.isfinite(ratio), ratio, np.nan)
    return out


def load_repo(root: Path) -> ModuleType:
    """Import the project's ``feature_repo/features.py`` (a fresh import each call)."""
    path = root / REPO_DIRNAME / REPO_MODULE
    if not path.is_file():
        raise ConfigError(
            f"{path} is missing: this project's features are defined there; restore it, or "
            "make the project again with `driftloop init DIR --data ...`"
        )
    name = f"_driftloop_feature_repo_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    from driftloop.features.feast_import import import_feast

    import_feast()  # the module imports Feast: with its import-time side effects undone
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report where, never a bare traceback
        raise ConfigError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    required = (
        "ENTITY_KEYS",
        "TARGET",
        "EVENT_FEATURES",
        "HISTORY_FEATURES",
        "transform_events",
        "history_view",
        "feature_service",
    )
    missing = [n for n in required if not hasattr(module, n)]
    if missing:
        raise ConfigError(f"{path}: defines no {missing}; driftloop needs them (see its comments)")
    sys.modules.pop(name, None)
    return module
