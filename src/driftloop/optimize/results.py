"""What an optimization run produces (the trade-off table and the choice) and what it asks
of the registry; shared by the runner and the registration of the kept variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from driftloop.optimize.stats import Latency
from driftloop.registry.base import ModelVersion, RegistrationRequest

__all__ = ["OptimizableRegistry", "OptimizationResult", "VariantReport"]


class OptimizableRegistry(Protocol):
    """What optimization asks of the registry."""

    def get(self, version: str) -> ModelVersion: ...

    def load_native(self, version: str) -> tuple[str, Any]: ...

    def register(self, request: RegistrationRequest) -> ModelVersion: ...


@dataclass(frozen=True)
class VariantReport:
    """One row of the trade-off table."""

    technique: str
    applicable: bool
    detail: str
    size_bytes: int | None = None
    size_ratio: float | None = None  # FP32 size / this size
    latency_ms: dict[str, Latency] = field(default_factory=dict)  # "batch_1", "batch_1000"
    metrics: dict[str, float] = field(default_factory=dict)
    metric_loss: float | None = None  # relative, on the gate metric; > 0 is worse
    disagreement: float | None = None
    max_abs_diff: float | None = None
    kept: bool = False
    verdict: str = ""


@dataclass(frozen=True)
class OptimizationResult:
    """The table, the choice, and what was registered."""

    version: str
    model_kind: str
    task: str
    metric: str
    holdout_rows: int
    calibration_rows: int
    data_matches_parent: bool
    native_max_abs_diff: float  # FP32 ONNX against the native model on the holdout
    variants: tuple[VariantReport, ...]
    chosen: str | None
    registered_version: str | None
    register_reason: str
    register_failed: bool
    duration_s: float
