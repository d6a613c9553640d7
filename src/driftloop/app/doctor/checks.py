"""The doctor's checks, level by level: pure functions of the config and the gathered state."""

from __future__ import annotations

import math
from collections.abc import Callable

from driftloop.app.doctor.facts import (
    LINEAGE_TAGS,
    UNKNOWN_COMMIT,
    Check,
    ProjectState,
)
from driftloop.config import ProjectConfig

__all__ = ["evaluate"]

# Sanity bounds: a setting beyond them is valid config, but a gate that never fires.
MAX_GATE_RELATIVE_TOLERANCE = 0.10
MAX_SKEW_MISMATCH_RATE = 0.01
MAX_ROLLBACK_ERROR_RATE = 0.05
MAX_ROLLBACK_P99_RATIO = 2.0
MAX_ROLLOUT_KL = 0.5
MAX_PSI_ACT = 0.5
MAX_PREDICTION_KL = 0.5
MAX_ACCURACY_RATIO = 2.0
DECIDED_ROLLOUT_STATES = ("promoted", "rolled_back")


def _check(level: int, id_: str, title: str, passed: bool, seen: str, fix: str) -> Check:
    return Check(id=id_, level=level, title=title, passed=passed, seen=seen, fix=fix)


def _level1(config: ProjectConfig, state: ProjectState) -> list[Check]:
    checks: list[Check] = []
    applied = state.feast_registry and state.offline_table
    parts = [
        f"Feast registry {'present' if state.feast_registry else 'absent'}",
        f"offline feature table {'present' if state.offline_table else 'absent'}",
    ]
    checks.append(
        _check(
            1,
            "features.applied",
            "features declared once, applied to the feature store",
            applied,
            ", ".join(parts),
            "driftloop features apply",
        )
    )
    online = config.features.online_store
    if online.type == "sqlite":
        found = "present" if state.online_store else "absent"
        seen = f"online store (sqlite) at {online.path} {found}"
    else:  # doctor contacts no server: a Redis store counts once the views are applied
        seen = (
            f"online store (redis) at {online.redacted()}, not contacted; feature views "
            f"{'applied' if state.online_store else 'not applied'}"
        )
    checks.append(
        _check(
            1,
            "features.online",
            "online store materialized from the same definitions",
            state.online_store,
            seen,
            "driftloop features materialize",
        )
    )
    reachable = state.registry_error is None
    checks.append(
        _check(
            1,
            "registry.reachable",
            "model registry can be read",
            reachable,
            "registry opened" if reachable else str(state.registry_error),
            "driftloop train (creates the local registry), or set registry.tracking_uri",
        )
    )
    champ = state.champion
    checks.append(
        _check(
            1,
            "registry.champion",
            "a champion version is registered",
            champ is not None,
            f"champion is v{champ.version}"
            if champ is not None
            else (
                "no champion alias" if reachable else "registry not readable (registry.reachable)"
            ),
            "driftloop train (a first version that passes its gate becomes champion), "
            "or driftloop models promote V",
        )
    )
    if champ is None:
        lineage_ok, lineage_seen = False, "no champion to inspect"
    else:
        missing = [t for t in LINEAGE_TAGS if not champ.tags.get(t)]
        commit = champ.tags.get("driftloop.git_commit", "")
        if commit == UNKNOWN_COMMIT and not champ.tags.get("driftloop.version"):
            missing.append("driftloop.git_commit (unknown, and no driftloop.version)")
        lineage_ok = not missing
        lineage_seen = (
            f"v{champ.version} lacks {', '.join(missing)}"
            if missing
            else f"v{champ.version}: data digest {champ.tags['driftloop.data_digest'][:12]}, "
            f"window {champ.tags['driftloop.window_start']}..{champ.tags['driftloop.window_end']}, "
            f"code {commit[:12]}"
        )
    checks.append(
        _check(
            1,
            "registry.lineage",
            "champion carries its training lineage",
            lineage_ok,
            lineage_seen,
            "driftloop train (registers a version with data, split, feature and "
            "code lineage), then promote it",
        )
    )
    return checks


