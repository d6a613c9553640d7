"""Predictors the registry hands out: ONNX Runtime sessions and native boosters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BoosterPredictor", "EstimatorPredictor", "OnnxPredictor"]


def _matrix(frame: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise KeyError(f"features missing from the input: {missing}")
    return frame[list(names)].to_numpy(dtype="float32")


class OnnxPredictor:
    """An ONNX model run by ONNX Runtime on the CPU."""

    def __init__(self, model_bytes: bytes, feature_names: tuple[str, ...], task: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.feature_names = feature_names
        self.task = task
        outputs = [o.name for o in self.session.get_outputs()]
        # Classifiers export (label, probabilities); take the probabilities.
        self._output = outputs[-1] if task == "classification" else outputs[0]
        self.format = "onnx"

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        x32 = x.astype(np.float32, copy=False)  # the servers' matrices are float32 already
        (out,) = self.session.run([self._output], {self.input_name: x32})
        arr = np.asarray(out, dtype="float64")
        if self.task == "classification":
            return arr[:, 1] if arr.ndim == 2 else arr.ravel()
        return arr.ravel()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_array(_matrix(frame, self.feature_names))


class BoosterPredictor:
    """A LightGBM booster loaded from its text format."""

    def __init__(self, booster: Any, feature_names: tuple[str, ...]) -> None:
        self.booster = booster
        self.feature_names = feature_names
        self.format = "lightgbm"

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x), dtype="float64").ravel()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_array(_matrix(frame, self.feature_names))


class EstimatorPredictor:
    """A scikit-learn estimator loaded with skops."""

    def __init__(self, estimator: Any, feature_names: tuple[str, ...], task: str) -> None:
        self.estimator = estimator
        self.feature_names = feature_names
        self.task = task
        self.format = "skops"

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype="float64")
        return np.asarray(self.estimator.predict(x), dtype="float64").ravel()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_array(_matrix(frame, self.feature_names))
