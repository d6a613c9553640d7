"""``driftloop optimize V``: variants of a registered version, measured, gated, registered.

Every input problem (unknown version, a model that cannot be exported, missing
calibration data) is found before the registry is written to, so a failed run registers
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from driftloop.config import OptimizeConfig
from driftloop.errors import UsageError
from driftloop.optimize import onnx_tools
from driftloop.optimize.data import VersionData, load_version_data
from driftloop.optimize.results import OptimizableRegistry, OptimizationResult, VariantReport
from driftloop.optimize.stats import (
    Latency,
    agreement,
    choose_best,
    judge_variant,
    relative_metric_loss,
)
from driftloop.optimize.variants import TECHNIQUES, Built, NotApplicable, build_variants
from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.metrics import evaluate
from driftloop.pipeline.onnx_export import export_onnx
from driftloop.project import Project
from driftloop.registry.base import ModelVersion
from driftloop.registry.predictors import OnnxPredictor

__all__ = [
    "BASELINE",
    "LATENCY_BATCHES",
    "OPTIMIZE_STEPS",
    "REGISTER_CHOICES",
    "run_optimization",
]

BASELINE = "fp32"
LATENCY_BATCHES = (1, 1000)
REGISTER_CHOICES = ("best", "none", *TECHNIQUES)
OPTIMIZE_STEPS = (
    "load version",
    "rebuild its data from the feature store",
    "export FP32 ONNX",
    *TECHNIQUES,
    "measure",
    "register",
)


def _latency(
    model: bytes, x: np.ndarray, runs: int, *, optimize: bool = True
) -> dict[str, Latency]:
    return {
        f"batch_{batch}": onnx_tools.measure_latency(
            model, x, batch, runs if batch == 1 else max(5, runs // 10), optimize=optimize
        )
        for batch in LATENCY_BATCHES
    }


@dataclass(frozen=True)
class _Baseline:
    task: str
    metric: str
    onnx: bytes
    predictions: np.ndarray
    metrics: dict[str, float]


def _evaluate(
    built: Built, base: _Baseline, data: VersionData, cfg: OptimizeConfig
) -> VariantReport:
    predictor = OnnxPredictor(built.onnx, data.features, base.task)
    pred = predictor.predict(data.holdout)
    metrics = evaluate(base.task, data.y("holdout"), pred)
    loss = relative_metric_loss(base.metric, base.metrics[base.metric], metrics[base.metric])
    agree = agreement(base.task, base.predictions, pred)
    verdict = judge_variant(
        base.metric, loss, agree.disagreement, cfg.max_relative_metric_loss, cfg.max_disagreement
    )
    detail = built.detail
    if built.technique == "fused":
        unfused = _latency(base.onnx, data.x("holdout"), cfg.latency_repeats, optimize=False)
        detail += (
            "; the server's ORT session applies these at load too, so served latency matches "
            f"FP32 (FP32 with graph optimizations off: p50 {unfused['batch_1'].p50_ms:.3f} ms "
            f"batch 1, {unfused['batch_1000'].p50_ms:.2f} ms batch 1000)"
        )
    return VariantReport(
        technique=built.technique,
        applicable=True,
        detail=detail,
        size_bytes=len(built.onnx),
        size_ratio=len(base.onnx) / len(built.onnx),
        latency_ms=_latency(built.onnx, data.x("holdout"), cfg.latency_repeats),
        metrics=metrics,
        metric_loss=loss,
        disagreement=agree.disagreement,
        max_abs_diff=agree.max_abs_diff,
        kept=verdict.kept,
        verdict=verdict.reason,
    )


def _load(registry: OptimizableRegistry, version: str) -> tuple[ModelVersion, TrainedModel]:
    import json

    parent = registry.get(version)
    kind, model = registry.load_native(version)
    names = tuple(json.loads(parent.tags["driftloop.features"]))
    task = parent.tags.get("driftloop.task", "regression")
    return parent, TrainedModel(kind, model, names, task)


def _choose(register: str, reports: list[VariantReport]) -> tuple[str | None, str, bool]:
    """(technique to register, why, whether the requested registration failed)."""
    if register == "none":
        return None, "--register none: nothing registered", False
    kept = [(r.technique, r.size_bytes or 0, r.metric_loss or 0.0) for r in reports if r.kept]
    if register == "best":
        best = choose_best(kept)
        if best is None:
            return None, "no variant stayed within the tolerances; nothing registered", True
        return best, f"{best}: the smallest variant within the tolerances", False
    row = next(r for r in reports if r.technique == register)
    if not row.applicable:
        return None, f"{register} does not apply: {row.detail}; nothing registered", True
    if not row.kept:
        return None, f"{register} was {row.verdict}; nothing registered", True
    return register, f"{register}: chosen with --register", False


def _baseline_report(
    version: str,
    native_diff: float | None,
    base: _Baseline,
    data: VersionData,
    cfg: OptimizeConfig,
) -> VariantReport:
    """The row every variant is compared with: the plain ONNX export of ``version``."""
    return VariantReport(
        technique=BASELINE,
        applicable=True,
        detail=f"ONNX export of v{version} (opset 15), max |ONNX - native| "
        f"{native_diff or 0.0:.2g} on the holdout",
        size_bytes=len(base.onnx),
        size_ratio=1.0,
        latency_ms=_latency(base.onnx, data.x("holdout"), cfg.latency_repeats),
        metrics=base.metrics,
        metric_loss=0.0,
        disagreement=0.0,
        max_abs_diff=0.0,
        kept=False,
        verdict="baseline",
    )


def run_optimization(
    project: Project,
    registry: OptimizableRegistry,
    version: str,
    *,
    register: str = "best",
    actor: str = "cli",
    progress: Callable[[str], None] = lambda _step: None,
) -> OptimizationResult:
    """Build, measure and gate every variant of ``version``; register the chosen one."""
    from driftloop.optimize.registration import register_variant

    started = time.perf_counter()
    if register not in REGISTER_CHOICES:
        raise UsageError(f"--register {register!r}: choose one of {', '.join(REGISTER_CHOICES)}")
    cfg = project.config.optimize
    seed = project.config.training.seed
    progress(OPTIMIZE_STEPS[0])
    parent, trained = _load(registry, version)
    progress(OPTIMIZE_STEPS[1])
    data = load_version_data(project, parent)
    progress(OPTIMIZE_STEPS[2])
    exported = export_onnx(trained, data.holdout)
    if exported.model is None:
        raise UsageError(
            f"version {version} ({trained.kind} {type(trained.model).__name__}) cannot be "
            f"exported to ONNX ({exported.reason}); optimize works on models skl2onnx or "
            "onnxmltools convert: LightGBM, or scikit-learn such as MLPRegressor"
        )
    metric = project.config.training.gate.metric
    predictions = OnnxPredictor(exported.model, data.features, trained.task).predict(data.holdout)
    base = _Baseline(
        trained.task,
        metric,
        exported.model,
        predictions,
        evaluate(trained.task, data.y("holdout"), predictions),
    )
    outcomes = build_variants(trained, exported.model, data, cfg, seed, progress)
    progress(OPTIMIZE_STEPS[-2])
    reports = [_baseline_report(version, exported.max_abs_diff, base, data, cfg)]
    for outcome in outcomes:
        if isinstance(outcome, NotApplicable):
            reports.append(
                VariantReport(outcome.technique, False, outcome.reason, verdict="not applicable")
            )
        else:
            reports.append(_evaluate(outcome, base, data, cfg))
    chosen, reason, failed = _choose(register, reports)
    progress(OPTIMIZE_STEPS[-1])
    registered = None
    if chosen is not None:
        built = next(o for o in outcomes if isinstance(o, Built) and o.technique == chosen)
        report = next(r for r in reports if r.technique == chosen)
        registered = register_variant(
            registry, parent, trained, built, report, reports[0], data, project, actor
        ).version
        reason = f"registered v{registered} ({reason}), parent v{version}"
        if parent.gate != "passed":
            reason += f"; marked rejected because its parent v{version} failed its training gate"
    return OptimizationResult(
        version=version,
        model_kind=trained.kind,
        task=trained.task,
        metric=metric,
        holdout_rows=len(data.holdout),
        calibration_rows=min(cfg.calibration_rows, len(data.train)),
        data_matches_parent=data.digest_matches,
        native_max_abs_diff=exported.max_abs_diff or 0.0,
        variants=tuple(reports),
        chosen=chosen,
        registered_version=registered,
        register_reason=reason,
        register_failed=failed,
        duration_s=time.perf_counter() - started,
    )
