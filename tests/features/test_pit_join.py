"""The in-memory point-in-time join returns Feast's historical retrieval, frame for frame."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from tests.tabular.conftest import init_sensors, sensor_table

from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.pit_join import join_in_memory
from driftloop.features.store import FeatureStore
from driftloop.features.training_set import label_rows
from driftloop.project import Project, atomic_write_parquet


def in_memory_and_feast(store: FeatureStore, rows: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """(the in-memory join or None, Feast's retrieval as ``historical`` orders it)."""
    feast = store._feast()
    service = feast.get_feature_service(store.layout.feature_service)
    mine = join_in_memory(feast, service, rows, TIMESTAMP_COLUMN, {})
    theirs = store.layout.with_realtime(store._feast_historical(rows.copy()))
    return mine, theirs


def assert_same_as_feast(store: FeatureStore, rows: pd.DataFrame) -> pd.DataFrame:
    mine, theirs = in_memory_and_feast(store, rows)
    assert mine is not None, "a plain feature service is joined in memory"
    joined = store.historical(rows)
    order = list(joined.columns)
    expected = theirs.sort_values([TIMESTAMP_COLUMN, *store.keys], kind="stable")[order]
    pd.testing.assert_frame_equal(joined, expected.reset_index(drop=True), check_exact=True)
    return joined


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2019, 1, 1), date(2019, 1, 20)),  # the first days: rows beyond the TTL miss
        (date(2019, 2, 1), date(2019, 7, 19)),
    ],
)
def test_retail_training_rows_equal_feasts(applied_project: Any, start: date, end: date) -> None:
    store = FeatureStore(applied_project)
    rows = label_rows(store, store.layout.read_events(), start, end)
    joined = assert_same_as_feast(store, rows)
    if start == date(2019, 1, 1):
        assert joined["units_lag_28"].isna().any()


def test_rows_between_days_and_before_the_data_equal_feasts(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    stamps = pd.to_datetime(["2018-12-30 12:00", "2019-03-03 17:30", "2019-03-10 00:00"], utc=True)
    rows = pd.DataFrame({"store_id": [0, 1, 2], "product_id": [3, 0, 1], "event_timestamp": stamps})
    joined = assert_same_as_feast(store, rows)
    assert joined.loc[0, ["units_lag_1", "price"]].isna().all()  # before the first day
    assert joined["promo"].dtype == "float64"  # an integer feature some rows miss, as Feast


def test_repeated_entity_rows_go_to_feast(applied_project: Any) -> None:
    """Feast breaks ties between equal entity rows in no fixed order: its own join runs."""
    store = FeatureStore(applied_project)
    rows = label_rows(store, store.layout.read_events(), date(2019, 3, 1), date(2019, 3, 2))
    twice = pd.concat([rows, rows], ignore_index=True)
    mine, _ = in_memory_and_feast(store, twice)
    assert mine is None
    assert len(store.historical(twice)) == 2 * len(rows)


@pytest.fixture(scope="module")
def sensor_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("pit")
    source = folder / "sensors.csv"
    sensor_table(n_entities=12, days=120).to_csv(source, index=False)
    result = init_sensors(folder / "proj", source)
    assert result.exit_code == 0, result.output
    project = Project.load(folder / "proj")
    FeatureStore(project).apply()
    return project


def test_a_table_projects_rows_with_text_keys_and_event_features_equal_feasts(
    sensor_project: Project,
) -> None:
    store = FeatureStore(sensor_project)
    events = store.layout.read_events()
    days = store.layout.event_days(events)
    rows = label_rows(store, events, days.min(), days.max())
    assert rows["sensor"].dtype == object and len(rows.columns) > 3
    assert_same_as_feast(store, rows)


def test_a_rewritten_offline_table_is_read_again(sensor_project: Project) -> None:
    store = FeatureStore(sensor_project)
    events = store.layout.read_events()
    days = store.layout.event_days(events)
    rows = label_rows(store, events, days.max(), days.max())
    before = store.historical(rows)
    name = store.stored_features[0]
    table = pd.read_parquet(store.layout.offline_path)
    atomic_write_parquet(table.assign(**{name: table[name] + 1.0}), store.layout.offline_path)
    try:
        after = assert_same_as_feast(store, rows)
        assert (after[name] == before[name] + 1.0).all()
    finally:
        store.apply()


def test_a_real_time_projects_rows_equal_feasts(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The fraud scenario: an activity view fed by a push source, joined from its offline
    table, and the real-time features computed from each row's state after the join."""
    from driftloop.app.scaffold import create_fraud_project

    small = {"n_cards": 40, "days": 70, "shift_after_days": 50, "txn_per_card_day": 0.5}
    project = create_fraud_project(tmp_path_factory.mktemp("rt") / "fraud", 3, small)
    store = FeatureStore(project)
    store.apply()
    events = store.layout.read_events()
    days = store.layout.event_days(events)
    assert_same_as_feast(store, label_rows(store, events, days.min(), days.max()))
