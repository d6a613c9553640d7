"""What a canary step's gates count (pure): its answers, served and, with
``count_shadow``, computed in shadow; and the KL the fixed gate may judge."""

from __future__ import annotations

from driftloop.rollout.observation import StepObservation, StepPolicy

__all__ = ["KL_MIN_REQUESTS", "answer_rate", "answers", "judged_kl", "traffic_detail"]

# Below this many served canary predictions the fixed KL gate is not judged: a histogram of
# a few predictions against the stable's is mostly sampling noise (the expected KL of n
# draws against their own distribution is about (bins - 1) / 2n: over 20 bins 0.03 at 300
# predictions, 0.1 at 100). The
# sequential shift test judges at any size. A sparse table's canary slice (one request in
# ten days) would otherwise hold every promotion on noise.
KL_MIN_REQUESTS = 300


def answers(obs: StepObservation, pol: StepPolicy) -> tuple[int, int]:
    """The canary's answers and failures the traffic and error gates count: its served
    slice, and with ``count_shadow`` also its answers computed in shadow."""
    if pol.count_shadow:
        return obs.answers, obs.answer_errors
    return obs.canary_requests, obs.canary_errors


def judged_kl(obs: StepObservation) -> float | None:
    """The KL the fixed gate judges: None below :data:`KL_MIN_REQUESTS` served predictions."""
    return obs.kl if obs.canary_requests >= KL_MIN_REQUESTS else None


def answer_rate(obs: StepObservation, pol: StepPolicy) -> float:
    n, failed = answers(obs, pol)
    return failed / n if n else 0.0


def traffic_detail(obs: StepObservation, pol: StepPolicy) -> str:
    if not pol.count_shadow:
        return "canary requests this step"
    return (
        f"canary answers this step: {obs.canary_requests} served, "
        f"{obs.shadow_answers} computed in shadow on the stable's requests"
    )
