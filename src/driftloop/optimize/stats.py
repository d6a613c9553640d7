"""Trade-off arithmetic of optimized variants: arrays and numbers in, frozen results out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from driftloop.pipeline.metrics import HIGHER_IS_BETTER

__all__ = [
    "Agreement",
    "Latency",
    "Verdict",
    "agreement",
    "choose_best",
    "judge_variant",
    "latency_summary",
    "relative_metric_loss",
]


@dataclass(frozen=True)
class Agreement:
    """How far a variant's predictions are from the FP32 model's on the same rows."""

    disagreement: float  # regression: sum |v - f| / sum |f|; classification: share of flips
    max_abs_diff: float
    rows: int


@dataclass(frozen=True)
class Latency:
    """Percentiles of timed runs, in milliseconds."""

    p50_ms: float
    p99_ms: float
    runs: int


@dataclass(frozen=True)
class Verdict:
    """Whether a variant stays within the tolerances, and why."""

    kept: bool
    reason: str


def agreement(task: str, fp32: ArrayLike, variant: ArrayLike) -> Agreement:
    """Disagreement of ``variant`` with ``fp32``.

    Regression: the absolute differences summed over the FP32 predictions' absolute sum
    (a WAPE against the FP32 model). Classification: the share of rows whose class at a
    0.5 threshold differs.
    """
    f = np.asarray(fp32, dtype="float64").ravel()
    v = np.asarray(variant, dtype="float64").ravel()
    if f.shape != v.shape:
        raise ValueError(f"prediction arrays differ in length: {f.size} vs {v.size}")
    if f.size == 0:
        raise ValueError("no rows to compare")
    diff = np.abs(v - f)
    if task == "classification":
        share = float(np.mean((v >= 0.5) != (f >= 0.5)))
    else:
        total = float(np.abs(f).sum())
        share = float(diff.sum() / total) if total > 0 else float(diff.sum() > 0)
    return Agreement(disagreement=share, max_abs_diff=float(diff.max()), rows=int(f.size))


def relative_metric_loss(metric: str, fp32: float, variant: float) -> float:
    """How much worse ``variant`` is than ``fp32`` on ``metric``, relative (0.01 = 1 % worse).

    Negative when the variant is better. Higher-is-better metrics (AUCs) count a drop as loss.
    """
    if not (np.isfinite(fp32) and np.isfinite(variant)):
        return float("inf")
    worse = fp32 - variant if metric in HIGHER_IS_BETTER else variant - fp32
    if fp32 == 0:
        return 0.0 if worse == 0 else float(np.sign(worse)) * float("inf")
    return float(worse / abs(fp32))


def latency_summary(seconds: Sequence[float]) -> Latency:
    """p50 and p99 of run times given in seconds."""
    if not seconds:
        raise ValueError("no timed runs")
    ms = np.asarray(seconds, dtype="float64") * 1000.0
    p50, p99 = np.percentile(ms, [50, 99])
    return Latency(p50_ms=float(p50), p99_ms=float(p99), runs=len(seconds))


def judge_variant(
    metric: str,
    loss: float,
    disagreement: float,
    max_loss: float,
    max_disagreement: float,
) -> Verdict:
    """Keep a variant only if its metric loss and disagreement are both within tolerance."""
    problems = []
    if not loss <= max_loss:
        problems.append(f"{metric} {loss:+.2%} vs FP32 (allowed <= {max_loss:.2%} worse)")
    if not disagreement <= max_disagreement:
        problems.append(
            f"disagreement with FP32 {disagreement:.2%} (allowed <= {max_disagreement:.2%})"
        )
    if problems:
        return Verdict(False, "rejected: " + "; ".join(problems))
    return Verdict(
        True,
        f"kept: {metric} {loss:+.2%} vs FP32, disagreement {disagreement:.2%} "
        f"(limits {max_loss:.2%}, {max_disagreement:.2%})",
    )


def choose_best(candidates: Sequence[tuple[str, int, float]]) -> str | None:
    """Name of the smallest kept variant (ties: smaller metric loss, then name).

    ``candidates`` are (technique, size in bytes, relative metric loss) of kept variants.
    """
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[1], c[2], c[0]))[0]
