"""The layout contract, run against every implementation on a real project of each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from tests.conftest import SMALL_SCENARIO

from driftloop.app.scaffold import create_fraud_project, create_project
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.layout import ProjectLayout, project_layout
from driftloop.features.retail import RetailLayout
from driftloop.features.table_layout import TableLayout
from driftloop.project import Project


@pytest.fixture(scope="module", params=["retail", "fraud"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp(request.param) / "proj"
    if request.param == "fraud":
        return create_fraud_project(root, 3, {"n_cards": 40, "days": 62, "shift_after_days": 40})
    return create_project(root, "retail", 3, SMALL_SCENARIO)


def test_project_layout_picks_the_implementation_the_config_names(project: Project) -> None:
    layout = project_layout(project)
    assert isinstance(layout, ProjectLayout)
    expected = RetailLayout if project.config.data is None else TableLayout
    assert type(layout) is expected


def test_events_hold_the_keys_and_the_label(project: Project) -> None:
    layout = project_layout(project)
    events = layout.read_events()
    assert not events.empty and layout.raw_events_path.is_file()
    assert {*layout.entity_keys, layout.label} <= set(events.columns)
    assert set(layout.entity_types) == set(layout.entity_keys)
    days = layout.event_days(events)
    assert len(days) == len(events) and days.notna().all()


def test_event_rows_lead_with_keys_time_and_label(project: Project) -> None:
    layout = project_layout(project)
    events = layout.read_events().head(50)
    rows = layout.event_rows(events)
    head = [*layout.entity_keys, TIMESTAMP_COLUMN, layout.label]
    assert list(rows.columns[: len(head)]) == head and len(rows) == len(events)
    assert str(rows[TIMESTAMP_COLUMN].dt.tz) == "UTC"
    extra = set(rows.columns) - set(head)
    assert extra <= set(layout.all_features)  # what the event itself carries


def test_offline_features_are_the_views_features(project: Project) -> None:
    layout = project_layout(project)
    events = layout.read_events()
    rows = layout.feature_rows(events)
    stored = [n for names in layout.views().values() for n in names]
    assert {*layout.entity_keys, TIMESTAMP_COLUMN} <= set(rows.columns)
    history = set(stored) - set(layout.activity_state)  # the state is no model feature
    assert history <= set(layout.all_features) and history <= set(rows.columns)
    assert set(layout.side_tables(events)) == (
        {project.root / "data" / "features" / "activity.parquet"}
        if layout.activity_state
        else set()
    )
    first = tuple(events[list(layout.entity_keys)].iloc[0])
    one = layout.feature_rows(events, [first])
    assert 0 < len(one) < len(rows)


def test_a_request_with_nothing_sent_keeps_the_stored_rows(project: Project) -> None:
    layout = project_layout(project)
    events = layout.read_events()
    keys = [tuple(events[list(layout.entity_keys)].iloc[0])]
    stored = pd.DataFrame({TIMESTAMP_COLUMN: [pd.Timestamp("2019-03-01", tz="UTC")]})
    pushed: list[Any] = []
    sent: list[dict[str, Any]] = [{f: events.iloc[0][f] for f in layout.request_fields}]
    frame = layout.online_frame(
        stored, keys, sent, datetime(2019, 3, 1, tzinfo=UTC), lambda s, r: pushed.append(s)
    )
    assert len(frame) == 1 and frame[TIMESTAMP_COLUMN].notna().all()
    assert len(pushed) == (1 if layout.activity_state else 0)


def test_the_offline_table_is_apart_from_the_raw_events(project: Project) -> None:
    layout = project_layout(project)
    assert layout.offline_path != layout.raw_events_path
    assert layout.offline_path.parent == project.root / "data" / "features"
