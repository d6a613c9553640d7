"""Model backends: train a configured model and predict with it.

LightGBM boosters are saved in LightGBM's own text format; scikit-learn estimators
with skops. Neither is a pickle.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from driftloop.config import LightGBMModelConfig, ModelConfig, SklearnModelConfig
from driftloop.errors import ConfigError

__all__ = [
    "Predictor",
    "TrainedModel",
    "refit_model",
    "refit_with",
    "resolve_estimator",
    "train_model",
]


class Predictor(Protocol):
    """Anything that turns a frame of features into predictions."""

    feature_names: tuple[str, ...]

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass
class TrainedModel:
    """A fitted model with what is needed to save, export and explain it."""

    kind: str  # "lightgbm" | "sklearn"
    model: Any  # lightgbm.Booster or a fitted scikit-learn estimator/pipeline
    feature_names: tuple[str, ...]
    task: str
    params: dict[str, Any] = field(default_factory=dict)
    best_iteration: int | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[list(self.feature_names)].to_numpy(dtype="float32")
        if self.kind == "lightgbm":
            out = self.model.predict(x)
        elif self.task == "classification":
            out = self.model.predict_proba(x)[:, 1]
        else:
            out = self.model.predict(x)
        return np.asarray(out, dtype="float64").ravel()


def resolve_estimator(path: str) -> type[Any]:
    """Import an estimator class from ``module.Class``; ConfigError names the field."""
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"training.model.estimator {path!r}: module {module_name!r} cannot be imported "
            f"({exc}); name an installed class such as "
            "sklearn.ensemble.HistGradientBoostingRegressor"
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "fit", None)):
        raise ConfigError(
            f"training.model.estimator {path!r}: {module_name} has no estimator class "
            f"{class_name!r} with a fit method"
        )
    return cls


def _lightgbm_params(cfg: LightGBMModelConfig, task: str, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        **cfg.params,
    }
    if task == "classification":
        params.setdefault("objective", "binary")
        if params["objective"] not in ("binary", "cross_entropy"):
            raise ConfigError(
                f"training.model.params.objective {params['objective']!r} does not fit a "
                "classification task; use binary"
            )
    return params


def _train_lightgbm(
    cfg: LightGBMModelConfig,
    task: str,
    seed: int,
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    weights: np.ndarray | None = None,
    valid_weights: np.ndarray | None = None,
    refit: bool = False,
) -> TrainedModel:
    import lightgbm as lgb

    features = tuple(train[0].columns)
    params = _lightgbm_params(cfg, task, seed)
    train_set = lgb.Dataset(
        train[0].to_numpy("float32"), train[1], weight=weights, feature_name=list(features)
    )
    valid_set = lgb.Dataset(
        valid[0].to_numpy("float32"), valid[1], weight=valid_weights, reference=train_set
    )
    try:
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=cfg.num_boost_round,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        )
    except lgb.basic.LightGBMError as exc:
        raise ConfigError(f"training.model.params were refused by LightGBM: {exc}") from exc
    best = int(booster.best_iteration) or None
    if best is not None:
        # Keep only the trees up to the best iteration, so every copy predicts alike.
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    stopped = TrainedModel(
        kind="lightgbm",
        model=booster,
        feature_names=features,
        task=task,
        params={**params, "num_boost_round": cfg.num_boost_round, "refit": False},
        best_iteration=best,
    )
    if not refit:
        return stopped
    return _refit_lightgbm(cfg, seed, stopped, train, valid, weights, valid_weights)


def _stacked(
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    weights: np.ndarray | None,
    valid_weights: np.ndarray | None,
) -> tuple[tuple[pd.DataFrame, np.ndarray], np.ndarray | None]:
    """Train and validation as one part, with their weights (validation rows without
    weights count 1 when the training rows have some)."""
    x = pd.concat([train[0], valid[0]], ignore_index=True)
    y = np.concatenate([train[1], valid[1]])
    w = None if weights is None else np.concatenate([weights, _ones(valid_weights, valid[1])])
    return (x, y), w


def _refit_lightgbm(
    cfg: LightGBMModelConfig,
    seed: int,
    stopped: TrainedModel,
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    weights: np.ndarray | None,
    valid_weights: np.ndarray | None,
) -> TrainedModel:
    """The validation days are the most recent the model may learn from: after early
    stopping (``stopped``) found the number of trees, fit that many on train and validation
    together."""
    data, w = _stacked(train, valid, weights, valid_weights)
    refitted = refit_with(stopped, cfg, seed, data, w)
    return replace(refitted, params={**stopped.params, "refit": True})


def _lightgbm_rounds(
    params: dict[str, Any],
    data: tuple[pd.DataFrame, np.ndarray],
    weights: np.ndarray | None,
    rounds: int,
) -> Any:
    """A booster of exactly ``rounds`` trees on ``data`` (no early stopping)."""
    import lightgbm as lgb

    full = lgb.Dataset(
        data[0].to_numpy("float32"), data[1], weight=weights, feature_name=list(data[0].columns)
    )
    fixed = {k: v for k, v in params.items() if k not in ("early_stopping_round", "refit")}
    return lgb.train(fixed, full, num_boost_round=rounds)


def _ones(weights: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
    return np.ones(len(labels)) if weights is None else weights


def _train_sklearn(
    cfg: SklearnModelConfig,
    task: str,
    seed: int,
    train: tuple[pd.DataFrame, np.ndarray],
    weights: np.ndarray | None = None,
) -> TrainedModel:
    cls = resolve_estimator(cfg.estimator)
    params = dict(cfg.params)
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = seed
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"training.model.params do not fit {cfg.estimator}: {exc}") from exc
    model: Any = estimator
    if cfg.scale_features:
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), estimator)
    fit_params: dict[str, Any] = {}
    if weights is not None:
        # A pipeline routes the weights to its last step by name.
        key = f"{model.steps[-1][0]}__sample_weight" if cfg.scale_features else "sample_weight"
        fit_params[key] = weights
    try:
        model.fit(train[0].to_numpy("float32"), train[1], **fit_params)
    except TypeError as exc:
        if not fit_params:
            raise
        raise ConfigError(
            f"training.model.estimator {cfg.estimator} does not accept sample weights, which "
            "the loop's recency weighting needs; set loop.recent_weight: 1 or pick an "
            "estimator whose fit takes sample_weight"
        ) from exc
    if task == "classification" and not hasattr(model, "predict_proba"):
        raise ConfigError(
            f"training.model.estimator {cfg.estimator} has no predict_proba; "
            "a classification task needs probabilities"
        )
    return TrainedModel(
        kind="sklearn",
        model=model,
        feature_names=tuple(train[0].columns),
        task=task,
        params={"estimator": cfg.estimator, **params, "scale_features": cfg.scale_features},
    )


def train_model(
    cfg: ModelConfig,
    task: str,
    seed: int,
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    *,
    weights: np.ndarray | None = None,
    valid_weights: np.ndarray | None = None,
    refit: bool = False,
) -> TrainedModel:
    """Fit the configured model on ``train``; LightGBM early-stops on ``valid``.

    ``weights`` and ``valid_weights`` (one per row) make some rows count more, e.g.
    recent ones. ``refit`` fits the final model on train and validation together
    (LightGBM: with the number of trees early stopping chose), so the most recent
    days before the holdout are learned from too.
    """
    if weights is not None and len(weights) != len(train[1]):
        raise ValueError(f"{len(weights)} weights for {len(train[1])} training rows")
    if valid_weights is not None and len(valid_weights) != len(valid[1]):
        raise ValueError(f"{len(valid_weights)} weights for {len(valid[1])} validation rows")
    if isinstance(cfg, LightGBMModelConfig):
        return _train_lightgbm(cfg, task, seed, train, valid, weights, valid_weights, refit)
    if refit:
        return _train_sklearn(cfg, task, seed, *_stacked(train, valid, weights, valid_weights))
    return _train_sklearn(cfg, task, seed, train, weights)


def refit_model(
    cfg: ModelConfig,
    task: str,
    seed: int,
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    fitted: TrainedModel,
    *,
    weights: np.ndarray | None = None,
    valid_weights: np.ndarray | None = None,
) -> TrainedModel:
    """``train_model(..., refit=True)`` for a model already fitted by ``train_model`` with
    the same arguments and ``refit=False`` (``fitted``): LightGBM's early stopping is not run
    again (it is deterministic: the same trees), only the fit on train and validation."""
    if isinstance(cfg, LightGBMModelConfig) and fitted.kind == "lightgbm":
        if fitted.params.get("refit") is not False:
            raise ValueError("refit_model takes a model fitted without refit")
        return _refit_lightgbm(cfg, seed, fitted, train, valid, weights, valid_weights)
    return train_model(
        cfg, task, seed, train, valid, weights=weights, valid_weights=valid_weights, refit=True
    )


def refit_with(
    trained: TrainedModel,
    cfg: ModelConfig,
    seed: int,
    data: tuple[pd.DataFrame, np.ndarray],
    weights: np.ndarray | None = None,
) -> TrainedModel:
    """``trained``'s model fitted again on ``data`` (e.g. its training rows and the
    newest days it was judged on): the same parameters and, for LightGBM, the same number
    of trees, so no rows are set aside to choose them."""
    if weights is not None and len(weights) != len(data[1]):
        raise ValueError(f"{len(weights)} weights for {len(data[1])} rows")
    if isinstance(cfg, LightGBMModelConfig):
        params = {k: v for k, v in trained.params.items() if k != "num_boost_round"}
        rounds = trained.best_iteration or cfg.num_boost_round
        return TrainedModel(
            kind="lightgbm",
            model=_lightgbm_rounds(params, data, weights, rounds),
            feature_names=trained.feature_names,
            task=trained.task,
            params=trained.params,
            best_iteration=trained.best_iteration,
        )
    return _train_sklearn(cfg, trained.task, seed, data, weights)
