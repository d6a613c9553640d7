"""ORT fusion and INT8 quantization of exported graphs, on small seeded models."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.optimize import onnx_tools
from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.onnx_export import export_onnx
from driftloop.registry.predictors import OnnxPredictor

NAMES = ("a", "b", "c", "d")


@functools.cache
def mlp_onnx() -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 4)).astype(np.float32)
    y = 10 + x @ np.array([1.0, -2.0, 0.5, 0.0]) + np.sin(2 * x[:, 0])
    mlp = MLPRegressor(hidden_layer_sizes=(128, 128), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs are enough here
        model = make_pipeline(StandardScaler(), mlp).fit(x, y)
    exported = export_onnx(
        TrainedModel("sklearn", model, NAMES, "regression"), pd.DataFrame(x, columns=NAMES)
    )
    assert exported.model is not None, exported.reason
    return exported.model, x


def predict(model: bytes, x: np.ndarray) -> np.ndarray:
    return OnnxPredictor(model, NAMES, "regression").predict_array(x)


def test_dynamic_and_static_int8_shrink_the_weights_and_stay_close() -> None:
    fp32, x = mlp_onnx()
    assert onnx_tools.quantizable_op_count(fp32) == 3
    reference = predict(fp32, x)
    for quantized in (
        onnx_tools.quantize_int8_dynamic(fp32),
        onnx_tools.quantize_int8_static(fp32, x[:300]),
    ):
        assert len(fp32) / len(quantized) > 3.0
        diff = np.abs(predict(quantized, x) - reference)
        assert diff.sum() / np.abs(reference).sum() < 0.02


def test_static_quantization_is_deterministic_for_the_same_calibration() -> None:
    fp32, x = mlp_onnx()
    assert onnx_tools.quantize_int8_static(fp32, x[:200]) == onnx_tools.quantize_int8_static(
        fp32, x[:200]
    )


def test_fusion_keeps_predictions() -> None:
    fp32, x = mlp_onnx()
    fused = onnx_tools.fuse_graph(fp32)
    assert sum(onnx_tools.op_counts(fused).values()) < sum(onnx_tools.op_counts(fp32).values())
    np.testing.assert_allclose(predict(fused, x), predict(fp32, x), rtol=1e-5, atol=1e-5)


def test_latency_is_measured_for_the_requested_batch() -> None:
    fp32, x = mlp_onnx()
    latency = onnx_tools.measure_latency(fp32, x[:3], batch_rows=10, runs=7)
    assert latency.runs == 7 and 0 < latency.p50_ms <= latency.p99_ms
