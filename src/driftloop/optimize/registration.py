"""An optimized variant as a registry version: its parent's lineage plus the technique."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import driftloop
from driftloop.optimize.variants import Built
from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.lineage import driftloop_source, git_commit, pip_requirements
from driftloop.registry.base import ModelVersion, RegistrationRequest
from driftloop.registry.predictors import OnnxPredictor
from driftloop.statistics.profile import build_profile

if TYPE_CHECKING:
    from driftloop.optimize.data import VersionData
    from driftloop.optimize.results import OptimizableRegistry, VariantReport
    from driftloop.project import Project

__all__ = ["INHERITED_TAGS", "register_variant"]

# Lineage the variant shares with its parent: same data, features and split.
INHERITED_TAGS = (
    "driftloop.as_of",
    "driftloop.window_start",
    "driftloop.window_end",
    "driftloop.split",
    "driftloop.data_digest",
    "driftloop.feature_service",
    "driftloop.feature_views",
    "driftloop.feature_registry_digest",
    "driftloop.label_delay_days",
    "driftloop.project_git_commit",
)


def _metrics(report: VariantReport, baseline: VariantReport) -> dict[str, float]:
    out = {f"holdout_{k}": v for k, v in report.metrics.items()}
    out.update({f"fp32_holdout_{k}": v for k, v in baseline.metrics.items()})
    out["size_bytes"] = float(report.size_bytes or 0)
    out["fp32_size_bytes"] = float(baseline.size_bytes or 0)
    out["size_ratio"] = report.size_ratio or 0.0
    out["metric_loss"] = report.metric_loss or 0.0
    out["disagreement"] = report.disagreement or 0.0
    for batch, latency in report.latency_ms.items():
        out[f"latency_{batch}_p50_ms"] = latency.p50_ms
        out[f"latency_{batch}_p99_ms"] = latency.p99_ms
    return out


def register_variant(
    registry: OptimizableRegistry,
    parent: ModelVersion,
    trained: TrainedModel,
    built: Built,
    report: VariantReport,
    baseline: VariantReport,
    data: VersionData,
    project: Project,
    actor: str,
) -> ModelVersion:
    """Register ``built`` as a new version whose parent is ``parent``; no alias moves."""
    valid = OnnxPredictor(built.onnx, data.features, trained.task).predict(data.validation)
    profile = build_profile(
        {n: data.validation[n].to_numpy("float64") for n in data.features},
        valid,
        project.config.training.profile_bins,
    )
    passed = report.kept and parent.gate == "passed"
    gate: dict[str, Any] = {
        "passed": passed,
        "summary": report.verdict,
        "kind": "optimization",
        "parent_version": parent.version,
        "parent_gate": parent.gate,
        "technique": built.technique,
        "tolerances": project.config.optimize.model_dump(),
        "variant": {k: v for k, v in asdict(report).items() if k != "latency_ms"},
    }
    tags = {k: parent.tags[k] for k in INHERITED_TAGS if k in parent.tags}
    tags.update(
        {
            "driftloop.parent_version": parent.version,
            "driftloop.optimization": built.technique,
            "driftloop.optimization_detail": built.detail[:4000],
            "driftloop.gate_summary": (
                f"optimization of v{parent.version} ({built.technique}) {report.verdict}; "
                f"parent gate {parent.gate}"
            )[:4000],
            "driftloop.onnx": "optimized graph"
            if built.kind == "onnx"
            else "converted and verified",
            "driftloop.version": driftloop.__version__,
            "driftloop.git_commit": git_commit(driftloop_source()) or "unknown",
            "driftloop.actor": actor,
        }
    )
    params: dict[str, Any] = {
        "optimization": built.technique,
        "parent_version": parent.version,
        **({} if built.kind == "onnx" else dict(trained.params)),
    }
    if built.kind != "onnx" and hasattr(built.native, "get_params"):
        params["model"] = json.dumps(str(built.native))[:500]
    return registry.register(
        RegistrationRequest(
            model_kind=built.kind,
            model=built.onnx if built.kind == "onnx" else built.native,
            task=trained.task,
            feature_names=data.features,
            params=params,
            metrics=_metrics(report, baseline),
            tags=tags,
            profile=profile,
            gate=gate,
            gate_passed=passed,
            onnx_model=built.onnx,
            pip_requirements=pip_requirements(built.kind),
            run_name=f"optimize v{parent.version}: {built.technique}",
        )
    )
