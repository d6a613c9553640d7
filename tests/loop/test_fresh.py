"""``driftloop replay --fresh``: a failed replay's registry, state, logs and online store
go (and the output says which), the config, data and feature repository stay; a folder
that is not a project, or a registry that is not the project's own, is refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.config import CONFIG_FILENAME
from driftloop.project import Project
from driftloop.registry import open_registry

runner = CliRunner()


def _copy(trained_project: Any, tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(trained_project.root, root)
    (root / ".driftloop" / "predictions").mkdir(exist_ok=True)
    (root / ".driftloop" / "predictions" / "part-0.parquet").write_bytes(b"log")
    (root / ".driftloop" / "timeline.json").write_text("{}")
    return root


def test_fresh_removes_the_loop_state_says_so_and_keeps_config_and_data(
    trained_project: Any, tmp_path: Path
) -> None:
    root = _copy(trained_project, tmp_path)
    config = (root / CONFIG_FILENAME).read_text()
    data = sorted(p.name for p in (root / "data").rglob("*"))
    # a bad range stops the replay itself right after --fresh has done its part
    result = runner.invoke(
        app,
        [
            "replay",
            "--project",
            str(root),
            "--fresh",
            "--from",
            "2019-06-01",
            "--until",
            "2019-05-01",
        ],
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    for gone in (
        ".driftloop/mlflow.db",
        ".driftloop/mlartifacts/",
        ".driftloop/state.db",
        ".driftloop/predictions/",
        ".driftloop/timeline.json",
        ".driftloop/online_store.db",
    ):
        assert gone in said
        assert not (root / gone).exists()
    assert "kept: driftloop.yaml, data/" in said and "--until 2019-05-01 is not after" in said
    assert (root / CONFIG_FILENAME).read_text() == config
    assert sorted(p.name for p in (root / "data").rglob("*")) == data
    assert [p.name for p in (root / ".driftloop").iterdir() if p.name.startswith(".fresh")] == []
    again = runner.invoke(
        app,
        [
            "replay",
            "--project",
            str(root),
            "--fresh",
            "--from",
            "2019-06-01",
            "--until",
            "2019-05-01",
        ],
    )
    assert "no registry, state or logs to remove" in " ".join(again.output.split())
    assert open_registry(Project.load(root)).versions() == []  # a replay may start here


def test_fresh_refuses_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["replay", "--project", str(tmp_path), "--fresh"])
    assert result.exit_code == 2
    assert "is not a driftloop project (it has no driftloop.yaml)" in " ".join(
        result.output.split()
    )
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_fresh_refuses_a_registry_outside_the_project(trained_project: Any, tmp_path: Path) -> None:
    root = _copy(trained_project, tmp_path)
    raw = yaml.safe_load((root / CONFIG_FILENAME).read_text())
    raw["registry"]["tracking_uri"] = "postgresql://ml:secret@db.internal:5432/mlflow"
    (root / CONFIG_FILENAME).write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["replay", "--project", str(root), "--fresh"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "postgresql://ml:***@db.internal" in said
    assert "--fresh clears only the local registry" in said and "secret" not in said
    assert (root / ".driftloop" / "mlflow.db").is_file()
