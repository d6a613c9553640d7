"""Structured pruning removes whole units or trees; distillation trains smaller students."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.optimize.structural import (
    distill_lightgbm,
    distill_mlp,
    drop_trees,
    mlp_parts,
    prune_mlp,
    prune_unit_indices,
)


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = 5 + x @ np.array([1.0, -2.0, 0.5, 0.0]) + np.sin(x[:, 0]) + rng.normal(0, 0.1, 600)
    return x, y


def fitted_mlp(hidden: tuple[int, ...] = (16, 8)) -> Any:
    x, y = data()
    mlp = MLPRegressor(hidden_layer_sizes=hidden, max_iter=400, random_state=0)
    return make_pipeline(StandardScaler(), mlp).fit(x, y)


def test_units_with_the_smallest_weight_product_go() -> None:
    w1 = np.array([[1.0, 0.1, 3.0, 2.0]])  # 1 input x 4 units
    w2 = np.array([[1.0], [1.0], [0.1], [1.0]])  # 4 units x 1 output
    # scores: 1.0, 0.1, 0.3, 2.0 -> keep the two largest, in index order
    (kept,) = prune_unit_indices([w1, w2], 0.5)
    assert kept.tolist() == [0, 3]


def test_at_least_one_unit_stays_and_fraction_is_checked() -> None:
    (kept,) = prune_unit_indices([np.ones((2, 3)), np.ones((3, 1))], 0.9)
    assert kept.tolist() == [0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        prune_unit_indices([np.ones((2, 3)), np.ones((3, 1))], 1.0)


def test_pruning_dead_units_without_finetuning_changes_no_prediction() -> None:
    model = fitted_mlp((16, 8))
    mlp = model[-1]
    mlp.coefs_[1][8:, :] = 0.0  # units 8..15 of layer 1 feed nothing
    mlp.coefs_[2][4:, :] = 0.0  # units 4..7 of layer 2 feed nothing
    x, y = data(1)
    shrunk = prune_mlp(model, 0.5, x, y, finetune_epochs=0)
    pruned = shrunk.model[-1]
    assert [c.shape for c in pruned.coefs_] == [(4, 8), (8, 4), (4, 1)]
    np.testing.assert_allclose(shrunk.model.predict(x), model.predict(x), rtol=1e-6, atol=1e-6)
    assert "hidden units (16, 8) -> (8, 4)" in shrunk.detail
    assert mlp_parts(shrunk.model) is not None and shrunk.model[0] is not model[0]


def test_finetuned_pruned_mlp_is_seeded() -> None:
    x, y = data(2)
    first = prune_mlp(fitted_mlp(), 0.5, x, y, finetune_epochs=5).model.predict(x)
    second = prune_mlp(fitted_mlp(), 0.5, x, y, finetune_epochs=5).model.predict(x)
    np.testing.assert_array_equal(first, second)


def test_mlp_parts_finds_only_mlps() -> None:
    from sklearn.linear_model import Ridge

    assert mlp_parts(make_pipeline(StandardScaler(), Ridge())) is None
    bare = fitted_mlp()[-1]
    parts = mlp_parts(bare)
    assert parts is not None and parts.prefix is None and parts.rebuild(bare) is bare


def test_distilled_student_has_the_fraction_of_units_and_follows_the_teacher() -> None:
    teacher = fitted_mlp((32, 32))
    x, _ = data(3)
    soft = teacher.predict(x)
    shrunk = distill_mlp(teacher, 0.25, x, soft)
    assert [c.shape[1] for c in shrunk.model[-1].coefs_[:-1]] == [8, 8]
    student = shrunk.model.predict(x)
    assert np.abs(student - soft).mean() < 0.5 * np.abs(soft - soft.mean()).mean()


def booster() -> lgb.Booster:
    x, y = data()
    params = {
        "objective": "regression",
        "verbosity": -1,
        "seed": 0,
        "num_threads": 1,
        "num_leaves": 16,
        "deterministic": True,
    }
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=40)


def test_dropping_trees_keeps_the_first_rounds() -> None:
    teacher = booster()
    x, _ = data(1)
    shrunk = drop_trees(teacher, 0.5)
    assert shrunk.model.num_trees() == 20
    np.testing.assert_allclose(shrunk.model.predict(x), teacher.predict(x, num_iteration=20))
    assert shrunk.detail.startswith("trees 40 -> 20")


def test_lightgbm_student_has_fewer_leaves() -> None:
    teacher = booster()
    x, _ = data(4)
    shrunk = distill_lightgbm(teacher, "regression", 0.25, x, teacher.predict(x), seed=0)
    leaves = [t["num_leaves"] for t in shrunk.model.dump_model()["tree_info"]]
    assert max(leaves) <= 4 and shrunk.model.num_trees() == 40
