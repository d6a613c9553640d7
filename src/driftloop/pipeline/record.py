"""What a trained version is registered with: its lineage and run tags, its logged
metrics, its gate's verdict as a document, and the alias it gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

import driftloop
from driftloop.features.store import FeatureStore
from driftloop.pipeline.gate import GateVerdict
from driftloop.pipeline.lineage import driftloop_source, git_commit
from driftloop.pipeline.split import TimeSplit
from driftloop.project import Project
from driftloop.registry import CHAMPION

__all__ = [
    "FrameHook",
    "choose_alias",
    "gate_document",
    "lineage_tags",
    "logged_metrics",
    "run_tags",
]

FrameHook = Callable[[pd.DataFrame], pd.DataFrame]  # alters the rows a model trains on


def lineage_tags(
    project: Project,
    store: FeatureStore,
    chosen: date,
    split: TimeSplit,
    digest: str,
    champion_version: str | None,
) -> dict[str, str]:
    """Where a version's data, features and code came from (its MLflow tags)."""
    return {
        "driftloop.as_of": chosen.isoformat(),
        "driftloop.window_start": split.train_start.isoformat(),
        "driftloop.window_end": split.holdout_end.isoformat(),
        "driftloop.split": split.to_json(),
        "driftloop.data_digest": digest,
        "driftloop.feature_service": store.layout.feature_service,
        "driftloop.feature_views": ",".join(store.layout.views()),
        "driftloop.feature_registry_digest": store.definitions_digest(),
        "driftloop.label_delay_days": str(project.config.labels.delay_days),
        "driftloop.version": driftloop.__version__,
        "driftloop.git_commit": git_commit(driftloop_source()) or "unknown",
        "driftloop.project_git_commit": git_commit(project.root) or "none",
        "driftloop.parent_version": champion_version or "",
    }


def run_tags(
    verdict: GateVerdict,
    onnx: str,
    actor: str,
    frame_hook: FrameHook | None,
    recency: str,
    refit: str = "",
) -> dict[str, str]:
    """How this run trained and what its gate and ONNX export said (MLflow tags)."""
    return {
        "driftloop.gate_summary": verdict.summary()[:4000],
        "driftloop.onnx": onnx[:4000],
        "driftloop.actor": actor,
        "driftloop.frame_hook": getattr(frame_hook, "__name__", "") if frame_hook else "",
        "driftloop.recency": recency,
        "driftloop.refit": refit,
    }


def logged_metrics(
    metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    rows: dict[str, int],
    best_iteration: int | None,
) -> dict[str, float]:
    """The version's MLflow metrics: its holdout metrics, the champion's on the same
    holdout, the rows of each part and the boosting rounds kept."""
    logged = {f"holdout_{k}": v for k, v in metrics.items() if np.isfinite(v)}
    if champion_metrics:
        logged.update({f"champion_holdout_{k}": v for k, v in champion_metrics.items()})
    logged.update({f"rows_{k}": float(v) for k, v in rows.items()})
    if best_iteration:
        logged["best_iteration"] = float(best_iteration)
    return logged


def gate_document(verdict: GateVerdict) -> dict[str, Any]:
    """The gate's verdict as the registry stores it beside the version."""
    return {
        "passed": verdict.passed,
        "summary": verdict.summary(),
        "metric": verdict.metric,
        "candidate": verdict.candidate,
        "champion": verdict.champion,
        "champion_version": verdict.champion_version,
        "checks": [asdict(c) for c in verdict.checks],
    }


def choose_alias(
    verdict: GateVerdict, champion: str | None, on_pass: str
) -> tuple[str | None, str]:
    if not verdict.passed:
        return None, f"gate {verdict.summary()}; no alias moved"
    if champion is None:
        return CHAMPION, f"first model to pass its gate: {verdict.summary()}"
    return on_pass, f"gate {verdict.summary()}"
