"""A user's own table: init --data writes an editable Feast repository and a fitted
config; train, serve and monitor work on it unchanged; bad input exits 2 writing nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.tabular.conftest import init_sensors
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.features.layout import project_layout
from driftloop.features.skew import PredictionLogSource, check_skew
from driftloop.features.store import FeatureStore
from driftloop.features.table import load_repo
from driftloop.features.training_set import build_training_set
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.serving.server import BackgroundServer, build_context

runner = CliRunner()


@pytest.fixture(scope="module")
def table_project(tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path) -> Project:
    root = tmp_path_factory.mktemp("table") / "proj"
    result = init_sensors(root, sensor_csv)
    assert result.exit_code == 0, result.output
    return Project.load(root)


def test_init_writes_an_editable_feast_repo_and_a_fitted_config(table_project: Project) -> None:
    cfg = table_project.config
    assert cfg.data is not None and cfg.data.entity == ("sensor",) and cfg.data.target == "demand"
    assert cfg.training.task == "regression" and cfg.labels.delay_days == 1
    module = load_repo(table_project.root)
    assert module.ENTITY_TYPES == {"sensor": "string"}
    assert module.NUMERIC == ["temp", "load"] and list(module.CATEGORIES) == ["zone"]
    assert module.HISTORY_FEATURES[0] == "demand_last"
    assert (table_project.root / "feature_repo" / "feature_store.yaml").is_file()
    events = project_layout(table_project).read_events()
    assert len(events) == 9600 and str(events["event_timestamp"].dt.tz) == "UTC"


def test_training_set_joins_history_known_before_each_event(table_project: Project) -> None:
    store = FeatureStore(table_project)
    store.apply()
    # Feast's apply adds the entity column to the view's schema: never a feature here
    assert store.stored_features == tuple(load_repo(table_project.root).HISTORY_FEATURES)
    frame = build_training_set(store, date(2023, 3, 1), date(2023, 3, 10))
    assert set(store.layout.all_features) <= set(frame.columns)
    events = (
        project_layout(table_project)
        .read_events()
        .set_index(["sensor", "event_timestamp"])["demand"]
    )
    row = frame.iloc[0]
    # demand_last is the sensor's previous day's demand (known one day later)
    previous = events[(row["sensor"], row["event_timestamp"] - pd.Timedelta(days=1))]
    assert row["demand_last"] == pytest.approx(previous)


def test_train_and_serve_a_table_project_over_http(table_project: Project) -> None:
    FeatureStore(table_project).apply()
    result = runner.invoke(
        app, ["train", "--project", str(table_project.root), "--as-of", "2023-05-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    store = FeatureStore(table_project)
    store.materialize(pd.Timestamp("2023-05-01", tz="UTC").to_pydatetime())
    registry = open_registry(table_project)
    ctx = build_context(table_project, registry=registry)
    events = project_layout(table_project).read_events()
    day = pd.Timestamp("2023-05-01", tz="UTC")
    recorded = events[(events["sensor"] == "s01") & (events["event_timestamp"] == day)]
    fields = recorded[["temp", "load", "zone"]].iloc[0].to_dict()
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as client:
        body = {
            "event_time": "2023-05-01",
            "entities": [
                {"sensor": "s01", **fields},
                {"sensor": "new-sensor", "temp": 17.5, "load": 0.4, "zone": "west"},
            ],
        }
        answer = client.post("/v1/predict", json=body)
        assert answer.status_code == 200, answer.text
        known, unknown = answer.json()["predictions"]
        assert known["sensor"] == "s01" and known["prediction"] > 0
        assert unknown["sensor"] == "new-sensor"  # no history yet: served on its own fields
        missing = client.post("/v1/predict", json={"entities": [{"sensor": "s01", "temp": 1.0}]})
        assert missing.status_code == 422 and "lacks ['load', 'zone']" in missing.text
        wrong = client.post(
            "/v1/predict",
            json={"entities": [{"sensor": "s01", "temp": "hot", "load": 0.4, "zone": "north"}]},
        )
        assert wrong.status_code == 422 and "entities[0].temp must be a finite number" in wrong.text
    # every feature s01's event was served with is the training pipeline's for that event;
    # the new sensor's event is in no stored table, so it has no offline twin
    report = check_skew(store, PredictionLogSource(store, 100), table_project.config.features.skew)
    assert report.rows == 2 and report.unmatched_rows == 1 and not report.passed
    assert {f.feature for f in report.features} == set(store.layout.all_features)
    assert all(f.compared == 1 and f.mismatches == 0 for f in report.features)


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (lambda t: t.drop(columns=["demand"]), [], "demand"),
        (lambda t: t.assign(day=t["day"].where(t.index != 5, "not a day")), [], "day"),
        (lambda t: pd.concat([t, t.head(3)]), [], "repeat an"),
        (lambda t: t.assign(demand=t["demand"].where(t.index != 9)), [], "demand"),
        (lambda t: t.head(200), [], "too small|rows"),
        (lambda t: t, ["--label-delay", "36h"], "whole days"),
        (lambda t: t, ["--task", "ranking"], "--task"),
    ],
)
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(
    tmp_path: Path, sensor_csv: Path, change: Any, extra: list[str], message: str
) -> None:
    source = tmp_path / "bad.csv"
    change(pd.read_csv(sensor_csv)).to_csv(source, index=False)
    result = init_sensors(tmp_path / "proj", source, *extra)
    assert result.exit_code == 2, result.output
    assert pd.Series([result.output]).str.contains(message, regex=True).item(), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "proj").exists()


def test_a_batch_of_events_is_answered_as_each_event_alone_with_one_lookup_per_time(
    table_project: Project,
) -> None:
    store = FeatureStore(table_project)
    store.apply()
    registry = open_registry(table_project)
    if not registry.versions():
        result = runner.invoke(
            app, ["train", "--project", str(table_project.root), "--as-of", "2023-05-01", "--json"]
        )
        assert result.exit_code == 0, result.output
    store.materialize(pd.Timestamp("2023-05-02", tz="UTC").to_pydatetime())
    events = project_layout(table_project).read_events()
    bodies, fields = [], ("sensor", "temp", "load", "zone")
    for day, sensors in (("2023-05-01", 6), ("2023-05-02", 2)):
        stamp = pd.Timestamp(day, tz="UTC")
        rows = events[events["event_timestamp"] == stamp].sort_values("sensor").head(sensors)
        for row in rows.to_dict("records"):
            bodies.append(
                {
                    "event_time": day,
                    "request_id": f"e-{day}-{row['sensor']}",
                    "routing_key": f"{row['sensor']}/{day}",
                    "entities": [{k: row[k] for k in fields}],
                }
            )
    ctx = build_context(table_project, registry=registry)
    lookups: list[Any] = []
    features = ctx.feature_store()
    online = features.online

    def counted(keys: Any) -> Any:  # the real lookup, counted
        lookups.append(keys)
        return online(keys)

    features.online = counted
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as client:
        alone = []
        for b in bodies:
            one = client.post(
                "/v1/predict",
                json={k: v for k, v in b.items() if k != "request_id"},
                headers={"X-Request-Id": b["request_id"]},
            )
            assert one.status_code == 200, one.text
            alone.append(one.json()["predictions"])
        lookups.clear()
        batch = client.post("/v1/predict/batch", json={"requests": bodies})
    assert batch.status_code == 200, batch.text
    assert [r["predictions"] for r in batch.json()["responses"]] == alone
    assert len(lookups) == 2  # one online lookup per event time, not one per event
