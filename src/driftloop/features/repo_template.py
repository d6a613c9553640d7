"""The Feast repository ``driftloop init --data`` writes into a project: ours to write
once, the user's to read and edit afterwards."""

from __future__ import annotations

import pprint
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from driftloop.features.table import (
    ACTIVITY_SCALES,
    CALENDAR_FEATURES,
    REPO_DIRNAME,
    REPO_MODULE,
    activity_feature_names,
    activity_state_names,
    history_feature_names,
)

__all__ = ["RepoSpec", "write_repo"]

FEATURE_SERVICE = "model_features"


class RepoSpec:
    """What the repository declares, from the inferred schema."""

    def __init__(
        self,
        project: str,
        entity: Sequence[str],
        entity_types: Mapping[str, str],
        target: str,
        numeric: Sequence[str],
        categorical: Mapping[str, Sequence[str]],
        calendar: Sequence[str],
        delay: timedelta,
        windows: Sequence[timedelta],
        ttl: timedelta,
        activity_amount: str | None = None,
        activity_scales: Mapping[str, float] = ACTIVITY_SCALES,
        nullable: Sequence[str] = (),
    ) -> None:
        self.project = project
        self.entity = tuple(entity)
        self.entity_types = dict(entity_types)
        self.target = target
        self.numeric = tuple(numeric)
        self.categorical = {k: tuple(v) for k, v in categorical.items()}
        self.calendar = tuple(c for c in CALENDAR_FEATURES if c in calendar)
        self.delay = delay
        self.windows = tuple(windows)
        self.ttl = ttl
        if activity_amount is not None and activity_amount not in self.numeric:
            raise ValueError(f"the activity amount {activity_amount!r} is not a numeric field")
        self.activity_amount = activity_amount
        self.activity_scales = dict(activity_scales)
        unknown = [n for n in nullable if n not in self.numeric]
        if unknown:
            raise ValueError(f"nullable fields {unknown} are not numeric fields")
        self.nullable = tuple(nullable)


