"""ONNX copies must branch like the original: checked on data built to hit thresholds."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.onnx_export import export_onnx, float32_exact_thresholds


def tie_prone_booster(seed: int = 0) -> tuple[lgb.Booster, pd.DataFrame]:
    """Inputs in pairs one float32 step apart, with different targets.

    LightGBM splits such a pair at the double midpoint, which is exactly halfway between
    two float32 values; rounding it to nearest for ONNX sends the upper value down the
    wrong branch half of the time.
    """
    rng = np.random.default_rng(seed)
    base = (rng.integers(1, 30, size=(4000, 3)) / np.float32(7.0)).astype(np.float32)
    upper = rng.random((4000, 3)) < 0.5
    x = np.where(upper, np.nextafter(base, np.float32(np.inf)), base).astype(np.float32)
    y = np.exp(0.3 * base[:, 0]) * np.where(upper[:, 0], 3.0, 1.0) + rng.poisson(1, 4000)
    booster = lgb.train(
        {"objective": "poisson", "verbosity": -1, "seed": seed, "num_threads": 1},
        lgb.Dataset(x, y),
        num_boost_round=80,
    )
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    return booster, frame


def test_rewritten_thresholds_change_no_native_prediction() -> None:
    booster, frame = tie_prone_booster()
    x = frame.to_numpy(np.float32)
    np.testing.assert_array_equal(booster.predict(x), float32_exact_thresholds(booster).predict(x))


def test_plain_conversion_disagrees_on_this_data() -> None:
    """The failure the rewrite exists for, shown on the data the next tests use."""
    import onnxmltools
    import onnxruntime as ort
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster, frame = tie_prone_booster()
    x = frame.to_numpy(np.float32)
    onx = onnxmltools.convert_lightgbm(
        booster,
        initial_types=[("input", FloatTensorType([None, 3]))],
        target_opset=15,
        zipmap=False,
    )
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    diff = np.abs(session.run(None, {"input": x})[0].ravel() - booster.predict(x))
    assert (diff > 0.1).sum() > 100


def test_lightgbm_onnx_copy_agrees_on_every_row() -> None:
    booster, frame = tie_prone_booster()
    trained = TrainedModel("lightgbm", booster, ("a", "b", "c"), "regression")
    result = export_onnx(trained, frame)
    assert result.model is not None, result.reason
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-3


def test_missing_values_take_the_same_branch_in_onnx() -> None:
    booster, frame = tie_prone_booster(1)
    frame.iloc[::5, 0] = np.nan
    trained = TrainedModel("lightgbm", booster, ("a", "b", "c"), "regression")
    assert export_onnx(trained, frame).model is not None


def test_sklearn_mlp_pipeline_exports() -> None:
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 500)
    mlp = MLPRegressor(hidden_layer_sizes=(16,), max_iter=300, random_state=0)
    model = make_pipeline(StandardScaler(), mlp)
    model.fit(x, y)
    trained = TrainedModel("sklearn", model, ("a", "b", "c"), "regression")
    result = export_onnx(trained, pd.DataFrame(x, columns=["a", "b", "c"]))
    assert result.model is not None, result.reason


def test_unconvertible_model_is_reported_not_raised() -> None:
    from sklearn.dummy import DummyRegressor

    model = DummyRegressor().fit(np.zeros((3, 1)), [1.0, 2.0, 3.0])

    class Odd:  # no converter knows this class
        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict(x))

    trained = TrainedModel("sklearn", Odd(), ("a",), "regression")
    result = export_onnx(trained, pd.DataFrame({"a": [0.0, 1.0]}))
    assert result.model is None and result.reason.startswith("conversion failed")
