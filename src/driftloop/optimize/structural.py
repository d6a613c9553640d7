"""Smaller models from a trained one: structured pruning and knowledge distillation.

MLPs (scikit-learn ``MLPRegressor``/``MLPClassifier``, alone or last in a Pipeline) lose
whole hidden units; LightGBM ensembles lose whole trees. A distilled student is a smaller
model of the same family trained on the teacher's predictions.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MlpParts",
    "Shrunk",
    "distill_lightgbm",
    "distill_mlp",
    "drop_trees",
    "mlp_parts",
    "prune_mlp",
    "prune_unit_indices",
]


@dataclass(frozen=True)
class MlpParts:
    """A fitted MLP and the fitted steps before it (None when it stands alone)."""

    prefix: Any  # a fitted sklearn Pipeline of the steps before the MLP, or None
    mlp: Any
    step_name: str

    def transform(self, x: np.ndarray) -> np.ndarray:
        out = x if self.prefix is None else self.prefix.transform(x)
        return np.asarray(out, dtype="float64")

    def rebuild(self, mlp: Any) -> Any:
        """The same model with ``mlp`` in place of the original MLP."""
        if self.prefix is None:
            return mlp
        from sklearn.pipeline import Pipeline

        steps = copy.deepcopy(self.prefix.steps)
        return Pipeline([*steps, (self.step_name, mlp)])


@dataclass(frozen=True)
class Shrunk:
    """A smaller model and a one-line account of how it was made."""

    model: Any
    detail: str


def mlp_parts(model: Any) -> MlpParts | None:
    """The MLP inside ``model``, or None if ``model`` is not (a pipeline ending in) an MLP."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        name, last = model.steps[-1]
        if isinstance(last, MLPRegressor | MLPClassifier):
            return MlpParts(model[:-1] if len(model.steps) > 1 else None, last, name)
        return None
    if isinstance(model, MLPRegressor | MLPClassifier):
        return MlpParts(None, model, "mlp")
    return None


def prune_unit_indices(coefs: Sequence[np.ndarray], fraction: float) -> list[np.ndarray]:
    """Per hidden layer, the sorted indices of the units to keep.

    A unit's score is the L2 norm of its incoming weights times that of its outgoing
    weights; the lowest-scoring ``fraction`` of each layer goes (at least one unit stays).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    keep = []
    for layer in range(len(coefs) - 1):
        score = np.linalg.norm(coefs[layer], axis=0) * np.linalg.norm(coefs[layer + 1], axis=1)
        n_keep = max(1, round(score.size * (1.0 - fraction)))
        # Stable sort: equal scores keep the lower index, so the result is deterministic.
        order = np.argsort(-score, kind="stable")
        keep.append(np.sort(order[:n_keep]))
    return keep


def _sliced(
    coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray], keep: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    new_coefs, new_intercepts = [], []
    for layer, (w, b) in enumerate(zip(coefs, intercepts, strict=True)):
        rows = keep[layer - 1] if layer > 0 else np.arange(w.shape[0])
        cols = keep[layer] if layer < len(keep) else np.arange(w.shape[1])
        new_coefs.append(w[np.ix_(rows, cols)].copy())
        new_intercepts.append(b[cols].copy())
    return new_coefs, new_intercepts


def _fit_quietly(estimator: Any, x: np.ndarray, y: np.ndarray) -> None:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # A short fine-tune stops before convergence on purpose.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x, y)


def prune_mlp(
    model: Any, fraction: float, x: np.ndarray, y: np.ndarray, finetune_epochs: int
) -> Shrunk:
    """Remove ``fraction`` of each hidden layer's units, then retrain for a few epochs."""
    from sklearn.base import clone

    parts = mlp_parts(model)
    if parts is None:
        raise ValueError("not an MLP")
    old = parts.mlp
    keep = prune_unit_indices(old.coefs_, fraction)
    coefs, intercepts = _sliced(old.coefs_, old.intercepts_, keep)
    sizes = tuple(int(k.size) for k in keep)
    xt = parts.transform(x)
    pruned = clone(old).set_params(hidden_layer_sizes=sizes, warm_start=True, max_iter=1)
    _fit_quietly(pruned, xt, y)  # creates every fitted attribute for the new shapes
    pruned.coefs_, pruned.intercepts_ = coefs, intercepts
    if finetune_epochs > 0:
        pruned.set_params(max_iter=finetune_epochs)
        _fit_quietly(pruned, xt, y)  # warm start: continues from the pruned weights
    pruned.set_params(warm_start=False)
    before = tuple(int(c.shape[1]) for c in old.coefs_[:-1])
    return Shrunk(
        parts.rebuild(pruned),
        f"hidden units {before} -> {sizes} by weight magnitude, "
        f"{finetune_epochs} fine-tuning epoch(s)",
    )


def distill_mlp(model: Any, fraction: float, x: np.ndarray, teacher: np.ndarray) -> Shrunk:
    """A student MLP with ``fraction`` of each layer's units, fit to the teacher's output."""
    from sklearn.base import clone

    parts = mlp_parts(model)
    if parts is None:
        raise ValueError("not an MLP")
    before = tuple(int(c.shape[1]) for c in parts.mlp.coefs_[:-1])
    sizes = tuple(max(4, round(h * fraction)) for h in before)
    student = clone(parts.mlp).set_params(hidden_layer_sizes=sizes)
    _fit_quietly(student, parts.transform(x), teacher)
    return Shrunk(
        parts.rebuild(student),
        f"student MLP {sizes} (teacher {before}) fit to the teacher's predictions "
        f"on {len(x):,} feature-store rows",
    )


def drop_trees(booster: Any, fraction: float) -> Shrunk:
    """The first ``1 - fraction`` of a LightGBM ensemble's boosting rounds."""
    import lightgbm as lgb

    total = int(booster.num_trees())
    per_round = max(1, int(booster.num_model_per_iteration()))
    rounds = total // per_round
    kept = max(1, round(rounds * (1.0 - fraction)))
    smaller = lgb.Booster(model_str=booster.model_to_string(num_iteration=kept))
    return Shrunk(smaller, f"trees {rounds} -> {kept} (later boosting rounds dropped)")


def _max_leaves(booster: Any) -> int:
    trees = booster.dump_model()["tree_info"]
    return max((int(t.get("num_leaves", 1)) for t in trees), default=2)


def distill_lightgbm(
    booster: Any, task: str, fraction: float, x: np.ndarray, teacher: np.ndarray, seed: int
) -> Shrunk:
    """A LightGBM student with ``fraction`` of the teacher's leaves per tree."""
    import lightgbm as lgb

    leaves = _max_leaves(booster)
    student_leaves = max(2, round(leaves * fraction))
    rounds = max(1, int(booster.num_trees()))
    params = {
        # The teacher's outputs are soft targets: probabilities or non-negative rates.
        "objective": "cross_entropy" if task == "classification" else "regression",
        "num_leaves": student_leaves,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
    }
    if task != "classification" and float(np.min(teacher)) >= 0.0:
        params["objective"] = "poisson"
    student = lgb.train(params, lgb.Dataset(x.astype("float32"), teacher), num_boost_round=rounds)
    return Shrunk(
        student,
        f"student LightGBM {student_leaves} leaves x {rounds} trees (teacher up to {leaves} "
        f"leaves x {rounds}) fit to the teacher's predictions on {len(x):,} feature-store rows",
    )
