"""The spec's Q3: real-time features served over HTTP equal the training pipeline's, and
the skew check names the feature when an online transformation differs from the offline
one, or when a client sends a field in other units."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd
import pytest

from driftloop.app.scaffold import create_fraud_project
from driftloop.features.layout import project_layout
from driftloop.features.skew import PredictionLogSource, check_skew
from driftloop.features.store import FeatureStore
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.serving.server import BackgroundServer, build_context

AS_OF = pd.Timestamp("2025-03-10", tz="UTC")  # v1 learns days 30-57 (after the warm-up)

# A streaming job written apart from the batch pipeline: its "24h" window is 12 hours.
SKEWED_STEP = """

def update_activity(states, events):
    scales = {**ACTIVITY_SCALES, "24h": 12 * 3600.0}
    return activity_online(states, events, ENTITY_KEYS, ACTIVITY_AMOUNT, scales)
"""


@pytest.fixture(scope="module")
def served_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A small fraud project, v1 trained as of AS_OF."""
    root = tmp_path_factory.mktemp("fraud") / "p"
    small = {"n_cards": 150, "days": 80, "shift_after_days": 60, "compromised_per_1000_cards": 20.0}
    project = create_fraud_project(root, seed=2, overrides=small)
    store = FeatureStore(project)
    store.apply()
    result = run_training(project, open_registry(project), AS_OF.date(), actor="test")
    assert result.gate.passed, result.gate.summary()
    return project


def _serve(
    project: Project, day: pd.Timestamp, change: Any = None, materialize: bool = True
) -> int:
    """One day's events through a server, in time order, one request each, after the
    day's materialization (the labels that arrived at midnight)."""
    if materialize:
        FeatureStore(project).materialize(day.to_pydatetime())
    events = project_layout(project).read_events()
    todays = events[
        (events["event_timestamp"] >= day)
        & (events["event_timestamp"] < day + pd.Timedelta(days=1))
    ]
    fields = ["amount", "merchant_category", "channel", "distance_km"]
    ctx = build_context(project, registry=open_registry(project))
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as client:
        for row in todays.to_dict("records"):
            item = {"card_id": row["card_id"], **{f: row[f] for f in fields}}
            if change is not None:
                item = change(item)
            body = {"event_time": row["event_timestamp"].isoformat(), "entities": [item]}
            answer = client.post("/v1/predict", json=body)
            assert answer.status_code == 200, answer.text
            assert 0.0 <= answer.json()["predictions"][0]["prediction"] <= 1.0
    return len(todays)


def _check(project: Project, since: datetime) -> dict[str, tuple[int, int]]:
    store = FeatureStore(project)
    report = check_skew(
        store,
        PredictionLogSource(store, 100_000, since=since.isoformat()),
        project.config.features.skew,
    )
    assert report.unmatched_rows == 0
    return {f.feature: (f.compared, f.mismatches) for f in report.features}


def test_served_real_time_features_equal_the_offline_ones(served_project: Project) -> None:
    since = datetime.now(UTC)
    n = _serve(served_project, AS_OF)
    found = _check(served_project, since)
    layout = project_layout(served_project)
    assert set(found) == set(layout.all_features)  # event, history and real-time features
    assert all(compared == n for compared, _ in found.values())
    assert {f: m for f, (_, m) in found.items() if m} == {}


def test_skew_check_names_an_online_step_that_differs_from_the_batch_one(
    served_project: Project,
) -> None:
    module = served_project.root / "feature_repo" / "features.py"
    original = module.read_text()
    module.write_text(original + SKEWED_STEP)  # the later definition wins
    try:
        since = datetime.now(UTC)
        _serve(served_project, AS_OF + pd.Timedelta(days=1))
        found = _check(served_project, since)
    finally:
        module.write_text(original)
    skewed = {f for f, (_, m) in found.items() if m}
    assert skewed == {"txn_rate_24h"}, found
    compared, mismatches = found["txn_rate_24h"]
    assert mismatches > compared // 4  # every card seen in the last days


def test_skew_check_names_a_field_the_client_sends_in_other_units(
    served_project: Project,
) -> None:
    since = datetime.now(UTC)
    n = _serve(
        served_project,
        AS_OF + pd.Timedelta(days=2),
        change=lambda item: {**item, "amount": round(item["amount"] * 100)},
    )
    found = _check(served_project, since)
    skewed = {f for f, (_, m) in found.items() if m}
    assert {"amount", "amount_vs_avg_30d"} <= skewed, found
    assert found["amount"] == (n, n)
    assert "txn_rate_1h" not in skewed  # counts do not depend on the amount


def test_skew_check_finds_an_online_store_left_stale(served_project: Project) -> None:
    _serve(served_project, AS_OF + pd.Timedelta(days=3))
    since = datetime.now(UTC)
    _serve(served_project, AS_OF + pd.Timedelta(days=4), materialize=False)
    found = _check(served_project, since)
    skewed = {f for f, (_, m) in found.items() if m}
    # the chargebacks that arrived at midnight never reached the online store; the
    # real-time features, pushed by the server itself, are current
    assert skewed and skewed <= set(project_layout(served_project).history), found
