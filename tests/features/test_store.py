"""The Feast-backed store on a real DuckDB offline store and SQLite online store."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import DataError, SkewDetected
from driftloop.features.engineering import compute_features
from driftloop.features.layout import project_layout
from driftloop.features.skew import OnlineSampleSource, check_skew
from driftloop.features.store import FeatureStore, utc_midnight
from driftloop.features.training_set import build_training_set, label_rows
from driftloop.project import Project


def assert_same_values(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        left = a[col].to_numpy(dtype="float64")
        right = b[col].to_numpy(dtype="float64")
        np.testing.assert_array_equal(left, right, err_msg=col)


def test_point_in_time_join_uses_nothing_after_the_row_time(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    sales = project_layout(applied_project).read_events()
    features = list(store.layout.all_features)
    for day in (date(2019, 3, 10), date(2019, 6, 20)):
        t = pd.Timestamp(day)
        rows = label_rows(store, sales, day, day)
        joined = store.historical(rows)
        # Recompute in a world where nothing after the row time exists and the
        # row day's own sales are garbage: the joined values must not change.
        past = sales[sales["date"] <= t].copy()
        past.loc[past["date"] == t, "units"] = 10_000
        expected = compute_features(past, store.layout)
        expected = expected[expected["event_timestamp"] == t.tz_localize("UTC")]
        expected = expected.sort_values(["store_id", "product_id"]).reset_index(drop=True)
        assert len(joined) == len(expected) == 12
        assert_same_values(joined, expected, features)


def test_row_between_days_gets_the_earlier_days_features(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    noon = pd.Timestamp("2019-04-02 12:00", tz="UTC")
    rows = pd.DataFrame({"store_id": [1], "product_id": [2], "event_timestamp": [noon]})
    joined = store.historical(rows)
    daily = store.compute([(1, 2)])
    expected = daily[daily["event_timestamp"] == pd.Timestamp("2019-04-02", tz="UTC")]
    assert_same_values(joined, expected.reset_index(drop=True), list(store.layout.all_features))


def test_online_value_equals_offline_value_for_same_entity_and_time(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    entities = store.entities()
    online = store.online(entities).frame
    assert len(online) == 12
    at = online["event_timestamp"].iloc[0]
    assert (online["event_timestamp"] == at).all()
    rows = online[["store_id", "product_id", "event_timestamp"]]
    offline = store.historical(rows)
    online = online.sort_values(["store_id", "product_id"]).reset_index(drop=True)
    offline = offline.sort_values(["store_id", "product_id"]).reset_index(drop=True)
    assert_same_values(online, offline, list(store.layout.all_features))


def test_unknown_entity_is_reported_missing_online(applied_project: Any) -> None:
    rows = FeatureStore(applied_project).online([(0, 0), (99, 99)])
    assert rows.missing == ((99, 99),)
    assert len(rows.frame) == 1


def test_skew_check_passes_when_online_came_from_the_same_function(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    cfg = applied_project.config.features.skew
    report = check_skew(store, OnlineSampleSource(store, 50), cfg)
    assert report.passed
    assert report.rows == 12 and report.unmatched_rows == 0
    assert all(f.mismatches == 0 and f.compared == 12 for f in report.features)


def test_a_different_online_transformation_is_caught(project_copy: Any) -> None:
    store = FeatureStore(project_copy)
    last = store.compute()
    last = last[last["event_timestamp"] == last["event_timestamp"].max()].copy()
    # A serving path that averages 7 days including today's (unknown) sales.
    last["units_mean_7d"] = last["units_mean_7d"] * 1.05
    store.write_online(last)
    report = check_skew(store, OnlineSampleSource(store, 50), project_copy.config.features.skew)
    assert not report.passed
    skewed = {f.feature: f for f in report.features if f.mismatches}
    assert set(skewed) == {"units_mean_7d"}
    assert skewed["units_mean_7d"].mismatch_rate == 1.0
    assert skewed["units_mean_7d"].max_abs_diff > 0.1


def test_materialize_until_an_earlier_day_serves_that_days_rows(project_copy: Any) -> None:
    store = FeatureStore(project_copy)
    store.materialize(utc_midnight(pd.Timestamp("2019-05-01")))
    online = store.online([(0, 1)]).frame
    assert online["event_timestamp"].iloc[0] == pd.Timestamp("2019-05-01", tz="UTC")


def test_cached_online_rows_follow_every_write_to_the_store(project_copy: Any) -> None:
    # The server reads the same entities over and over: rows are cached until the online
    # store's files change, by this process (materialize) or any other.
    store = FeatureStore(project_copy)
    reader = FeatureStore(project_copy)  # another handle, as the server holds its own
    store.materialize(utc_midnight(pd.Timestamp("2019-05-01")))
    first = reader.online([(0, 1), (1, 2)]).frame
    again = reader.online([(1, 2), (0, 1)]).frame
    assert list(again["product_id"]) == [2, 1]  # in the order asked, from the cache
    assert again.set_index("product_id").loc[1].equals(first.set_index("product_id").loc[1])
    store.materialize(utc_midnight(pd.Timestamp("2019-05-02")))
    moved = reader.online([(0, 1)]).frame
    assert moved["event_timestamp"].iloc[0] == pd.Timestamp("2019-05-02", tz="UTC")
    assert reader.online([(99, 99)]).missing == ((99, 99),)  # misses are never cached


def test_incremental_writes_put_the_store_in_wal_mode_and_readers_see_each_one(
    project_copy: Any,
) -> None:
    import sqlite3
    from datetime import timedelta

    store, reader = FeatureStore(project_copy), FeatureStore(project_copy)
    first = utc_midnight(pd.Timestamp("2019-05-01"))
    store.materialize(first, since=first - timedelta(days=7))
    assert reader.online([(0, 1)]).frame["event_timestamp"].iloc[0] == pd.Timestamp(first)
    con = sqlite3.connect(project_copy.online_store_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    second = first + timedelta(days=1)
    store.materialize(second, since=first + timedelta(microseconds=1))
    assert reader.online([(0, 1)]).frame["event_timestamp"].iloc[0] == pd.Timestamp(second)


def test_a_copied_projects_feast_is_shared_only_once_its_sources_point_at_the_copy(
    applied_project: Any, tmp_path: Path
) -> None:
    # The server's worker threads all open Feast at once on the first requests: one that
    # found the store while another re-registered the copy's sources read the registry
    # with its feature service deleted for the re-add (a 503 under load).
    shutil.copytree(applied_project.root, tmp_path / "shop")
    copy = Project.load(tmp_path / "shop")
    visible: list[Any] = []

    class Watched(FeatureStore):
        def _repoint_sources(self, store: Any) -> None:
            visible.append(self._store)  # what a lookup in another thread would use now
            super()._repoint_sources(store)

    store = Watched(copy)
    assert store.online([(0, 1)]).missing == ()
    assert visible == [None]
    paths = {s.path for s in store._feast().list_data_sources() if hasattr(s, "path")}
    assert paths and all(p.startswith(str(tmp_path / "shop")) for p in paths)


def test_training_set_for_a_range_without_data_names_the_range(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    with pytest.raises(DataError, match=r"no events between 2030-01-01 and 2030-02-01.*covers"):
        build_training_set(store, date(2030, 1, 1), date(2030, 2, 1))


def test_training_set_for_an_unknown_entity_names_it(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    with pytest.raises(DataError, match="store_id=42, product_id=0 has no rows"):
        build_training_set(store, date(2019, 3, 1), date(2019, 3, 5), [(42, 0)])


def test_training_set_rows_carry_label_and_every_feature(applied_project: Any) -> None:
    store = FeatureStore(applied_project)
    frame = build_training_set(store, date(2019, 3, 1), date(2019, 3, 31), [(2, 3)])
    assert len(frame) == 31
    assert frame[list(store.layout.all_features)].notna().all().all()
    assert frame["units"].ge(0).all()


def test_skew_error_class_is_a_failed_check() -> None:
    assert SkewDetected("x").exit_code == 1


def test_incremental_online_writes_leave_the_rows_feasts_materialize_leaves(
    applied_project: Any, tmp_path: Path
) -> None:
    # materialize(until, since=...) writes the interval's newest row per entity straight to
    # the online store (features/online_write.py); Feast's materialize of the same window
    # must leave the same online rows, values and feature times alike.
    from tests.conftest import copy_project

    until = utc_midnight(pd.Timestamp("2019-05-03"))
    ttl = pd.Timedelta(days=applied_project.config.features.ttl_days)
    by_feast = FeatureStore(copy_project(applied_project, tmp_path / "feast"))
    by_feast.materialize(until)  # Feast's materialize of (until - ttl, until]
    direct = FeatureStore(copy_project(applied_project, tmp_path / "direct"))
    direct.materialize(until, since=until - ttl)
    entities = by_feast.entities()
    expected = by_feast.online(entities)
    found = direct.online(entities)
    assert found.missing == expected.missing == ()
    pd.testing.assert_frame_equal(found.frame, expected.frame)
    assert (found.frame["event_timestamp"] == pd.Timestamp("2019-05-03", tz="UTC")).all()
