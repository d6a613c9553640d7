"""Rollout step arithmetic: validate a weight schedule and find the next weight (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from driftloop.config.rollout import validate_steps  # the schedule is checked as config

__all__ = ["next_phase", "next_weight", "step_index", "validate_steps"]


def step_index(steps: Sequence[float], weight: float) -> int:
    """Index of ``weight`` in the schedule; -1 for 0 (not started); ValueError if absent."""
    weights = validate_steps(steps)
    w = float(weight)
    if w == 0.0:
        return -1
    if w in weights:
        return weights.index(w)
    raise ValueError(f"weight must be 0 or one of the steps {list(weights)!r}, got {weight!r}")


def next_weight(steps: Sequence[float], current: float) -> float | None:
    """The weight after ``current`` (0 means not started); None once the last step is done."""
    weights = validate_steps(steps)
    i = step_index(weights, current)
    return weights[i + 1] if i + 1 < len(weights) else None


def next_phase(judged: Sequence[float], current: float) -> tuple[int, float] | None:
    """The judged phase after weight ``current`` (0: not started) as (index, weight), or None
    when the next move is the promotion. The schedule is the judged weights, then 100 (the
    promotion), unless 100 is itself judged (blue-green)."""
    weights = tuple(float(w) for w in judged)
    schedule = weights if weights and weights[-1] == 100.0 else (*weights, 100.0)
    nxt = next_weight(schedule, current)
    if nxt is None or nxt not in weights:
        return None
    return weights.index(nxt), nxt