def _level2(config: ProjectConfig, state: ProjectState) -> list[Check]:
    from driftloop.pipeline.metrics import HIGHER_IS_BETTER

    checks: list[Check] = []
    gate = config.training.gate
    higher = gate.metric in HIGHER_IS_BETTER
    bound_key = "min_metric" if higher else "max_metric"
    bound = gate.min_metric if higher else gate.max_metric
    gate_ok = bound is not None and gate.relative_tolerance <= MAX_GATE_RELATIVE_TOLERANCE
    checks.append(
        _check(
            2,
            "training.gate",
            "quality gate: relative tolerance and an absolute bound",
            gate_ok,
            f"metric {gate.metric}, relative_tolerance {gate.relative_tolerance:g} (sane <= "
            f"{MAX_GATE_RELATIVE_TOLERANCE:g}), {bound_key} "
            f"{bound if bound is not None else 'unset'}",
            f"training.gate.{bound_key}: <bound>, training.gate.relative_tolerance: <= "
            f"{MAX_GATE_RELATIVE_TOLERANCE:g}",
        )
    )
    champ = state.champion
    checks.append(
        _check(
            2,
            "registry.champion_gated",
            "the champion passed the quality gate",
            champ is not None and champ.gate == "passed",
            f"v{champ.version} gate {champ.gate}" if champ is not None else "no champion",
            "driftloop train until a version passes its gate (driftloop models promote V without "
            "--force keeps rejected versions out)",
        )
    )
    skew = config.features.skew
    checks.append(
        _check(
            2,
            "features.skew_gate",
            "training-serving skew check is a strict test",
            skew.max_mismatch_rate <= MAX_SKEW_MISMATCH_RATE,
            f"features.skew.max_mismatch_rate {skew.max_mismatch_rate:g} "
            f"(sane <= {MAX_SKEW_MISMATCH_RATE:g})",
            f"features.skew.max_mismatch_rate: <= {MAX_SKEW_MISMATCH_RATE:g}",
        )
    )
    on_pass = config.training.on_pass
    checks.append(
        _check(
            2,
            "training.on_pass",
            "a passing candidate goes to the canary, not straight to champion",
            on_pass == "challenger",
            f"training.on_pass {on_pass}",
            "training.on_pass: challenger",
        )
    )
    r = config.rollout
    problems = []
    if r.rollback_error_rate > MAX_ROLLBACK_ERROR_RATE:
        problems.append(
            f"rollback_error_rate {r.rollback_error_rate:g} > {MAX_ROLLBACK_ERROR_RATE:g}"
        )
    if r.rollback_p99_ratio > MAX_ROLLBACK_P99_RATIO:
        problems.append(f"rollback_p99_ratio {r.rollback_p99_ratio:g} > {MAX_ROLLBACK_P99_RATIO}")
    if r.kl_max > MAX_ROLLOUT_KL:
        problems.append(f"kl_max {r.kl_max:g} > {MAX_ROLLOUT_KL}")
    steps = " -> ".join(f"{s:g}%" for s in r.steps)
    checks.append(
        _check(
            2,
            "rollout.gates",
            "rollout promote/rollback gates within sane bounds",
            not problems,
            f"{r.strategy}, steps {steps}, promote at error < {r.promote_error_rate:g} and p99 <= "
            f"{r.promote_p99_ratio:g}x, roll back at error > {r.rollback_error_rate:g} or p99 > "
            f"{r.rollback_p99_ratio:g}x, KL < {r.kl_max:g}"
            + (f"; too loose: {'; '.join(problems)}" if problems else ""),
            f"rollout.rollback_error_rate <= {MAX_ROLLBACK_ERROR_RATE}, rollout.rollback_p99_ratio "
            f"<= {MAX_ROLLBACK_P99_RATIO}, rollout.kl_max <= {MAX_ROLLOUT_KL}",
        )
    )
    checks.append(
        _check(
            2,
            "serving.admin_token",
            "the server's admin API is on (automated deployment uses it)",
            state.admin_token,
            "admin token set" if state.admin_token else "no admin token: the admin API is disabled",
            "serving.admin_token: <secret>, or export DRIFTLOOP_ADMIN_TOKEN",
        )
    )
    counts = dict(state.rollouts or {})
    decided = sum(counts.get(s, 0) for s in DECIDED_ROLLOUT_STATES)
    if state.rollouts is None:
        seen = "no rollout has ever run (no rollouts table in .driftloop/state.db)"
    elif not counts:
        seen = "no rollout of this model in .driftloop/state.db"
    else:
        seen = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
    checks.append(
        _check(
            2,
            "rollout.history",
            "a rollout promoted or rolled back on its own",
            decided > 0,
            seen,
            "driftloop serve, then driftloop rollout start V",
        )
    )
    return checks


def _level3(config: ProjectConfig, state: ProjectState) -> list[Check]:
    checks: list[Check] = []
    loop = config.loop
    checks.append(
        _check(
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
        _check(
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
        _check(
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
        _check(
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
    progressive = _progressive(config)
    checks.append(
        _check(
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
        _check(
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
        _check(
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
        _check(
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


_LEVELS: tuple[Callable[[ProjectConfig, ProjectState], list[Check]], ...] = (
    _level1,
    _level2,
    _level3,
)


def evaluate(config: ProjectConfig, state: ProjectState) -> tuple[Check, ...]:
    """Every check, from config and gathered state (pure)."""
    return tuple(c for level in _LEVELS for c in level(config, state))
