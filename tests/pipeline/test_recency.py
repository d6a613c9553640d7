"""Recency weighting is kept only when the validation days prefer it."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from driftloop.config import LightGBMModelConfig, TrainingConfig
from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.recency import Recency, final_model, fit_candidate, prefer_weighted

START = date(2023, 1, 1)
SINCE = date(2023, 5, 1)


def test_prefer_weighted_follows_the_metric_direction() -> None:
    assert prefer_weighted("wape", 0.10, 0.12)
    assert not prefer_weighted("wape", 0.12, 0.10)
    assert not prefer_weighted("wape", 0.10, 0.10)  # a tie keeps the unweighted fit
    assert prefer_weighted("roc_auc", 0.80, 0.75)
    assert not prefer_weighted("log_loss", 0.50, 0.40)
    assert not prefer_weighted("wape", float("nan"), 0.3)
    assert prefer_weighted("wape", 0.3, float("inf"))


def _parts(new_regime: bool, seed: int = 3) -> dict[str, pd.DataFrame]:
    """150 days, 20 rows a day; y = x * slope + noise. With ``new_regime`` the slope flips
    on SINCE and stays flipped (weighting the recent rows should win); without it, the
    rows since SINCE are the same relation with far more noise (weighting them should lose)."""
    rng = np.random.default_rng(seed)
    days = [START + timedelta(days=i) for i in range(150) for _ in range(20)]
    x = rng.uniform(0, 10, len(days))
    recent = np.array([d >= SINCE for d in days])
    slope = np.where(recent & new_regime, -1.0, 1.0)
    noise = np.where(recent & ~new_regime, 6.0, 0.3)
    y = 20 + slope * x + rng.normal(0, 1, len(days)) * noise
    stamps = pd.to_datetime(pd.Series(days)).dt.tz_localize("UTC")
    frame = pd.DataFrame({"event_timestamp": stamps, "x": x, "y": y})
    day = frame["event_timestamp"].dt.date
    validation = (day >= date(2023, 5, 16)) & (day < date(2023, 5, 23))
    if not new_regime:  # judged on clean days: the recent noisy ones only mislead
        validation = (day >= date(2023, 4, 20)) & (day < date(2023, 4, 27))
    return {
        "train": frame[~validation & (day < date(2023, 5, 23))],
        "validation": frame[validation],
    }


def _config() -> TrainingConfig:
    model = LightGBMModelConfig(
        params={"objective": "regression", "learning_rate": 0.2, "num_leaves": 7},
        num_boost_round=60,
        early_stopping_rounds=10,
    )
    return TrainingConfig(window_days=120, validation_days=7, holdout_days=7, model=model)


@pytest.mark.parametrize("new_regime", [True, False])
def test_fit_candidate_keeps_the_weighting_the_validation_days_prefer(new_regime: bool) -> None:
    parts = _parts(new_regime)
    cfg = _config()
    xy = {k: (v[["x"]], v["y"].to_numpy("float64")) for k, v in parts.items()}
    fitted = fit_candidate(cfg, xy["train"], xy["validation"], parts, Recency(SINCE, 20.0))
    assert fitted.recency is not None
    assert (fitted.recency.weight == 20.0) is new_regime
    assert "validation wape" in fitted.description
    assert "weigh 20x" in fitted.description
    assert fitted.description.startswith("unweighted") is not new_regime


def test_fit_candidate_without_weighting_fits_once_as_asked() -> None:
    parts = _parts(True)
    cfg = _config()
    xy = {k: (v[["x"]], v["y"].to_numpy("float64")) for k, v in parts.items()}
    plain = fit_candidate(cfg, xy["train"], xy["validation"], parts, None)
    assert plain.recency is None and plain.description == ""
    flat = fit_candidate(cfg, xy["train"], xy["validation"], parts, Recency(SINCE, 1.0))
    assert flat.description == Recency(SINCE, 1.0).describe()
    assert flat.model.params["refit"] is True


def test_final_model_learns_the_holdout_days_only_when_asked_and_passed() -> None:
    """The newest week reaches values of ``z`` never seen before: the kept fit (which never
    saw them) gets them wrong, the version refitted with its holdout days learns them, with
    the same number of trees."""
    rng = np.random.default_rng(5)
    days = [START + timedelta(days=i) for i in range(60) for _ in range(40)]
    newest = np.array([d >= START + timedelta(days=53) for d in days])
    x = rng.uniform(0, 10, len(days))
    z = rng.uniform(0, 5, len(days)) + np.where(newest, 5.0, 0.0)
    y = 20 + x + 3 * z + rng.normal(0, 0.3, len(days))
    stamps = pd.to_datetime(pd.Series(days)).dt.tz_localize("UTC")
    frame = pd.DataFrame({"event_timestamp": stamps, "x": x, "z": z, "y": y})
    day = frame["event_timestamp"].dt.date
    cut = [START + timedelta(days=n) for n in (46, 53)]
    parts = {
        "train": frame[day < cut[0]],
        "validation": frame[(day >= cut[0]) & (day < cut[1])],
        "holdout": frame[day >= cut[1]],
    }
    xy = {k: (v[["x", "z"]], v["y"].to_numpy("float64")) for k, v in parts.items()}
    cfg = _config().model_copy(update={"refit_holdout": True})
    fitted = fit_candidate(cfg, xy["train"], xy["validation"], parts, None)

    def holdout_error(model: TrainedModel) -> float:
        return float(np.abs(model.predict(parts["holdout"]) - xy["holdout"][1]).mean())

    same, note = final_model(cfg, fitted, parts, "y", passed=False)
    assert same is fitted.model and note == ""
    kept, _ = final_model(_config(), fitted, parts, "y", passed=True)
    assert kept is fitted.model

    refitted, note = final_model(cfg, fitted, parts, "y", passed=True)
    assert "holdout (2400 rows) after the gate" in note
    assert refitted.best_iteration == fitted.model.best_iteration
    assert refitted.model.num_trees() == fitted.model.model.num_trees()
    assert holdout_error(fitted.model) > 5.0 > 1.0 > holdout_error(refitted)


@pytest.mark.parametrize("new_regime", [True, False])
def test_the_kept_fit_is_the_model_a_fresh_fit_of_its_weighting_grows(new_regime: bool) -> None:
    """fit_candidate refits the comparison's fit instead of fitting the kept weighting again:
    the model is tree for tree the one ``train_model(..., refit=True)`` grows."""
    from driftloop.pipeline.estimators import train_model

    parts = _parts(new_regime)
    cfg = _config()
    xy = {k: (v[["x"]], v["y"].to_numpy("float64")) for k, v in parts.items()}
    recency = Recency(SINCE, 20.0)
    fitted = fit_candidate(cfg, xy["train"], xy["validation"], parts, recency)
    w = (recency.weights(parts["train"]), recency.weights(parts["validation"]))
    w = w if new_regime else (None, None)
    fresh = train_model(
        cfg.model,
        cfg.task,
        cfg.seed,
        xy["train"],
        xy["validation"],
        weights=w[0],
        valid_weights=w[1],
        refit=True,
    )
    assert fitted.model.model.model_to_string() == fresh.model.model_to_string()
    assert fitted.model.params == fresh.params
    assert fitted.model.best_iteration == fresh.best_iteration