def _td(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"timedelta({unit}={seconds // size})"
    return f"timedelta(seconds={seconds})"


def render_module(spec: RepoSpec) -> str:
    """The text of ``feature_repo/features.py`` for ``spec``."""
    activity = _render_activity(spec) if spec.activity_amount else ""
    views = "history_view, activity_view" if activity else "history_view"
    return (
        _render_docstring(spec, bool(activity))
        + _render_settings(spec, bool(activity))
        + _render_history(spec)
        + f"""{activity}
feature_service = FeatureService(name="{FEATURE_SERVICE}", features=[{views}])
"""
    )


def _render_docstring(spec: RepoSpec, activity: bool) -> str:
    kinds = "Three" if activity else "Two"
    return f'''"""The features of driftloop project {spec.project!r}: an ordinary Feast repository.

Written once by `driftloop init --data`; yours to read and edit. driftloop imports this
module for training, serving, monitoring and replay, so a change here changes all of
them together (run `driftloop features apply` afterwards). `feast apply` run in this
folder registers the same objects.

{kinds} kinds of features:
- event features: computed from each event's own fields by `transform_events`, the one
  place they are defined. Training applies it to the stored events; the server applies it
  to each request's fields. Add your own transformations there (and their names to
  EVENT_FEATURES).
- history features: the entity's past targets as known at prediction time (a target is
  known LABEL_DELAY after its event), stored in Feast's offline store and served from
  its online store.{REALTIME_DOC if activity else ""}
"""
'''


def _render_settings(spec: RepoSpec, activity: bool) -> str:
    history = history_feature_names(spec.target, spec.windows)
    extra_import = ", PushSource" if activity else ""
    library = (
        "activity_features, activity_history, activity_online, calendar_features,\n"
        "    encode_categories, history_features,\n"
        if activity
        else "calendar_features, encode_categories, history_features\n"
    )
    return f'''
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource{extra_import}, ValueType
from feast.types import Float64

from driftloop.features.table import ({library})

PROJECT_DIR = Path(__file__).resolve().parent.parent

ENTITY_KEYS = {list(spec.entity)!r}
ENTITY_TYPES = {spec.entity_types!r}
TARGET = {spec.target!r}
LABEL_DELAY = {_td(spec.delay)}

# Fields each prediction request sends for an entity (the event's own columns).
NUMERIC = {pprint.pformat(list(spec.numeric), width=88, compact=True)}
CATEGORIES = {pprint.pformat(spec.categorical, width=88, compact=True)}
CALENDAR = {list(spec.calendar)!r}
REQUEST_FIELDS = NUMERIC + list(CATEGORIES)

EVENT_FEATURES = NUMERIC + list(CATEGORIES) + CALENDAR
INTEGER_FEATURES = CALENDAR
# Fields your table leaves empty in some rows: a request may omit them too (the model
# learned what a missing value means); any other missing field is refused.
NULLABLE_FEATURES = {list(spec.nullable)!r}

HISTORY_WINDOWS = [{", ".join(_td(w) for w in spec.windows)}]
HISTORY_FEATURES = {list(history)!r}


def transform_events(events: pd.DataFrame) -> pd.DataFrame:
    """Event features from the events' own fields (and `event_timestamp`, UTC)."""
    out = pd.DataFrame(index=events.index)
    for name in NUMERIC:
        out[name] = pd.to_numeric(events[name], errors="coerce").astype("float64")
    for name, categories in CATEGORIES.items():
        out[name] = encode_categories(events[name], categories)  # unknown -> -1
    out = out.join(calendar_features(events["event_timestamp"], CALENDAR))
    return out


def history_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The history table from the stored events (entity keys, event_timestamp, target)."""
    return history_features(events, ENTITY_KEYS, TARGET, LABEL_DELAY, HISTORY_WINDOWS)


'''


def _render_history(spec: RepoSpec) -> str:
    history = history_feature_names(spec.target, spec.windows)
    entities = "\n".join(
        f'{k} = Entity(name="{k}", join_keys=["{k}"], value_type=ValueType.'
        f"{'STRING' if spec.entity_types[k] == 'string' else 'INT64'})"
        for k in spec.entity
    )
    fields = ",\n        ".join(f'Field(name="{n}", dtype=Float64)' for n in history)
    return f'''{entities}

history_source = FileSource(
    name="{spec.project}_history",
    # DuckDB resolves a relative path from the working folder: anchor it here.
    path=str(PROJECT_DIR / "data" / "features" / "history.parquet"),
    timestamp_field="event_timestamp",
)

history_view = FeatureView(
    name="history",
    entities=[{", ".join(spec.entity)}],
    ttl={_td(spec.ttl)},
    schema=[
        {fields},
    ],
    source=history_source,
    online=True,
)

'''


REALTIME_DOC = """
- real-time features: how busy the entity has just been and how this event's amount
  compares with its usual, from its earlier events (their times and amounts, not their
  labels). They are known the moment an event happens, so the server keeps them current:
  it reads the entity's activity state from the online store, computes the request's
  features from it (`realtime_features`) and pushes the updated state (`update_activity`,
  a Feast push) before the next event. Training reads the same state point-in-time from
  the offline table that `activity_rows` folds from the stored events with the same step.
  Two code paths by nature (streaming and batch): `driftloop features skew` compares what
  the server served with the offline recomputation of the same events."""


def _render_activity(spec: RepoSpec) -> str:
    state = activity_state_names(spec.activity_scales)
    realtime = activity_feature_names(str(spec.activity_amount), spec.activity_scales)
    fields = ",\n        ".join(f'Field(name="{n}", dtype=Float64)' for n in state)
    return f'''
# Real-time features (see the top of this file).
ACTIVITY_AMOUNT = {spec.activity_amount!r}
ACTIVITY_SCALES = {spec.activity_scales!r}  # decay time constants, seconds
ACTIVITY_STATE = {list(state)!r}
REALTIME_FEATURES = {list(realtime)!r}


def activity_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Offline: each entity's activity state after each of its stored events."""
    return activity_history(events, ENTITY_KEYS, ACTIVITY_AMOUNT, ACTIVITY_SCALES)


def update_activity(
    states: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Online: the state each request's event sees, and the updated states to push."""
    return activity_online(states, events, ENTITY_KEYS, ACTIVITY_AMOUNT, ACTIVITY_SCALES)


def realtime_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Both: the real-time features of events from the state they see."""
    return activity_features(frame, ACTIVITY_AMOUNT, ACTIVITY_SCALES)


activity_source = FileSource(
    name="{spec.project}_activity",
    path=str(PROJECT_DIR / "data" / "features" / "activity.parquet"),
    timestamp_field="event_timestamp",
)

# The server pushes each event's updated state here (online); `features apply` writes the
# offline table from the stored events.
activity_push = PushSource(name="{spec.project}_activity_push", batch_source=activity_source)

activity_view = FeatureView(
    name="activity",
    entities=[{", ".join(spec.entity)}],
    ttl={_td(spec.ttl)},
    schema=[
        {fields},
    ],
    source=activity_push,
    online=True,
)
'''


def render_store_yaml(spec: RepoSpec) -> str:
    return f"""# Feast's own config for this folder, so `feast apply` / `feast ui` work here too.
# driftloop reads driftloop.yaml (features.online_store) and builds the same config.
project: {spec.project}
provider: local
registry: ../.driftloop/feast_registry.db
offline_store:
  type: duckdb
online_store:
  type: sqlite
  path: ../.driftloop/online_store.db
entity_key_serialization_version: 3
"""


def write_repo(root: Path, spec: RepoSpec) -> Path:
    """Write ``feature_repo/`` under ``root`` (a staging folder); returns the module path."""
    folder = root / REPO_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    module = folder / REPO_MODULE
    module.write_text(render_module(spec), encoding="utf-8")
    (folder / "feature_store.yaml").write_text(render_store_yaml(spec), encoding="utf-8")
    return module
