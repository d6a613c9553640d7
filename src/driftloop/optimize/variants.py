"""Build each optimized variant of a model, or say why a technique does not apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import OptimizeConfig
from driftloop.optimize import onnx_tools, structural
from driftloop.optimize.data import VersionData
from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.onnx_export import export_onnx

__all__ = ["TECHNIQUES", "Built", "NotApplicable", "build_variants"]

TECHNIQUES = ("fused", "int8-dynamic", "int8-static", "pruned", "distilled")


@dataclass(frozen=True)
class Built:
    """A variant ready to evaluate: its ONNX graph and, for retrained ones, a native model."""

    technique: str
    onnx: bytes
    kind: str  # "onnx" (graph only) | "sklearn" | "lightgbm"
    native: Any
    detail: str


@dataclass(frozen=True)
class NotApplicable:
    """A technique that does not apply to this model, and why."""

    technique: str
    reason: str


Outcome = Built | NotApplicable


def _ops(model: bytes) -> str:
    counts = onnx_tools.op_counts(model)
    return ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(counts.items()))


def _fused(fp32: bytes) -> Outcome:
    fused = onnx_tools.fuse_graph(fp32)
    before, after = onnx_tools.op_counts(fp32), onnx_tools.op_counts(fused)
    if before == after:
        return NotApplicable(
            "fused",
            f"ORT found nothing to fuse or fold in this graph ({_ops(fp32)})",
        )
    gone = sorted(set(before) - set(after)) or sorted(
        op for op in before if after.get(op, 0) < before[op]
    )
    new = sorted(set(after) - set(before))
    detail = (
        f"ORT extended graph optimizations: {sum(before.values())} -> {sum(after.values())} nodes"
    )
    detail += (
        f" (removed/fused {', '.join(gone)}" + (f"; new {', '.join(new)}" if new else "") + ")"
    )
    return Built("fused", fused, "onnx", None, detail)


def _int8(technique: str, fp32: bytes, quantize: Callable[[bytes], bytes]) -> Outcome:
    if onnx_tools.quantizable_op_count(fp32) == 0:
        unchanged = onnx_tools.quantize_int8_dynamic(fp32)
        return NotApplicable(
            technique,
            f"ORT quantizes only {'/'.join(onnx_tools.QUANTIZABLE_OPS)} weights and this graph "
            f"has none ({_ops(fp32)}): tree thresholds and leaf values stay float "
            f"(quantize_dynamic output measured {len(fp32) / 1024:.0f} KiB -> "
            f"{len(unchanged) / 1024:.0f} KiB)",
        )
    quantized = quantize(fp32)
    n = onnx_tools.quantizable_op_count(fp32)
    return Built(technique, quantized, "onnx", None, f"INT8 weights of {n} MatMul/Gemm node(s)")


def _export(trained: TrainedModel, data: VersionData) -> bytes | str:
    exported = export_onnx(trained, data.holdout)
    return exported.model if exported.model is not None else exported.reason


def _retrained(
    technique: str, trained: TrainedModel, shrunk: structural.Shrunk, data: VersionData
) -> Outcome:
    smaller = TrainedModel(
        trained.kind, shrunk.model, trained.feature_names, trained.task, dict(trained.params)
    )
    onnx = _export(smaller, data)
    if isinstance(onnx, str):
        return NotApplicable(technique, f"{shrunk.detail}, but its ONNX export failed: {onnx}")
    return Built(technique, onnx, trained.kind, shrunk.model, shrunk.detail)


def _pruned(trained: TrainedModel, data: VersionData, cfg: OptimizeConfig) -> Outcome:
    if trained.kind == "lightgbm":
        return _retrained(
            "pruned", trained, structural.drop_trees(trained.model, cfg.prune_fraction), data
        )
    if structural.mlp_parts(trained.model) is None:
        return NotApplicable(
            "pruned",
            f"structured pruning is implemented for MLPs (hidden units) and LightGBM (trees), "
            f"not {type(trained.model).__name__}",
        )
    x = np.vstack([data.x("train"), data.x("validation")])
    y = np.concatenate([data.y("train"), data.y("validation")])
    shrunk = structural.prune_mlp(trained.model, cfg.prune_fraction, x, y, cfg.finetune_epochs)
    return _retrained("pruned", trained, shrunk, data)


def _distilled(trained: TrainedModel, data: VersionData, cfg: OptimizeConfig, seed: int) -> Outcome:
    x = np.vstack([data.x("train"), data.x("validation")])
    teacher = trained.predict(pd.concat([data.train, data.validation]))
    if trained.kind == "lightgbm":
        shrunk = structural.distill_lightgbm(
            trained.model, trained.task, cfg.student_fraction, x, teacher, seed
        )
        return _retrained("distilled", trained, shrunk, data)
    if structural.mlp_parts(trained.model) is None:
        return NotApplicable(
            "distilled",
            f"distillation is implemented for MLP and LightGBM teachers, "
            f"not {type(trained.model).__name__}",
        )
    if trained.task == "classification":
        return NotApplicable(
            "distilled",
            "an MLP student is fit to the teacher's output by regression: "
            "implemented for regression tasks only",
        )
    shrunk = structural.distill_mlp(trained.model, cfg.student_fraction, x, teacher)
    return _retrained("distilled", trained, shrunk, data)


def build_variants(
    trained: TrainedModel,
    fp32: bytes,
    data: VersionData,
    cfg: OptimizeConfig,
    seed: int,
    progress: Callable[[str], None] = lambda _step: None,
) -> list[Outcome]:
    """Every technique of TECHNIQUES applied to ``trained`` (whose ONNX graph is ``fp32``)."""
    calibration = data.calibration(cfg.calibration_rows, seed)
    steps: list[tuple[str, Callable[[], Outcome]]] = [
        ("fused", lambda: _fused(fp32)),
        ("int8-dynamic", lambda: _int8("int8-dynamic", fp32, onnx_tools.quantize_int8_dynamic)),
        (
            "int8-static",
            lambda: _int8(
                "int8-static", fp32, lambda m: onnx_tools.quantize_int8_static(m, calibration)
            ),
        ),
        ("pruned", lambda: _pruned(trained, data, cfg)),
        ("distilled", lambda: _distilled(trained, data, cfg, seed)),
    ]
    outcomes = []
    for name, make in steps:
        progress(name)
        outcomes.append(make())
    return outcomes
