"""The project as the loop retrains it (its own split, versions made challenger)."""

from __future__ import annotations

from driftloop.project import Project

__all__ = ["retrain_project"]


def retrain_project(project: Project, scheduled: bool) -> Project:
    """The project as the loop retrains it: its own validation and holdout days, versions
    registered as challenger. A scheduled challenger must beat the champion by
    ``loop.challenger_min_gain`` at the gate (a negative tolerance); a drift retrain by
    ``loop.drift_min_gain`` (0 by default: no worse than the champion on the holdout).
    Both must beat it by a paired test over the holdout's days
    (``loop.deploy_significance``): a version the gate cannot tell from the one serving is
    not worth a deployment."""
    cfg, loop = project.config, project.config.loop
    gate = cfg.training.gate
    tolerance = -(loop.challenger_min_gain if scheduled else loop.drift_min_gain)
    gate = gate.model_copy(
        update={"relative_tolerance": tolerance, "significance": loop.deploy_significance}
    )
    training = cfg.training.model_copy(
        update={
            "validation_days": loop.retrain_validation_days,
            "gate": gate,
            "holdout_days": loop.retrain_holdout_days,
            "on_pass": "challenger",
            "refit_holdout": loop.refit_holdout,
        }
    )
    return Project(project.root, cfg.model_copy(update={"training": training}))
