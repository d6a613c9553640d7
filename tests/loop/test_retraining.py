"""The project as the loop retrains it: its own split and the deployment bar."""

from __future__ import annotations

from pathlib import Path

from driftloop.config import ProjectConfig
from driftloop.loop.retraining import retrain_project
from driftloop.project import Project


def test_retrain_project_sets_the_gate_days_and_the_deployment_bar(tmp_path: Path) -> None:
    project = Project(tmp_path, ProjectConfig(project="shop"))
    drift = retrain_project(project, scheduled=False).config.training
    assert drift.holdout_days == 7 and drift.on_pass == "challenger"
    assert drift.gate.significance == 0.05 and drift.gate.relative_tolerance == 0.0
    plain = retrain_project(project, scheduled=True).config.training
    assert plain.gate.relative_tolerance == -0.02 and plain.gate.significance == 0.05
    loop = ProjectConfig(project="shop").loop.model_copy(update={"deploy_significance": None})
    off = Project(tmp_path, ProjectConfig(project="shop").model_copy(update={"loop": loop}))
    assert retrain_project(off, scheduled=False).config.training.gate.significance is None
