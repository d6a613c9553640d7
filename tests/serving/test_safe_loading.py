"""Safe model loading end to end: a real registry, artifacts altered on disk, a real server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from tests.conftest import copy_with_registry
from tests.serving.conftest import TOKEN
from tests.serving.test_server import ADMIN, feature_rows, v2_body

from driftloop.errors import ModelLoadError
from driftloop.registry import CHALLENGER, CHAMPION, open_registry
from driftloop.registry.integrity import CHECKSUM_TAG, LoadPolicy
from driftloop.serving.server import BackgroundServer, build_context


@pytest.fixture
def sealed(two_versions: Any, tmp_path: Path) -> Any:
    """v1 champion, v2 registered and not aliased; a private registry, artifacts shared."""
    return copy_with_registry(two_versions, tmp_path / "shop")


def artifact(registry: Any, version: str, name: str) -> Path:
    """The stored file ``name`` (model.lgb, model.onnx) of ``version``."""
    client = registry.client()
    if name == "model.onnx":
        base = client.get_run(registry.get(version).run_id).info.artifact_uri + "/onnx"
    else:
        base = client.get_model_version_download_uri(registry.model_name, version)
    path = Path(urlparse(base).path) / name
    assert path.is_file(), path
    return path


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
    sealed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    registry = open_registry(sealed)
    ctx = build_context(sealed, registry=registry, admin_token=TOKEN)
    infer = f"/v2/models/{ctx.model_name}/infer"
    onnx_file = artifact(registry, "2", "model.onnx")
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
        reload = c.post("/admin/reload")
        assert reload.status_code == 409
        assert "artifact onnx/model.onnx" in reload.json()["error"]
        routes = c.get("/admin/routes").json()
        assert (routes["champion"], routes["challenger"]) == ("1", None)
        r = c.post(infer, content=v2_body(feature_rows(2)))
        assert r.status_code == 200 and r.json()["model_version"] == "1"
    assert "version 2: artifact onnx/model.onnx" in caplog.text


def test_a_tampered_native_model_is_refused_naming_the_file(sealed: Any) -> None:
    registry = open_registry(sealed)
    changed = r"version 1: artifact model/model.lgb has"
    with (
        tampered(artifact(registry, "1", "model.lgb")),
        pytest.raises(ModelLoadError, match=changed),
    ):
        registry.load_native("1")
    kind, booster = registry.load_native("1")
    assert kind == "lightgbm" and type(booster).__name__ == "Booster"


def test_artifacts_outside_the_configured_root_are_not_loaded(sealed: Any, tmp_path: Path) -> None:
    from driftloop.registry.mlflow_registry import MlflowRegistry

    mine = open_registry(sealed)
    other_root = MlflowRegistry(
        mine.tracking_uri,
        (tmp_path / "elsewhere").as_uri(),
        mine.model_name,
        mine.experiment,
        mine.history,
    )
    with pytest.raises(ModelLoadError, match=r"outside the configured artifact root"):
        other_root.load_model("1")
    with pytest.raises(ModelLoadError, match=r"outside the configured artifact root"):
        other_root.load_native("1")


def test_a_pickled_version_from_outside_driftloop_needs_two_explicit_flags(
    sealed: Any, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    from driftloop.registry.mlflow_registry import MlflowRegistry

    shared = open_registry(sealed)
    names = json.loads(shared.get("1").tags["driftloop.features"])
    # its own experiment and artifact root: nothing is written next to the shared artifacts
    registry = MlflowRegistry(
        shared.tracking_uri,
        (tmp_path / "outside").as_uri(),
        shared.model_name,
        "outside",
        shared.history,
    )
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, len(names))), rng.normal(size=40)
    client = registry.client()
    experiment = registry._experiment_id()
    mlflow.set_tracking_uri(registry.tracking_uri)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(x, y),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    mv = client.create_model_version(
        registry.model_name,
        info.model_uri,
        run.info.run_id,
        tags={"driftloop.features": json.dumps(names), "driftloop.model_kind": "sklearn"},
    )
    version = str(mv.version)
    with pytest.raises(ModelLoadError, match=r"registry.allow_unverified: true"):
        registry.load_model(version)
    registry.policy = LoadPolicy(allow_unverified=True)
    with pytest.raises(ModelLoadError, match=r"pickle-based format.*registry.allow_pickle: true"):
        registry.load_model(version)
    registry.policy = LoadPolicy(allow_unverified=True, allow_pickle=True)
    loaded = registry.load_model(version)
    assert loaded.predict_array(x.astype(np.float32)).shape == (40,)


def test_a_version_from_before_checksums_serves_its_verified_onnx_copy_only(
    sealed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    registry = open_registry(sealed)
    registry.client().delete_model_version_tag(registry.model_name, "1", CHECKSUM_TAG)
    assert registry.load_model("1").format == "onnx"  # its driftloop.onnx_sha256 still holds
    assert registry.load_profile("1").bins > 0
    with (
        tampered(artifact(registry, "1", "model.onnx")),
        pytest.raises(ModelLoadError, match=r"artifact onnx/model.onnx has checksum"),
    ):
        registry.load_model("1")
    with pytest.raises(
        ModelLoadError,
        match=r"no checksum was recorded for model.*"
        r"registry.allow_unverified: true",
    ):
        registry.load_native("1")
    registry.policy = LoadPolicy(allow_unverified=True)
    with caplog.at_level(logging.WARNING, "driftloop.registry"):
        assert registry.load_native("1")[0] == "lightgbm"
    assert "version 1: model has no recorded checksum; loading it unchecked" in caplog.text
