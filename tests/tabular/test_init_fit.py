"""init writes a project that runs: a user's column named like a derived calendar
feature is used (not derived twice), one named like a history feature is refused naming
it, and the gate holds nothing absolute the table contradicts (a growing log target)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.app.fitting import (
    SPARSE_MIN_GAIN,
    WEEKLY_CHALLENGER_DAYS,
    loop_settings,
    table_gate,
)
from driftloop.app.scaffold import create_table_project
from driftloop.config.loop import DEFAULT_CHALLENGER_EVERY_DAYS
from driftloop.errors import DataError
from driftloop.features.store import FeatureStore
from driftloop.features.table import load_repo
from driftloop.pipeline.train import run_training
from driftloop.registry import open_registry
from driftloop.serving.server import BackgroundServer, build_context


def growing_log_table(n_entities: int = 8, days: int = 130, seed: int = 5) -> pd.DataFrame:
    """Daily log sales per shop (mostly negative), growing 0.012 a day, higher at weekends;
    the table carries its own day_of_week column."""
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2023-01-02") + pd.to_timedelta(np.arange(days), unit="D")
    dow = stamps.dayofweek.to_numpy()
    frames = []
    for shop in range(n_entities):
        temp = rng.normal(15, 5, days).round(2)
        level = np.log(rng.uniform(0.05, 0.5))
        log_sales = level + 0.012 * np.arange(days) + 0.03 * temp + 0.2 * (dow >= 5)
        frames.append(
            pd.DataFrame(
                {
                    "shop": shop,
                    "day": stamps.strftime("%Y-%m-%d"),
                    "temp": temp,
                    "day_of_week": dow,
                    "log_sales": (log_sales + rng.normal(0, 0.1, days)).round(4),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_v1_of_a_growing_log_target_with_its_own_day_of_week_becomes_champion(
    tmp_path: Path,
) -> None:
    table = growing_log_table()
    project, schema = create_table_project(
        tmp_path / "p", "generated", ["shop"], "day", "log_sales", frame=table
    )
    module = load_repo(project.root)
    assert module.EVENT_FEATURES.count("day_of_week") == 1 and "day_of_week" in module.NUMERIC
    assert "day_of_week" not in module.CALENDAR
    assert any("'day_of_week' has the name of a calendar feature" in c for c in schema.checks)
    gate = project.config.training.gate
    assert gate.max_abs_bias is None and gate.max_metric is None
    assert gate.min_prediction is not None and gate.min_prediction < table["log_sales"].min()
    FeatureStore(project).apply()
    result = run_training(project, open_registry(project), actor="tests")
    assert result.alias == "champion", result.gate.summary()
    smallest = next(c for c in result.gate.checks if c.name == "min_prediction")
    assert smallest.value < 0.0  # the former absolute floor (0.0) rejected this sane model


def test_a_column_named_like_a_history_feature_is_refused_naming_it(tmp_path: Path) -> None:
    table = growing_log_table().rename(columns={"temp": "log_sales_last"})
    with pytest.raises(
        DataError,
        match=r"'log_sales_last' of the table have the name of a "
        r"feature driftloop makes.*rename them",
    ):
        create_table_project(tmp_path / "p", "generated", ["shop"], "day", "log_sales", frame=table)
    assert not (tmp_path / "p").exists()


def test_the_gate_floor_comes_from_the_targets_range() -> None:
    assert table_gate("regression", (-2.5, 1.5))["min_prediction"] == -6.5
    assert table_gate("regression", (0.0, 120.0))["min_prediction"] == -120.0
    assert table_gate("regression", None)["min_prediction"] is None
    classification = table_gate("classification", (0.0, 1.0))
    assert classification["min_prediction"] == 0.0 and classification["max_abs_bias"] is None


def test_a_field_the_table_leaves_empty_may_be_missing_when_served(tmp_path: Path) -> None:
    """A column with empty cells (last month's listings, unknown for a city's first month)
    is declared nullable: the model learns what missing means and a request may send null
    for it; a field the table always fills is still refused when missing."""
    table = growing_log_table()
    table["temp"] = table["temp"].where(table.index % 9 != 0)
    project, _ = create_table_project(
        tmp_path / "p", "generated", ["shop"], "day", "log_sales", frame=table
    )
    module = load_repo(project.root)
    assert module.NULLABLE_FEATURES == ["temp"]
    store = FeatureStore(project)
    store.apply()
    result = run_training(project, open_registry(project), actor="tests")
    assert result.alias == "champion", result.gate.summary()
    store.materialize(pd.Timestamp("2023-05-01", tz="UTC").to_pydatetime())
    ctx = build_context(project, registry=open_registry(project))
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as client:
        entity = {"shop": 1, "temp": None, "day_of_week": 2}
        answer = client.post("/v1/predict", json={"event_time": "2023-05-01", "entities": [entity]})
        assert answer.status_code == 200, answer.text
        assert np.isfinite(answer.json()["predictions"][0]["prediction"])
        refused = client.post(
            "/v1/predict",
            json={"event_time": "2023-05-01", "entities": [{**entity, "day_of_week": None}]},
        )
        assert refused.status_code == 422 and "day_of_week" in refused.text, refused.text


def test_a_sparse_table_counts_shadow_answers_in_its_canary_a_busy_one_does_not(
    tmp_path: Path,
) -> None:
    """One event a day: a 10 % canary slice sees a request every ten days and cannot reach
    min_requests by its deadline, so its steps count the challenger's shadow answers."""
    sparse, _ = create_table_project(
        tmp_path / "one", "one", ["shop"], "day", "log_sales", frame=growing_log_table(1, days=1100)
    )
    rollout = sparse.config.rollout
    # the challenger answers each of the one request a day: three days make a step
    assert rollout.paired.count_shadow and rollout.min_requests == 3
    # every step would judge the same answers: one judged step, then full traffic
    assert rollout.steps == (10.0, 100.0)
    # 7 rows a week, 30 to judge drift: a challenger every week
    assert sparse.config.loop.challenger_every_days == WEEKLY_CHALLENGER_DAYS
    assert rollout.max_duration_s <= 60 * 86400 < 10 / 0.1 * 86400
    busy, _ = create_table_project(
        tmp_path / "eight",
        "eight",
        ["shop"],
        "day",
        "log_sales",
        frame=growing_log_table(8, days=140),
    )
    assert not busy.config.rollout.paired.count_shadow
    assert busy.config.rollout.steps == (10.0, 50.0, 100.0)
    assert busy.config.loop.challenger_every_days == DEFAULT_CHALLENGER_EVERY_DAYS


def test_a_weekly_challenger_only_for_a_daily_table_too_sparse_to_judge_a_week() -> None:
    day = timedelta(days=1)
    weekly = {
        "challenger_every_days": WEEKLY_CHALLENGER_DAYS,
        "challenger_min_gain": SPARSE_MIN_GAIN,
        "drift_min_gain": SPARSE_MIN_GAIN,
        "deploy_significance": None,
    }
    assert loop_settings(7, 30, day) == weekly
    assert loop_settings(29.9, 30, timedelta(0)) == weekly
    assert loop_settings(30, 30, day) == {}  # a week is judged: the default, every 56 days
    assert loop_settings(10, 30, 30 * day) == {}  # monthly: a week brings no new rows
