"""A trained project moved or copied to another folder serves from its own files, and
what it registers carries a signature, its gate in the description, and a classic-ML
experiment kind (MLflow's UI opens on runs and models, not on GenAI traces)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.registry.mlflow_registry import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from driftloop.registry.relocate import relocate_local_registry
from driftloop.serving.server import BackgroundServer, build_context


def _recorded_uris(root: Path) -> list[str]:
    with sqlite3.connect(root / ".driftloop" / "mlflow.db") as db:
        return [
            str(uri)
            for query in (
                "SELECT artifact_location FROM experiments WHERE name != 'Default'",
                "SELECT artifact_uri FROM runs",
                "SELECT artifact_location FROM logged_models",
                "SELECT storage_location FROM model_versions",
            )
            for (uri,) in db.execute(query)
        ]


def test_a_moved_project_serves_its_model_from_its_own_folder(
    trained_project: Any, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    shutil.copytree(trained_project.root, first)
    open_registry(Project.load(first))  # where the user had it
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(first, moved)  # the old folder is gone
    project = Project.load(moved)
    ctx = build_context(project, registry=open_registry(project))
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as client:
        answer = client.post("/v1/predict", json={"entities": [{"store_id": 0, "product_id": 0}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["model_version"] == "1"
    uris = _recorded_uris(moved)
    assert len(uris) >= 4 and all(u.startswith(project.state_dir.as_uri() + "/") for u in uris)
    # new runs go to the experiment's root: this folder's; a second opener has nothing to do
    root_uri = (project.state_dir / "mlartifacts").as_uri()
    assert relocate_local_registry(project.state_dir / "mlflow.db", root_uri) == {}
    assert not first.exists()  # nothing was written where it used to be


def test_a_copy_reads_its_own_artifacts_and_leaves_the_original_alone(
    trained_project: Any, tmp_path: Path
) -> None:
    original = _recorded_uris(trained_project.root)
    copy = tmp_path / "copy"
    shutil.copytree(trained_project.root, copy)
    project = Project.load(copy)
    assert open_registry(project).load_model("1").feature_names
    assert all(u.startswith(project.state_dir.as_uri() + "/") for u in _recorded_uris(copy))
    assert _recorded_uris(trained_project.root) == original


def test_a_version_has_a_signature_its_gate_as_description_and_a_classic_experiment(
    trained_project: Any,
) -> None:
    import mlflow

    registry = open_registry(trained_project)
    client = registry.client()
    mv = client.get_model_version(registry.model_name, "1")
    assert mv.description.startswith("**Gate passed** (regression): passed: wape")
    assert "- ok finite_predictions:" in mv.description
    info = mlflow.models.get_model_info(mv.source)
    names = [c.name for c in info.signature.inputs.inputs]
    assert names == json.loads(registry.get("1").tags["driftloop.features"])
    assert [c.type.name for c in info.signature.outputs.inputs] == ["double"]
    experiment = client.get_experiment_by_name(registry.experiment)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
