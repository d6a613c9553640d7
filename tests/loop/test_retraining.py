"""The loop's retrains are gated by how much they must beat the champion: a scheduled
challenger by ``loop.challenger_min_gain``, a drift retrain by ``loop.drift_min_gain``,
both by the paired test over days (``loop.deploy_significance``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.config import ProjectConfig, RetailScenarioConfig
from driftloop.loop.retraining import retrain_project
from driftloop.project import Project


def _project(tmp_path: Path, **loop: float) -> Project:
    config = ProjectConfig(project="gate", scenario=RetailScenarioConfig())
    config = config.model_copy(update={"loop": config.loop.model_copy(update=loop)})
    return Project(root=tmp_path, config=config)


@pytest.mark.parametrize(
    ("scheduled", "tolerance"),
    [(True, -0.03), (False, -0.01)],
)
def test_each_retrain_kind_must_beat_the_champion_by_its_own_gain(
    tmp_path: Path, scheduled: bool, tolerance: float
) -> None:
    project = _project(tmp_path, challenger_min_gain=0.03, drift_min_gain=0.01)
    gate = retrain_project(project, scheduled).config.training.gate
    assert gate.relative_tolerance == pytest.approx(tolerance)


def test_a_drift_retrain_need_only_be_no_worse_by_default(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.config.loop.drift_min_gain == 0.0
    gate = retrain_project(project, scheduled=False).config.training.gate
    assert gate.relative_tolerance == 0.0


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
