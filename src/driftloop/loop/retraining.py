"""The project as the loop retrains it (its own split, versions made challenger)."""

from __future__ import annotations

from driftloop.project import Project

__all__ = ["retrain_project"]


def retrain_project(project: Project, scheduled: bool) -> Project:
    """The project as the loop retrains it: its own validation and holdout days, versions
    registered as challenger; a scheduled challenger must beat the champion by
    ``loop.challenger_min_gain`` at the gate (a negative tolerance)."""
    cfg, loop = project.config, project.config.loop
    gate = cfg.training.gate
    if scheduled:
        gate = gate.model_copy(update={"relative_tolerance": -loop.challenger_min_gain})
    training = cfg.training.model_copy(
        update={
            "validation_days": loop.retrain_validation_days,
            "gate": gate,
            "holdout_days": loop.retrain_holdout_days,
            "on_pass": "challenger",
        }
    )
    return Project(project.root, cfg.model_copy(update={"training": training}))
