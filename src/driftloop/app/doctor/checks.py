"""The doctor's checks, level by level: pure functions of the config and the gathered state.

Levels 1 and 2 are here; level 3 (the loop closes on its own) is in ``loop_checks``.
"""

from __future__ import annotations

from collections.abc import Callable

from driftloop.app.doctor.facts import (
    LINEAGE_TAGS,
    UNKNOWN_COMMIT,
    Check,
    ProjectState,
    check,
)
from driftloop.app.doctor.loop_checks import loop_checks
from driftloop.config import ProjectConfig

__all__ = ["evaluate"]

# Sanity bounds: a setting beyond them is valid config, but a gate that never fires.
MAX_GATE_RELATIVE_TOLERANCE = 0.10
MAX_SKEW_MISMATCH_RATE = 0.01
MAX_ROLLBACK_ERROR_RATE = 0.05
MAX_ROLLBACK_P99_RATIO = 2.0
MAX_ROLLOUT_KL = 0.5
DECIDED_ROLLOUT_STATES = ("promoted", "rolled_back")


def _level1(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 1: the pieces exist (features applied, a champion registered with lineage)."""
    return [*_features_ready(config, state), *_registry_ready(config, state)]


def _features_ready(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 1, features: applied to the store and materialized online."""
    checks: list[Check] = []
    applied = state.feast_registry and state.offline_table
    parts = [
        f"Feast registry {'present' if state.feast_registry else 'absent'}",
        f"offline feature table {'present' if state.offline_table else 'absent'}",
    ]
    checks.append(
        check(
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
        check(
            1,
            "features.online",
            "online store materialized from the same definitions",
            state.online_store,
            seen,
            "driftloop features materialize",
        )
    )
    return checks


def _registry_ready(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 1, registry: readable, with a champion that carries its lineage."""
    checks: list[Check] = []
    reachable = state.registry_error is None
    checks.append(
        check(
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
        check(
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
        check(
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
    """Level 2: versions are gated and rolled out with gates."""
    return [*_gated(config, state), *_rolled_out(config, state)]


def _gated(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 2, gates: training's quality gate, skew check, and the canary as next step."""
    from driftloop.pipeline.metrics import HIGHER_IS_BETTER

    checks: list[Check] = []
    gate = config.training.gate
    higher = gate.metric in HIGHER_IS_BETTER
    bound_key = "min_metric" if higher else "max_metric"
    bound = gate.min_metric if higher else gate.max_metric
    gate_ok = bound is not None and gate.relative_tolerance <= MAX_GATE_RELATIVE_TOLERANCE
    checks.append(
        check(
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
        check(
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
        check(
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
        check(
            2,
            "training.on_pass",
            "a passing candidate goes to the canary, not straight to champion",
            on_pass == "challenger",
            f"training.on_pass {on_pass}",
            "training.on_pass: challenger",
        )
    )
    return checks


def _rolled_out(config: ProjectConfig, state: ProjectState) -> list[Check]:
    """Level 2, rollouts: sane gates, the admin API on, and a rollout decided."""
    checks: list[Check] = []
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
        check(
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
        check(
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
        check(
            2,
            "rollout.history",
            "a rollout promoted or rolled back on its own",
            decided > 0,
            seen,
            "driftloop serve, then driftloop rollout start V",
        )
    )
    return checks


_LEVELS: tuple[Callable[[ProjectConfig, ProjectState], list[Check]], ...] = (
    _level1,
    _level2,
    loop_checks,
)


def evaluate(config: ProjectConfig, state: ProjectState) -> tuple[Check, ...]:
    """Every check, from config and gathered state (pure)."""
    return tuple(c for level in _LEVELS for c in level(config, state))
