"""Canary rollouts: step arithmetic, the step judge, traffic routers and the controller."""

from driftloop.rollout.judge import (
    Evidence,
    SequentialResult,
    StepObservation,
    StepPolicy,
    StepVerdict,
    error_rate_test,
    exceedance_test,
    judge_step,
)
from driftloop.rollout.steps import next_weight, step_index, validate_steps

__all__ = [
    "Evidence",
    "SequentialResult",
    "StepObservation",
    "StepPolicy",
    "StepVerdict",
    "error_rate_test",
    "exceedance_test",
    "judge_step",
    "next_weight",
    "step_index",
    "validate_steps",
]
