"""The project as the loop retrains it: gate days on a young change, deployment bar."""

from __future__ import annotations

from pathlib import Path

from driftloop.config import ProjectConfig
from driftloop.loop.retraining import regime_holdout_days, retrain_project
from driftloop.project import Project


def test_a_young_change_is_split_between_learning_and_judging() -> None:
    assert regime_holdout_days(7, None) == 7  # not on a change: the configured days
    assert regime_holdout_days(7, 14) == 7  # a change of two holdouts: as configured
    assert regime_holdout_days(7, 13) == 6
    assert regime_holdout_days(7, 8) == 4  # the demo's first retrain: 4 judge, 4 learned
    assert regime_holdout_days(7, 5) == 3  # never fewer than the paired test's 3 days
    assert regime_holdout_days(2, 3) == 2  # never more than configured


def test_retrain_project_sets_the_gate_days_and_the_deployment_bar(tmp_path: Path) -> None:
    project = Project(tmp_path, ProjectConfig(project="shop"))
    young = retrain_project(project, scheduled=False, regime_days=8).config.training
    assert young.holdout_days == 4 and young.on_pass == "challenger"
    assert young.gate.significance == 0.05 and young.gate.relative_tolerance == 0.0
    plain = retrain_project(project, scheduled=True).config.training
    assert plain.holdout_days == 7 and plain.gate.relative_tolerance == -0.02
    loop = ProjectConfig(project="shop").loop.model_copy(
        update={"split_young_regime": False, "deploy_significance": None}
    )
    off = Project(tmp_path, ProjectConfig(project="shop").model_copy(update={"loop": loop}))
    kept = retrain_project(off, scheduled=False, regime_days=8).config.training
    assert kept.holdout_days == 7 and kept.gate.significance is None
