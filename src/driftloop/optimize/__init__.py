"""Model optimization (spec Q2): smaller, faster variants of a registered version, gated.

ONNX export, graph fusion, INT8 quantization, structured pruning and distillation, with a
size/latency/accuracy table and a gate; the kept variant becomes a new version whose
lineage names its parent."""

from __future__ import annotations

from driftloop.optimize.results import OptimizableRegistry, OptimizationResult, VariantReport
from driftloop.optimize.runner import BASELINE, OPTIMIZE_STEPS, REGISTER_CHOICES, run_optimization
from driftloop.optimize.stats import Agreement, Latency, Verdict
from driftloop.optimize.variants import TECHNIQUES

__all__ = [
    "BASELINE",
    "OPTIMIZE_STEPS",
    "REGISTER_CHOICES",
    "TECHNIQUES",
    "Agreement",
    "Latency",
    "OptimizableRegistry",
    "OptimizationResult",
    "VariantReport",
    "Verdict",
    "run_optimization",
]
