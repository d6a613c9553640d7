"""Recency weighting for the loop's retrains, kept only where the validation days want it.

A retrain after a change weights the rows of the new regime more, so the model learns it
from a few weeks. Whether that helps depends on the table: it brought the retail shift
back in days, and on a monthly housing series it fitted one year's months and served the
next year 23 % worse. So the weighted fit is checked against an unweighted one on the
validation days (the newest the model does not learn from before its refit), and the
better of the two is kept, with both numbers in the version's lineage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from driftloop.config import TrainingConfig
from driftloop.pipeline.estimators import TrainedModel, refit_model, refit_with, train_model
from driftloop.pipeline.metrics import HIGHER_IS_BETTER, evaluate, too_few_to_evaluate

__all__ = ["Fitted", "Recency", "final_model", "fit_candidate", "prefer_weighted"]

XY = tuple[pd.DataFrame, np.ndarray]


@dataclass(frozen=True)
class Recency:
    """Learn the recent regime: rows on or after ``since`` weigh ``weight`` times more.

    ``refit`` fits the final model on train and validation together, so the days just
    before the holdout (the newest the model may see) are learned from too.
    """

    since: date
    weight: float
    refit: bool = True

    def weights(self, part: pd.DataFrame) -> np.ndarray:
        day = part["event_timestamp"].dt.tz_convert(None).dt.date
        return np.where(day >= self.since, self.weight, 1.0)

    def describe(self) -> str:
        """As the version's lineage records it."""
        refit = ", refit on train+validation" if self.refit else ""
        return f"rows since {self.since} weigh {self.weight:g}x{refit}"


@dataclass(frozen=True)
class Fitted:
    """The model a training run keeps, and how its recency weighting was chosen."""

    model: TrainedModel
    recency: Recency | None  # the weighting the kept model was fitted with
    description: str  # for the lineage: "" when no weighting was asked for


def prefer_weighted(metric: str, weighted: float, unweighted: float) -> bool:
    """Whether the weighted fit's validation ``metric`` is strictly the better one (a tie
    keeps the simpler, unweighted fit; a metric that is not finite loses)."""
    if not np.isfinite(weighted):
        return False
    if not np.isfinite(unweighted):
        return True
    return weighted > unweighted if metric in HIGHER_IS_BETTER else weighted < unweighted


def fit_candidate(
    cfg: TrainingConfig,
    train: XY,
    valid: XY,
    parts: dict[str, pd.DataFrame],
    recency: Recency | None,
) -> Fitted:
    """Fit the configured model; with a recency weight above 1, keep the weighted fit only
    when its validation metric beats an unweighted fit's."""
    if recency is None or recency.weight == 1.0:
        refit = recency.refit if recency else False
        model = train_model(cfg.model, cfg.task, cfg.seed, train, valid, refit=refit)
        return Fitted(model, recency, recency.describe() if recency else "")
    weights = recency.weights(parts["train"]), recency.weights(parts["validation"])
    why_not = too_few_to_evaluate(cfg.task, valid[1])
    if why_not is not None:
        note = f"kept without a comparison: the validation days hold {why_not}"
        model = train_model(
            cfg.model,
            cfg.task,
            cfg.seed,
            train,
            valid,
            weights=weights[0],
            valid_weights=weights[1],
            refit=recency.refit,
        )
        return Fitted(model, recency, _lineage(recency, recency, note))
    scores: dict[str, float] = {}
    fits = _fit_both(cfg, train, valid, weights)
    for name, fitted in fits.items():
        predicted = fitted.predict(parts["validation"])
        scores[name] = evaluate(cfg.task, valid[1], predicted)[cfg.gate.metric]
    better = prefer_weighted(cfg.gate.metric, scores["weighted"], scores["unweighted"])
    chosen = recency if better else Recency(recency.since, 1.0, recency.refit)
    note = (
        f"validation {cfg.gate.metric} {scores['weighted']:.4g} weighted vs "
        f"{scores['unweighted']:.4g} unweighted"
    )
    # The kept model is the comparison's fit (training is seeded and deterministic, so a
    # second fit would grow the same trees): only the refit on train and validation is left.
    model = fits["weighted" if better else "unweighted"]
    if chosen.refit:
        w = weights if better else (None, None)
        model = refit_model(
            cfg.model, cfg.task, cfg.seed, train, valid, model, weights=w[0], valid_weights=w[1]
        )
    return Fitted(model, chosen, _lineage(recency, chosen, note))


def _fit_both(
    cfg: TrainingConfig, train: XY, valid: XY, weights: tuple[np.ndarray, np.ndarray]
) -> dict[str, TrainedModel]:
    """The weighted and the unweighted fit, trained at once in two threads (LightGBM leaves
    Python's lock while it trains; each fit is seeded with its own threads, so its trees
    are those of a fit alone): one fit's waits at its threads' barriers are the other's
    time on the cores."""
    from concurrent.futures import ThreadPoolExecutor

    def fit(w: tuple[np.ndarray | None, np.ndarray | None]) -> TrainedModel:
        return train_model(
            cfg.model, cfg.task, cfg.seed, train, valid, weights=w[0], valid_weights=w[1]
        )

    with ThreadPoolExecutor(2, thread_name_prefix="fit-candidate") as pool:
        weighted, unweighted = pool.submit(fit, weights), pool.submit(fit, (None, None))
        return {"weighted": weighted.result(), "unweighted": unweighted.result()}


def _lineage(asked: Recency, chosen: Recency, note: str) -> str:
    """The lineage text: the weighting asked for, the one kept, and why."""
    head = asked.describe() if chosen.weight != 1.0 else f"unweighted (asked: {asked.describe()})"
    return f"{head}; {note}"


def final_model(
    cfg: TrainingConfig,
    fitted: Fitted,
    parts: dict[str, pd.DataFrame],
    label: str,
    passed: bool,
) -> tuple[TrainedModel, str]:
    """The model to register, and how it was refitted for the lineage: with
    ``training.refit_holdout``, a version the gate passed is fitted again on train,
    validation and holdout together (same parameters, trees and weighting), so it learns
    from the newest labelled days too; else the kept fit, unchanged."""
    if not (cfg.refit_holdout and passed):
        return fitted.model, ""
    rows = pd.concat([parts[k] for k in ("train", "validation", "holdout")], ignore_index=True)
    chosen = fitted.recency
    weights = chosen.weights(rows) if chosen is not None and chosen.weight != 1.0 else None
    features = list(fitted.model.feature_names)
    data = (rows[features], rows[label].to_numpy("float64"))
    model = refit_with(fitted.model, cfg.model, cfg.seed, data, weights)
    return model, (
        f"refit on train, validation and holdout ({len(rows)} rows) after the gate; the "
        "gate's metrics are the fit's without the holdout"
    )
