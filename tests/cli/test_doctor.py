"""``driftloop doctor``: the level computation as a table, and real projects climbing levels."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.app.doctor import (
    ChampionFacts,
    Check,
    ProjectState,
    conclude,
    evaluate,
    reached_level,
)
from driftloop.cli.main import app
from driftloop.config import ProjectConfig

runner = CliRunner()

LEVEL1 = (
    "features.applied",
    "features.online",
    "registry.reachable",
    "registry.champion",
    "registry.lineage",
)


@pytest.fixture(autouse=True)
def _no_admin_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLOOP_ADMIN_TOKEN", raising=False)


def doctor(project: Path, *extra: str) -> Any:
    result = runner.invoke(app, ["doctor", "--project", str(project), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def doctor_json(project: Path) -> dict[str, Any]:
    result = doctor(project, "--json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def failed(doc: dict[str, Any]) -> set[str]:
    return {c["id"] for c in doc["checks"] if not c["passed"]}


def edit_config(root: Path, change: dict[str, Any]) -> None:
    path = root / "driftloop.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in change.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))


# -- the level computation (pure) ---------------------------------------------------------


def checks(*spec: tuple[int, bool]) -> list[Check]:
    return [Check(f"c{i}", level, "t", passed, "", "fix") for i, (level, passed) in enumerate(spec)]


@pytest.mark.parametrize(
    ("spec", "level", "missing"),
    [
        ([], 3, []),
        ([(1, False)], 0, ["c0"]),
        ([(1, True), (1, False), (2, True)], 0, ["c1"]),
        ([(1, True), (2, False), (3, True)], 1, ["c1"]),
        ([(1, True), (2, True), (2, False), (3, False)], 1, ["c2"]),
        ([(1, True), (2, True), (3, False), (3, False)], 2, ["c2", "c3"]),
        ([(1, True), (2, True), (3, True)], 3, []),
        # a higher level passing does not lift a project over a failed lower one
        ([(1, False), (2, True), (3, True)], 0, ["c0"]),
        ([(3, True), (2, True), (1, True), (2, False)], 1, ["c3"]),
    ],
)
def test_level_is_the_highest_with_every_check_up_to_it_passing(
    spec: list[tuple[int, bool]], level: int, missing: list[str]
) -> None:
    given = checks(*spec)
    assert reached_level(given) == level
    diagnosis = conclude(given)
    assert diagnosis.level == level
    assert [c.id for c in diagnosis.next_level_missing] == missing
    assert diagnosis.next_level == (None if level == 3 else level + 1)


LINEAGE = {
    "driftloop.data_digest": "ab" * 32,
    "driftloop.split": "{}",
    "driftloop.as_of": "2019-06-01",
    "driftloop.window_start": "2018-06-01",
    "driftloop.window_end": "2019-06-01",
    "driftloop.feature_registry_digest": "cd" * 32,
    "driftloop.git_commit": "0" * 40,
}
FULL_STATE = ProjectState(
    feast_registry=True,
    offline_table=True,
    online_store=True,
    registry_error=None,
    champion=ChampionFacts("3", "passed", LINEAGE),
    admin_token=True,
    rollouts={"promoted": 1},
    loop_events=4,
    prediction_segments=2,
    feedback_segments=1,
)
L2_CONFIG = {"training": {"on_pass": "challenger"}}


def config(**sections: Any) -> ProjectConfig:
    return ProjectConfig.model_validate({"project": "shop", **L2_CONFIG, **sections})


def test_everything_in_place_is_level_3() -> None:
    diagnosis = conclude(evaluate(config(), FULL_STATE))
    assert diagnosis.level == 3 and diagnosis.next_level_missing == ()


@pytest.mark.parametrize(
    ("sections", "state", "fails", "level"),
    [
        ({}, {"champion": ChampionFacts("3", "passed", {})}, "registry.lineage", 0),
        ({}, {"champion": ChampionFacts("3", "rejected", LINEAGE)}, "registry.champion_gated", 1),
        ({}, {"registry_error": "refused"}, "registry.reachable", 0),
        ({}, {"rollouts": {"aborted": 2, "step": 1}}, "rollout.history", 1),
        ({}, {"rollouts": None}, "rollout.history", 1),
        ({}, {"admin_token": False}, "serving.admin_token", 1),
        ({"training": {"on_pass": "champion"}}, {}, "training.on_pass", 1),
        (
            {"training": {"on_pass": "challenger", "gate": {"max_metric": None}}},
            {},
            "training.gate",
            1,
        ),
        (
            {"training": {"on_pass": "challenger", "gate": {"relative_tolerance": 0.5}}},
            {},
            "training.gate",
            1,
        ),
        ({"rollout": {"rollback_error_rate": 0.2}}, {}, "rollout.gates", 1),
        ({"features": {"skew": {"max_mismatch_rate": 0.1}}}, {}, "features.skew_gate", 1),
        ({"loop": {"enabled": False}}, {}, "loop.enabled", 2),
        ({"loop": {"triggers": []}}, {}, "loop.enabled", 2),
        ({"loop": {"cooldown_days": 0}}, {}, "loop.policy", 2),
        ({"loop": {"max_retrains": 40, "period_days": 30}}, {}, "loop.policy", 2),
        ({"monitoring": {"accuracy_ratio": 5.0}}, {}, "monitoring.thresholds", 2),
        (
            {"labels": {"delay_days": 7}, "features": {"lags_days": [7, 14]}},
            {},
            "labels.judgeable",
            2,
        ),
        ({"rollout": {"strategy": "blue-green"}}, {}, "rollout.progressive", 2),
        ({"rollout": {"steps": [100]}}, {}, "rollout.progressive", 2),
        ({}, {"prediction_segments": 0}, "serving.prediction_log", 2),
        ({}, {"loop_events": None}, "loop.history", 2),
        ({}, {"loop_events": 0}, "loop.history", 2),
    ],
)
def test_each_missing_fact_fails_its_check_and_caps_the_level(
    sections: dict[str, Any], state: dict[str, Any], fails: str, level: int
) -> None:
    from dataclasses import replace

    found = evaluate(config(**sections), replace(FULL_STATE, **state))
    assert {c.id for c in found if not c.passed} >= {fails}
    by_id = {c.id: c for c in found}
    assert by_id[fails].fix and by_id[fails].seen
    assert conclude(found).level == level


def test_an_ab_test_counts_as_progressive() -> None:
    found = evaluate(config(rollout={"strategy": "ab"}), FULL_STATE)
    assert all(c.passed for c in found)


def test_label_delay_fix_names_a_window_that_would_pass() -> None:
    cfg = config(labels={"delay_days": 7}, features={"lags_days": [7, 14]})
    check = next(c for c in evaluate(cfg, FULL_STATE) if c.id == "labels.judgeable")
    assert not check.passed and "monitoring.window_days: >= 14" in check.fix
    wider = config(
        labels={"delay_days": 7}, features={"lags_days": [7, 14]}, monitoring={"window_days": 14}
    )
    assert next(c for c in evaluate(wider, FULL_STATE) if c.id == "labels.judgeable").passed


# -- real projects --------------------------------------------------------------------------


def test_a_fresh_project_is_level_0_and_doctor_writes_nothing(tmp_path: Path) -> None:
    from driftloop.app.scaffold import create_project

    project = create_project(
        tmp_path / "fresh",
        "retail",
        1,
        {"n_stores": 2, "n_products": 2, "days": 200, "shift": {"enabled": False}},
    )
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    doc = doctor_json(project.root)
    assert doc["level"] == 0 and doc["level_name"] == "manual process"
    assert [c["id"] for c in doc["next_level_missing"]] == list(LEVEL1)
    reachable = next(c for c in doc["checks"] if c["id"] == "registry.reachable")
    assert "no registry yet" in reachable["seen"] and "mlflow.db" in reachable["seen"]
    # defaults of a new config already meet several higher-level config checks
    assert {"training.on_pass", "serving.admin_token", "rollout.history"} <= failed(doc)
    assert {"loop.enabled", "rollout.progressive", "training.gate"}.isdisjoint(failed(doc))
    assert sorted(p.relative_to(project.root) for p in project.root.rglob("*")) == before

    text = doctor(project.root)
    assert text.exit_code == 0
    assert "maturity level 0" in text.stdout
    assert "to reach level 1 (ML pipeline automation):" in text.stdout
    assert "driftloop features apply" in text.stdout


@pytest.fixture
def trained_copy(trained_project: Any, tmp_path: Path) -> Any:
    """The trained project with its registry database (artifacts stay shared, read-only)."""
    from tests.conftest import copy_with_registry

    return copy_with_registry(trained_project, tmp_path / "shop")


def _record_a_promoted_rollout(project: Any) -> None:
    from driftloop.rollout.store import RolloutStore

    store = RolloutStore(project.state_dir / "state.db")
    at = datetime(2019, 6, 2, tzinfo=UTC)
    rollout = store.create(project.model_name, "2", "1", "canary", at, "tests")
    store.transition(rollout, at=at, state="promoted", reason="every step passed", evidence={})


def _serve_one_request(project: Any) -> None:
    import httpx

    from driftloop.serving.server import BackgroundServer, build_context

    ctx = build_context(project, admin_token="t")
    server = BackgroundServer(ctx).start()
    try:
        r = httpx.post(
            f"{server.url}/v1/predict",
            json={"entities": [{"store_id": 0, "product_id": 0, "request_id": "doctor-1"}]},
        )
        assert r.status_code == 200, r.text
        ctx.flush_logs()
    finally:
        server.stop()


def test_a_trained_project_climbs_as_config_and_state_are_added(trained_copy: Any) -> None:
    root = trained_copy.root
    state_files = [trained_copy.state_dir / n for n in ("mlflow.db", "state.db")]
    before = [p.read_bytes() for p in state_files]
    doc = doctor_json(root)
    assert [p.read_bytes() for p in state_files] == before  # read, never written
    assert doc["level"] == 1, failed(doc)
    lineage = next(c for c in doc["checks"] if c["id"] == "registry.lineage")
    assert lineage["passed"] and "data digest" in lineage["seen"]
    assert {c["id"] for c in doc["next_level_missing"]} == {
        "training.on_pass",
        "serving.admin_token",
        "rollout.history",
    }

    edit_config(root, {"training.on_pass": "challenger", "serving.admin_token": "s3cret"})
    doc = doctor_json(root)
    assert doc["level"] == 1
    assert [c["id"] for c in doc["next_level_missing"]] == ["rollout.history"]
    assert "s3cret" not in json.dumps(doc)

    _record_a_promoted_rollout(trained_copy)
    doc = doctor_json(root)
    assert doc["level"] == 2, failed(doc)
    assert {c["id"] for c in doc["next_level_missing"]} == {
        "serving.prediction_log",
        "loop.history",
    }

    _serve_one_request(trained_copy)
    with closing(sqlite3.connect(trained_copy.state_dir / "state.db")) as db, db:
        # the loop's event log (its store is being written): one event of another model
        # does not count, one of this model does
        db.execute(
            "CREATE TABLE loop_events (id INTEGER PRIMARY KEY, model TEXT, at TEXT, "
            "kind TEXT, version TEXT, message TEXT, evidence TEXT)"
        )
        db.execute(
            "INSERT INTO loop_events (model, at, kind, message, evidence) "
            "VALUES ('other', '2019-06-03', 'check', '', '{}')"
        )
    assert doctor_json(root)["level"] == 2
    with closing(sqlite3.connect(trained_copy.state_dir / "state.db")) as db, db:
        db.execute(
            "INSERT INTO loop_events (model, at, kind, message, evidence) "
            "VALUES (?, '2019-06-03', 'retrain_started', '', '{}')",
            (trained_copy.model_name,),
        )
    doc = doctor_json(root)
    assert doc["level"] == 3, failed(doc)
    assert doc["next_level_missing"] == [] and doc["next_level"] is None

    text = doctor(root)
    assert text.exit_code == 0 and "maturity level 3" in text.stdout
    assert "nothing missing" in text.stdout

    edit_config(root, {"loop.enabled": False})
    doc = doctor_json(root)
    assert doc["level"] == 2 and [c["id"] for c in doc["next_level_missing"]] == ["loop.enabled"]


def test_an_unreachable_registry_fails_its_check_with_a_message(trained_copy: Any) -> None:
    edit_config(
        trained_copy.root,
        {"registry.tracking_uri": "http://127.0.0.1:9", "registry.request_timeout_s": 2},
    )
    result = doctor(trained_copy.root, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["level"] == 0
    reachable = next(c for c in doc["checks"] if c["id"] == "registry.reachable")
    assert not reachable["passed"] and "127.0.0.1:9" in reachable["seen"]
    assert "Traceback" not in result.output


def test_bad_config_exits_2(tmp_path: Path) -> None:
    (tmp_path / "driftloop.yaml").write_text("project: shop\nloop:\n  enabled: maybe\n")
    result = doctor(tmp_path)
    assert result.exit_code == 2
    assert "loop.enabled" in result.stderr


def test_outside_a_project_exits_2(tmp_path: Path) -> None:
    result = doctor(tmp_path)
    assert result.exit_code == 2 and "driftloop init" in result.stderr
