"""The doctor's level 3 checks: the loop may retrain, its signals can fire and judge,
rollouts are progressive, and the logs and the loop's history are there (pure)."""

from __future__ import annotations

import math

from driftloop.app.doctor.facts import Check, ProjectState, check
from driftloop.config import ProjectConfig

__all__ = ["loop_checks"]

# Sanity bounds: a setting beyond them is valid config, but a signal that never fires.
MAX_PSI_ACT = 0.5
MAX_PREDICTION_KL = 0.5
MAX_ACCURACY_RATIO = 2.0


def loop_checks(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 3: the loop closes on its own."""
    return [*_loop_can_act(config, state), *_loop_has_run(config, state)]


def _loop_can_act(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 3, the controller: it may retrain, and its signals can fire and judge."""
    checks: list[Check] = []
    loop = config.loop
    checks.append(
        check(
            3,
            "loop.enabled",
            "the controller may retrain, on at least one trigger",
            loop.enabled and bool(loop.triggers),
            f"loop.enabled {str(loop.enabled).lower()}, triggers "
            f"{', '.join(loop.triggers) or 'none'}",
            "loop.enabled: true, loop.triggers: [feature_drift, prediction_drift, accuracy]",
        )
    )
    capped = loop.max_retrains <= loop.period_days
    checks.append(
        check(
            3,
            "loop.policy",
            "retraining has a cool-down and a cap",
            loop.cooldown_days > 0 and capped,
            f"cooldown_days {loop.cooldown_days:g}, at most {loop.max_retrains} retrain(s) per "
            f"{loop.period_days} days",
            "loop.cooldown_days: > 0, loop.max_retrains: <= loop.period_days",
        )
    )
    m = config.monitoring
    problems = []
    if m.psi_act > MAX_PSI_ACT:
        problems.append(f"psi_act {m.psi_act:g} > {MAX_PSI_ACT}")
    if m.prediction_kl > MAX_PREDICTION_KL:
        problems.append(f"prediction_kl {m.prediction_kl:g} > {MAX_PREDICTION_KL}")
    if m.accuracy_ratio > MAX_ACCURACY_RATIO:
        problems.append(f"accuracy_ratio {m.accuracy_ratio:g} > {MAX_ACCURACY_RATIO}")
    checks.append(
        check(
            3,
            "monitoring.thresholds",
            "drift and accuracy thresholds that can fire",
            not problems,
            f"PSI {m.psi_notice:g}/{m.psi_warning:g}/{m.psi_act:g}, prediction KL "
            f"{m.prediction_kl:g}, accuracy ratio {m.accuracy_ratio:g}"
            + (f"; too loose: {'; '.join(problems)}" if problems else ""),
            f"monitoring.psi_act <= {MAX_PSI_ACT}, "
            f"monitoring.prediction_kl <= {MAX_PREDICTION_KL}, "
            f"monitoring.accuracy_ratio <= {MAX_ACCURACY_RATIO}",
        )
    )
    # Labels of the last delay_days of a window are not known yet when it is judged.
    delay, window = config.labels.delay_days, m.window_days
    coverage = max(0.0, (window - delay) / window)
    judgeable = coverage >= m.min_label_coverage and coverage > 0.0
    checks.append(
        check(
            3,
            "labels.judgeable",
            "delayed labels arrive in time to judge accuracy",
            judgeable,
            f"labels.delay_days {delay} in a {window}-day window: at most {coverage:.0%} of its "
            f"rows labelled when judged (monitoring.min_label_coverage "
            f"{m.min_label_coverage:.0%})",
            f"monitoring.window_days: >= {_min_window(delay, m.min_label_coverage)} (or a shorter "
            "labels.delay_days, or a lower monitoring.min_label_coverage)",
        )
    )
    return checks


def _loop_has_run(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 3, the evidence: progressive rollouts, readable logs, a loop history."""
    checks: list[Check] = []
    progressive = _progressive(config)
    checks.append(
        check(
            3,
            "rollout.progressive",
            "new versions are tried on part of the traffic (canary or A/B)",
            progressive,
            f"rollout.strategy {config.rollout.strategy}, steps "
            f"{' -> '.join(f'{s:g}%' for s in config.rollout.steps)}",
            "rollout.strategy: canary with rollout.steps [10, 50, 100] (or ab)",
        )
    )
    checks.append(
        check(
            3,
            "serving.prediction_log",
            "the server logs predictions for monitoring",
            state.prediction_segments > 0,
            f"{state.prediction_segments} prediction log segment(s), {state.feedback_segments} "
            "feedback segment(s) under .driftloop/",
            "driftloop serve, send traffic and outcomes (/v1/feedback)",
        )
    )
    damaged, held = state.damaged_segments, state.quarantined_files
    checks.append(
        check(
            3,
            "logs.readable",
            "every log segment can be read (none damaged, none quarantined)",
            not damaged and not held,
            f"{len(damaged)} damaged segment(s) in place"
            + (
                f" ({', '.join(damaged[:3])}{' ...' if len(damaged) > 3 else ''})"
                if damaged
                else ""
            )
            + f", {held} file(s) in .driftloop/quarantine/",
            "`driftloop monitor` moves damaged segments aside; restore each from a backup or "
            "delete it from .driftloop/quarantine/ (records.jsonl says why each was moved)",
        )
    )
    runs = state.loop_events
    checks.append(
        check(
            3,
            "loop.history",
            "the loop has run and recorded its decisions",
            bool(runs),
            "never run (no loop_events table in .driftloop/state.db)"
            if runs is None
            else f"{runs} loop event(s) recorded",
            "driftloop loop run",
        )
    )
    return checks


def _progressive(config: ProjectConfig) -> bool:
    """Canary with at least one partial step, or an A/B test."""
    r = config.rollout
    if r.strategy == "ab":
        return True
    return r.strategy == "canary" and any(s < 100.0 for s in r.steps)


def _min_window(delay: int, min_coverage: float) -> int:
    """Smallest window (days) whose labelled share reaches ``min_coverage``."""
    if min_coverage >= 1.0:
        return delay + 1  # no window reaches full coverage; shorten the delay instead
    return max(delay + 1, math.ceil(delay / (1.0 - min_coverage) - 1e-9))
