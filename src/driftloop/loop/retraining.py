"""The project as the loop retrains it (its own split, versions made challenger)."""

from __future__ import annotations

from driftloop.project import Project

__all__ = ["MIN_REGIME_HOLDOUT_DAYS", "regime_holdout_days", "retrain_project"]

MIN_REGIME_HOLDOUT_DAYS = 3  # the fewest days the gate's paired test over days can judge


def regime_holdout_days(holdout_days: int, regime_days: int | None) -> int:
    """A retrain's gate days. ``regime_days``: the labelled days of the change it
    retrains on (None: not on a change). A change younger than twice ``holdout_days`` is
    split: the newest half (at least ``MIN_REGIME_HOLDOUT_DAYS``, at most
    ``holdout_days``) judges, the older half is learned first. With the whole change in
    the holdout the candidate has not seen it and is no better than the champion: the
    retail demo's first retrain, 7 days after the shift, lost to it by 0.2 %, and the
    loop waited a week to retrain again."""
    if regime_days is None or regime_days >= 2 * holdout_days:
        return holdout_days
    return min(holdout_days, max(MIN_REGIME_HOLDOUT_DAYS, regime_days // 2))


def retrain_project(project: Project, scheduled: bool, regime_days: int | None = None) -> Project:
    """The project as the loop retrains it: its own validation and holdout days, versions
    registered as challenger. A scheduled challenger must beat the champion by
    ``loop.challenger_min_gain`` at the gate (a negative tolerance); a drift retrain must be
    no worse than the champion on the holdout (tolerance 0). Both must beat it by a paired
    test over the holdout's days (``loop.deploy_significance``): a version the gate cannot
    tell from the one serving is not worth a deployment. ``regime_days``: the labelled days
    of the change a retrain is on (``regime_holdout_days``)."""
    cfg, loop = project.config, project.config.loop
    gate = cfg.training.gate
    tolerance = -loop.challenger_min_gain if scheduled else 0.0
    gate = gate.model_copy(
        update={"relative_tolerance": tolerance, "significance": loop.deploy_significance}
    )
    training = cfg.training.model_copy(
        update={
            "validation_days": loop.retrain_validation_days,
            "gate": gate,
            "holdout_days": (
                regime_holdout_days(loop.retrain_holdout_days, regime_days)
                if loop.split_young_regime
                else loop.retrain_holdout_days
            ),
            "on_pass": "challenger",
            "refit_holdout": loop.refit_holdout,
        }
    )
    return Project(project.root, cfg.model_copy(update={"training": training}))
