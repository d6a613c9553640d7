"""Safe model loading end to end: a real registry, artifacts altered on disk, a real server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.conftest import copy_project
from tests.serving.conftest import TOKEN
from tests.serving.test_server import ADMIN, feature_rows, v2_body

from driftloop.errors import ModelLoadError
from driftloop.registry import CHALLENGER, CHAMPION, open_registry
from driftloop.registry.integrity import CHECKSUM_TAG, LoadPolicy
from driftloop.serving.server import BackgroundServer, build_context


@pytest.fixture(scope="module")
def two_versions(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A private registry: v1 champion, v2 registered but not aliased (not loaded by a server)."""
    from driftloop.pipeline.train import run_training

    project = copy_project(applied_project, tmp_path_factory.mktemp("sealed") / "shop")
    registry = open_registry(project)
    run_training(project, registry, date(2019, 5, 1), actor="tests")
    run_training(project, registry, date(2019, 6, 1), actor="tests", on_pass="challenger")
    for alias in (CHAMPION, CHALLENGER):
        holder = registry.alias(alias)
        wanted = "1" if alias == CHAMPION else None
        if (holder.version if holder else None) != wanted:
            registry.move_alias(alias, wanted, "promote", "tests", "fixture")
    return project


def artifact(project: Any, version: str, name: str) -> Path:
    """The file ``name`` (model.lgb, model.onnx) of ``version`` in the project's artifact store."""
    mv = open_registry(project).get(version)
    digests = json.loads(mv.tags[CHECKSUM_TAG])
    matches = [
        p for p in (project.state_dir / "mlartifacts").rglob(name)
        if any(v == _sha(p) for k, v in digests.items() if k.endswith(name))
    ]  # fmt: skip
    assert len(matches) == 1, matches
    return matches[0]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def tampered(path: Path) -> Iterator[None]:
    """Flip the last bytes of ``path``; put the original back afterwards."""
    original = path.read_bytes()
    path.write_bytes(original[:-8] + b"tampered")
    try:
        yield
    finally:
        path.write_bytes(original)


def test_a_tampered_version_is_refused_and_the_current_one_keeps_serving(
    two_versions: Any, caplog: pytest.LogCaptureFixture
) -> None:
    registry = open_registry(two_versions)
    ctx = build_context(two_versions, registry=registry, admin_token=TOKEN)
    infer = f"/v2/models/{ctx.model_name}/infer"
    onnx_file = artifact(two_versions, "2", "model.onnx")
    with (
        BackgroundServer(ctx) as server,
        httpx.Client(base_url=server.url, headers=ADMIN) as c,
        tampered(onnx_file),
        caplog.at_level(logging.ERROR, "driftloop.registry"),
    ):
        assert c.get("/admin/routes").json()["challenger"] is None
        promote = c.post("/admin/promote", json={"version": "2", "reason": "tamper drill"})
        assert promote.status_code == 409, promote.text
        assert "version 2: artifact onnx/model.onnx has checksum" in promote.json()["error"]
        assert registry.alias(CHAMPION).version == "1"  # the registry was left as it was
        registry.move_alias(CHALLENGER, "2", "promote", "tests", "out-of-band challenger")
        try:
            reload = c.post("/admin/reload")
            assert reload.status_code == 409
            assert "artifact onnx/model.onnx" in reload.json()["error"]
            routes = c.get("/admin/routes").json()
            assert (routes["champion"], routes["challenger"]) == ("1", None)
            r = c.post(infer, content=v2_body(feature_rows(2)))
            assert r.status_code == 200 and r.json()["model_version"] == "1"
        finally:
            registry.move_alias(CHALLENGER, None, "clear", "tests", "end of drill")
    assert "version 2: artifact onnx/model.onnx" in caplog.text


def test_a_tampered_native_model_is_refused_naming_the_file(two_versions: Any) -> None:
    registry = open_registry(two_versions)
    changed = r"version 1: artifact model/model.lgb has"
    with (
        tampered(artifact(two_versions, "1", "model.lgb")),
        pytest.raises(ModelLoadError, match=changed),
    ):
        registry.load_native("1")
    kind, booster = registry.load_native("1")
    assert kind == "lightgbm" and type(booster).__name__ == "Booster"


def test_artifacts_outside_the_configured_root_are_not_loaded(
    two_versions: Any, tmp_path: Path
) -> None:
    from driftloop.registry.mlflow_registry import MlflowRegistry

    mine = open_registry(two_versions)
    other_root = MlflowRegistry(
        mine.tracking_uri, (tmp_path / "elsewhere").as_uri(), mine.model_name, mine.experiment,
        mine.history,
    )  # fmt: skip
    with pytest.raises(ModelLoadError, match=r"outside the configured artifact root"):
        other_root.load_model("1")
    with pytest.raises(ModelLoadError, match=r"outside the configured artifact root"):
        other_root.load_native("1")


def test_a_pickled_version_from_outside_driftloop_needs_two_explicit_flags(
    two_versions: Any,
) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    registry = open_registry(two_versions)
    names = json.loads(registry.get("1").tags["driftloop.features"])
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, len(names))), rng.normal(size=40)
    client = registry.client()
    experiment = client.get_experiment_by_name(registry.experiment).experiment_id
    mlflow.set_tracking_uri(registry.tracking_uri)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(x, y),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    mv = client.create_model_version(
        registry.model_name, info.model_uri, run.info.run_id,
        tags={"driftloop.features": json.dumps(names), "driftloop.model_kind": "sklearn"},
    )  # fmt: skip
    version = str(mv.version)
    with pytest.raises(ModelLoadError, match=r"registry.allow_unverified: true"):
        registry.load_model(version)
    registry.policy = LoadPolicy(allow_unverified=True)
    with pytest.raises(ModelLoadError, match=r"pickle-based format.*registry.allow_pickle: true"):
        registry.load_model(version)
    registry.policy = LoadPolicy(allow_unverified=True, allow_pickle=True)
    loaded = registry.load_model(version)
    assert loaded.predict_array(x.astype(np.float32)).shape == (40,)
