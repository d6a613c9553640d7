"""ONNX Runtime's own optimizations of an exported graph: fusion and INT8 quantization.

Everything runs on ``CPUExecutionProvider``. Paths are temporary files: ORT's quantizer
and its optimized-model writer work on files, the rest of driftloop on bytes.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from driftloop.optimize.stats import Latency, latency_summary

__all__ = [
    "QUANTIZABLE_OPS",
    "fuse_graph",
    "measure_latency",
    "op_counts",
    "quantizable_op_count",
    "quantize_int8_dynamic",
    "quantize_int8_static",
]

# The operators whose weights ORT's quantizer turns into INT8 (the ones a tabular model has).
QUANTIZABLE_OPS = ("MatMul", "Gemm", "Conv")
PROVIDERS = ["CPUExecutionProvider"]


def op_counts(model: bytes) -> dict[str, int]:
    """Operator type -> number of nodes in the graph."""
    import onnx

    graph = onnx.load_from_string(model).graph
    return dict(Counter(node.op_type for node in graph.node))


def quantizable_op_count(model: bytes) -> int:
    """How many nodes ORT's INT8 quantizer would rewrite."""
    counts = op_counts(model)
    return sum(counts.get(op, 0) for op in QUANTIZABLE_OPS)


def input_name(model: bytes) -> str:
    import onnx

    return str(onnx.load_from_string(model).graph.input[0].name)


class _QuantizerAdvice(logging.Filter):
    """Drops two notes ORT's quantizer logs on the root logger, neither actionable here.

    Advice to run its shape pre-processing: that needs sympy and does not know the
    ai.onnx.ml operators (Imputer, Scaler) scikit-learn pipelines export. And that a graph
    at opset < 11 is upgraded first: LightGBM graphs are, only to measure that nothing
    in them is quantized.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "pre-processing" not in message and "Automatically update the model" not in message


@contextmanager
def _workdir() -> Iterator[Path]:
    advice = _QuantizerAdvice()
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        with tempfile.TemporaryDirectory(prefix="driftloop-optimize-") as tmp:
            yield Path(tmp)
    finally:
        root.removeFilter(advice)


def fuse_graph(model: bytes) -> bytes:
    """The graph after ORT's extended optimizations (constant folding, node fusions).

    ``ORT_ENABLE_EXTENDED`` rather than ``ALL``: the layout rewrites of ``ALL`` are
    specific to the machine that made them and ORT advises against saving them.
    """
    import onnxruntime as ort

    with _workdir() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp / "fused.onnx")
        ort.InferenceSession(model, sess_options=options, providers=PROVIDERS)
        return (tmp / "fused.onnx").read_bytes()


def quantize_int8_dynamic(model: bytes) -> bytes:
    """INT8 weights, activations quantized at run time from their observed range."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _workdir() as tmp:
        (tmp / "fp32.onnx").write_bytes(model)
        quantize_dynamic(tmp / "fp32.onnx", tmp / "int8.onnx", weight_type=QuantType.QInt8)
        return (tmp / "int8.onnx").read_bytes()


class _Batches:
    """Calibration batches; ORT's CalibrationDataReader accepts any class with get_next."""

    def __init__(self, name: str, x: np.ndarray, batch_rows: int) -> None:
        self._batches = iter([{name: x[i : i + batch_rows]} for i in range(0, len(x), batch_rows)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8_static(model: bytes, calibration: np.ndarray, batch_rows: int = 500) -> bytes:
    """INT8 weights and activations, activation ranges calibrated on ``calibration`` rows.

    Only MatMul/Gemm/Conv are quantized: quantizing the output Add as well would round
    the prediction itself to 256 levels.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    reader = _Batches(input_name(model), calibration.astype("float32"), batch_rows)
    with _workdir() as tmp:
        (tmp / "fp32.onnx").write_bytes(model)
        quantize_static(
            tmp / "fp32.onnx",
            tmp / "int8.onnx",
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZABLE_OPS),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return (tmp / "int8.onnx").read_bytes()


def serving_session(model: bytes, optimize: bool = True) -> Any:
    """A session set up as the model server sets one up (one intra-op thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=options, providers=PROVIDERS)


def measure_latency(
    model: bytes, x: np.ndarray, batch_rows: int, runs: int, *, optimize: bool = True
) -> Latency:
    """p50/p99 of ``runs`` timed predictions of ``batch_rows`` rows, after a warm-up."""
    session = serving_session(model, optimize)
    name = session.get_inputs()[0].name
    reps = -(-batch_rows // max(len(x), 1))
    batch = np.tile(x.astype("float32"), (reps, 1))[:batch_rows]
    for _ in range(3):
        session.run(None, {name: batch})
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, {name: batch})
        times.append(time.perf_counter() - started)
    return latency_summary(times)
