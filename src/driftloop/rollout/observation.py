"""What the canary step judge reads and answers: the step's observation, the policy with
its gates and test budget, and the verdict with its evidence (validated, frozen)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["FAMILIES", "Evidence", "StepObservation", "StepPolicy", "StepVerdict"]

FAMILIES = 3  # error rate, latency, predictions: each gets alpha / 3 of a step's budget


@dataclass(frozen=True, slots=True)
class StepObservation:
    """Cumulative canary and stable measurements for the current step's window, and what
    the labels say (``labels_ok``: True not worse, False worse, None not known yet)."""

    canary_requests: int = 0
    canary_errors: int = 0
    stable_requests: int = 0
    stable_errors: int = 0
    canary_slow: int = 0  # canary requests slower than stable_p99_s
    canary_p99_s: float | None = None
    stable_p99_s: float | None = None
    kl: float | None = None  # KL(canary predictions || stable predictions)
    elapsed_s: float = 0.0
    # canary requests slower than promote / rollback p99 ratio x stable p99 (None: the
    # p99 gates compare the two p99s as measured)
    canary_over_promote_p99: int | None = None
    canary_over_rollback_p99: int | None = None
    canary_predictions: tuple[float, ...] | None = None  # prediction counts per bin
    stable_predictions: tuple[float, ...] | None = None
    retrained_on_drift: bool = False
    labels_ok: bool | None = None
    labels_detail: str = ""
    # Paired steps: the canary's answers to the stable's requests, computed in shadow (no
    # user saw them), and how many of those failed. They count toward the step's traffic
    # and its error gates; latency and the prediction histogram are the served slice's.
    shadow_answers: int = 0
    shadow_errors: int = 0

    def __post_init__(self) -> None:
        _check_count("canary_errors", self.canary_errors, "canary_requests", self.canary_requests)
        _check_count("shadow_errors", self.shadow_errors, "shadow_answers", self.shadow_answers)
        _check_count("stable_errors", self.stable_errors, "stable_requests", self.stable_requests)
        _check_count("canary_slow", self.canary_slow, "canary_requests", self.canary_requests)
        for name in ("canary_over_promote_p99", "canary_over_rollback_p99"):
            value = getattr(self, name)
            if value is not None:
                _check_count(name, value, "canary_requests", self.canary_requests)
        for name in ("canary_p99_s", "stable_p99_s", "kl", "elapsed_s"):
            _finite_nonneg(name, getattr(self, name))

    @property
    def answers(self) -> int:
        """The canary's answers this step: served on its slice and computed in shadow."""
        return self.canary_requests + self.shadow_answers

    @property
    def answer_errors(self) -> int:
        return self.canary_errors + self.shadow_errors


def _check_count(name: str, count: int, total_name: str, total: int) -> None:
    if total < 0:
        raise ValueError(f"{total_name} must be >= 0, got {total!r}")
    if not 0 <= count <= total:
        raise ValueError(f"{name} must be within [0, {total_name}={total}], got {count!r}")


def _finite_nonneg(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """Gates with the specification's defaults, traffic and time bounds, and the test budget.

    ``alpha`` is the false-rollback budget of one step on identical versions, split evenly
    over the error-rate, latency and prediction tests. ``kl_action`` says whether a
    material prediction shift rolls back or only holds promotion.
    """

    promote_error_rate: float = 0.01
    rollback_error_rate: float = 0.02
    promote_p99_ratio: float = 1.10
    rollback_p99_ratio: float = 1.20
    p99_slack_s: float = 0.0  # latency differences up to this are never judged
    kl_max: float = 0.1
    kl_action: Literal["rollback", "hold"] = "rollback"
    min_requests: int = 2000
    guard_min_requests: int = 1000
    min_duration_s: float = 300.0
    max_duration_s: float = 1800.0
    alpha: float = 0.05
    error_mixture_sd: float = 0.02
    latency_mixture_sd: float = 0.05
    latency_null_share: float = 0.01
    # Count the canary's answers computed in shadow (paired steps) toward min_requests and
    # the error gates: for traffic too sparse for the canary slice alone.
    count_shadow: bool = False

    def __post_init__(self) -> None:
        for name in ("promote_error_rate", "rollback_error_rate", "latency_null_share"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be within (0, 1), got {value!r}")
        if self.rollback_error_rate < self.promote_error_rate:
            raise ValueError(
                f"rollback_error_rate must be >= {self.promote_error_rate}, got "
                f"{self.rollback_error_rate!r}"
            )
        if not 1.0 <= self.promote_p99_ratio <= self.rollback_p99_ratio:
            raise ValueError(
                f"promote_p99_ratio must be within [1, rollback_p99_ratio], got "
                f"{self.promote_p99_ratio!r}"
            )
        for name in (
            "kl_max",
            "error_mixture_sd",
            "latency_mixture_sd",
            "min_duration_s",
            "p99_slack_s",
        ):
            _finite_nonneg(name, getattr(self, name))
        if self.kl_action not in ("rollback", "hold"):
            raise ValueError(f"kl_action must be 'rollback' or 'hold', got {self.kl_action!r}")
        for name in ("min_requests", "guard_min_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.max_duration_s > self.min_duration_s:
            raise ValueError(
                f"max_duration_s must be > min_duration_s={self.min_duration_s}, "
                f"got {self.max_duration_s!r}"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be within (0, 1), got {self.alpha!r}")

    @property
    def test_alpha(self) -> float:
        """Each test family's share of the step's budget."""
        return self.alpha / FAMILIES


@dataclass(frozen=True, slots=True)
class Evidence:
    """One check: its value, threshold, whether it passed (None: not measured yet), detail."""

    name: str
    value: float | None
    threshold: float
    passed: bool | None
    detail: str


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """The step's decision, the evidence behind it and a one-line reason."""

    decision: Literal["wait", "promote", "rollback"]
    reason: str
    evidence: tuple[Evidence, ...]
