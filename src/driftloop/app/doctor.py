"""``driftloop doctor``: which MLOps maturity level a project's config and state reach.

The specification's levels (quiz Q1), as facts of a driftloop project:

* Level 0, manual process: nothing below holds.
* Level 1, ML pipeline automation: features declared once and applied to the feature
  store (offline table and online store), a registry with a champion that carries the
  training pipeline's lineage (data digest, time split, code version, feature digest):
  training is automated and reproducible, deployment may still be by hand.
* Level 2, CI/CD pipeline automation: a quality gate with a relative tolerance and
  absolute bounds, the champion passed it, a skew check with a tight tolerance, passing
  candidates become the challenger, rollout gates within sane bounds, the server's admin
  API on (automated deployment drives it), and a rollout that decided on its own.
* Level 3, full MLOps: the loop enabled with triggers, a cool-down and a cap, monitoring
  thresholds that can fire, a label delay that leaves accuracy judgeable, a progressive
  (canary or A/B) strategy, a prediction log, and the loop having run.

``gather_state`` does all the reading (files, the state database, the registry) and never
writes, starts or contacts a server other than the configured registry; ``evaluate``,
``reached_level`` and ``conclude`` are pure, so the level computation is table-testable.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.config import ProjectConfig
from driftloop.monitoring.predlog import feedback_dir, predictions_dir, segment_count

if TYPE_CHECKING:
    from driftloop.project import Project

__all__ = [
    "LEVEL_NAMES",
    "LINEAGE_TAGS",
    "ChampionFacts",
    "Check",
    "Diagnosis",
    "ProjectState",
    "conclude",
    "diagnose",
    "evaluate",
    "gather_state",
    "reached_level",
]

LEVEL_NAMES: Mapping[int, str] = {
    0: "manual process",
    1: "ML pipeline automation",
    2: "CI/CD pipeline automation",
    3: "full MLOps (continuous training)",
}
TOP_LEVEL = 3

# Tags the training pipeline writes on every version (pipeline/train.py): without them a
# version cannot be traced back to its data, split, features and code.
LINEAGE_TAGS = (
    "driftloop.data_digest",
    "driftloop.split",
    "driftloop.as_of",
    "driftloop.window_start",
    "driftloop.window_end",
    "driftloop.feature_registry_digest",
    "driftloop.git_commit",
)
UNKNOWN_COMMIT = "unknown"

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


# -- facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChampionFacts:
    """The champion version as the registry holds it."""

    version: str
    gate: str  # "passed" | "rejected" | "unknown"
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ProjectState:
    """What exists on disk and in the registry; gathered by ``gather_state``."""

    feast_registry: bool = False
    offline_table: bool = False
    online_store: bool = False
    registry_error: str | None = "registry not read"
    champion: ChampionFacts | None = None
    admin_token: bool = False
    rollouts: Mapping[str, int] | None = None  # state -> count; None: no rollouts table
    loop_events: int | None = None  # rows in loop_events; None: no such table
    prediction_segments: int = 0
    feedback_segments: int = 0
    damaged_segments: tuple[str, ...] = ()  # segments in place that cannot be read
    quarantined_files: int = 0  # files moved aside, still in the quarantine folder


# -- checks and the diagnosis ---------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One fact, the level it is evidence for, what was seen, and how to fix it."""

    id: str
    level: int
    title: str
    passed: bool
    seen: str
    fix: str


@dataclass(frozen=True)
class Diagnosis:
    """Every check, the level reached, and the failed checks of the next level."""

    checks: tuple[Check, ...]
    level: int
    next_level_missing: tuple[Check, ...] = field(default=())

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def next_level(self) -> int | None:
        return self.level + 1 if self.level < TOP_LEVEL else None


def reached_level(checks: Sequence[Check]) -> int:
    """The highest level L such that every check of levels 1..L passes (0 if level 1 fails).

    A level without checks counts as passed only up to the levels that have some."""
    level = 0
    for candidate in range(1, TOP_LEVEL + 1):
        if not all(c.passed for c in checks if c.level == candidate):
            break
        level = candidate
    return level


def conclude(checks: Sequence[Check]) -> Diagnosis:
    """The diagnosis of a list of checks."""
    level = reached_level(checks)
    missing = tuple(c for c in checks if c.level == level + 1 and not c.passed)
    return Diagnosis(checks=tuple(checks), level=level, next_level_missing=missing)


# -- the checks (pure) ----------------------------------------------------------------------


def _check(level: int, id_: str, title: str, passed: bool, seen: str, fix: str) -> Check:
    return Check(id=id_, level=level, title=title, passed=passed, seen=seen, fix=fix)


def _level1(config: ProjectConfig, state: ProjectState) -> list[Check]:
    checks: list[Check] = []
    applied = state.feast_registry and state.offline_table
    parts = [
        f"Feast registry {'present' if state.feast_registry else 'absent'}",
        f"offline feature table {'present' if state.offline_table else 'absent'}",
    ]
    checks.append(_check(
        1, "features.applied", "features declared once, applied to the feature store", applied,
        ", ".join(parts), "driftloop features apply",
    ))  # fmt: skip
    online = config.features.online_store
    if online.type == "sqlite":
        found = "present" if state.online_store else "absent"
        seen = f"online store (sqlite) at {online.path} {found}"
    else:  # doctor contacts no server: a Redis store counts once the views are applied
        seen = (
            f"online store (redis) at {online.redacted()}, not contacted; feature views "
            f"{'applied' if state.online_store else 'not applied'}"
        )
    checks.append(_check(
        1, "features.online", "online store materialized from the same definitions",
        state.online_store, seen, "driftloop features materialize",
    ))  # fmt: skip
    reachable = state.registry_error is None
    checks.append(_check(
        1, "registry.reachable", "model registry can be read", reachable,
        "registry opened" if reachable else str(state.registry_error),
        "driftloop train (creates the local registry), or set registry.tracking_uri",
    ))  # fmt: skip
    champ = state.champion
    checks.append(_check(
        1, "registry.champion", "a champion version is registered", champ is not None,
        f"champion is v{champ.version}" if champ is not None
        else ("no champion alias" if reachable else "registry not readable (registry.reachable)"),
        "driftloop train (a first version that passes its gate becomes champion), "
        "or driftloop models promote V",
    ))  # fmt: skip
    if champ is None:
        lineage_ok, lineage_seen = False, "no champion to inspect"
    else:
        missing = [t for t in LINEAGE_TAGS if not champ.tags.get(t)]
        commit = champ.tags.get("driftloop.git_commit", "")
        if commit == UNKNOWN_COMMIT and not champ.tags.get("driftloop.version"):
            missing.append("driftloop.git_commit (unknown, and no driftloop.version)")
        lineage_ok = not missing
        lineage_seen = (
            f"v{champ.version} lacks {', '.join(missing)}" if missing
            else f"v{champ.version}: data digest {champ.tags['driftloop.data_digest'][:12]}, "
            f"window {champ.tags['driftloop.window_start']}..{champ.tags['driftloop.window_end']}, "
            f"code {commit[:12]}"
        )  # fmt: skip
    checks.append(_check(
        1, "registry.lineage", "champion carries its training lineage", lineage_ok,
        lineage_seen, "driftloop train (registers a version with data, split, feature and "
        "code lineage), then promote it",
    ))  # fmt: skip
    return checks


def _level2(config: ProjectConfig, state: ProjectState) -> list[Check]:
    from driftloop.pipeline.metrics import HIGHER_IS_BETTER

    checks: list[Check] = []
    gate = config.training.gate
    higher = gate.metric in HIGHER_IS_BETTER
    bound_key = "min_metric" if higher else "max_metric"
    bound = gate.min_metric if higher else gate.max_metric
    gate_ok = bound is not None and gate.relative_tolerance <= MAX_GATE_RELATIVE_TOLERANCE
    checks.append(_check(
        2, "training.gate", "quality gate: relative tolerance and an absolute bound", gate_ok,
        f"metric {gate.metric}, relative_tolerance {gate.relative_tolerance:g} (sane <= "
        f"{MAX_GATE_RELATIVE_TOLERANCE:g}), {bound_key} {bound if bound is not None else 'unset'}",
        f"training.gate.{bound_key}: <bound>, training.gate.relative_tolerance: <= "
        f"{MAX_GATE_RELATIVE_TOLERANCE:g}",
    ))  # fmt: skip
    champ = state.champion
    checks.append(_check(
        2, "registry.champion_gated", "the champion passed the quality gate",
        champ is not None and champ.gate == "passed",
        f"v{champ.version} gate {champ.gate}" if champ is not None else "no champion",
        "driftloop train until a version passes its gate (driftloop models promote V without "
        "--force keeps rejected versions out)",
    ))  # fmt: skip
    skew = config.features.skew
    checks.append(_check(
        2, "features.skew_gate", "training-serving skew check is a strict test",
        skew.max_mismatch_rate <= MAX_SKEW_MISMATCH_RATE,
        f"features.skew.max_mismatch_rate {skew.max_mismatch_rate:g} "
        f"(sane <= {MAX_SKEW_MISMATCH_RATE:g})",
        f"features.skew.max_mismatch_rate: <= {MAX_SKEW_MISMATCH_RATE:g}",
    ))  # fmt: skip
    on_pass = config.training.on_pass
    checks.append(_check(
        2, "training.on_pass", "a passing candidate goes to the canary, not straight to champion",
        on_pass == "challenger", f"training.on_pass {on_pass}",
        "training.on_pass: challenger",
    ))  # fmt: skip
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
    checks.append(_check(
        2, "rollout.gates", "rollout promote/rollback gates within sane bounds", not problems,
        f"{r.strategy}, steps {steps}, promote at error < {r.promote_error_rate:g} and p99 <= "
        f"{r.promote_p99_ratio:g}x, roll back at error > {r.rollback_error_rate:g} or p99 > "
        f"{r.rollback_p99_ratio:g}x, KL < {r.kl_max:g}"
        + (f"; too loose: {'; '.join(problems)}" if problems else ""),
        f"rollout.rollback_error_rate <= {MAX_ROLLBACK_ERROR_RATE}, rollout.rollback_p99_ratio "
        f"<= {MAX_ROLLBACK_P99_RATIO}, rollout.kl_max <= {MAX_ROLLOUT_KL}",
    ))  # fmt: skip
    checks.append(_check(
        2, "serving.admin_token", "the server's admin API is on (automated deployment uses it)",
        state.admin_token,
        "admin token set" if state.admin_token else "no admin token: the admin API is disabled",
        "serving.admin_token: <secret>, or export DRIFTLOOP_ADMIN_TOKEN",
    ))  # fmt: skip
    counts = dict(state.rollouts or {})
    decided = sum(counts.get(s, 0) for s in DECIDED_ROLLOUT_STATES)
    if state.rollouts is None:
        seen = "no rollout has ever run (no rollouts table in .driftloop/state.db)"
    elif not counts:
        seen = "no rollout of this model in .driftloop/state.db"
    else:
        seen = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
    checks.append(_check(
        2, "rollout.history", "a rollout promoted or rolled back on its own", decided > 0, seen,
        "driftloop serve, then driftloop rollout start V",
    ))  # fmt: skip
    return checks


def _level3(config: ProjectConfig, state: ProjectState) -> list[Check]:
    checks: list[Check] = []
    loop = config.loop
    checks.append(_check(
        3, "loop.enabled", "the controller may retrain, on at least one trigger",
        loop.enabled and bool(loop.triggers),
        f"loop.enabled {str(loop.enabled).lower()}, triggers "
        f"{', '.join(loop.triggers) or 'none'}",
        "loop.enabled: true, loop.triggers: [feature_drift, prediction_drift, accuracy]",
    ))  # fmt: skip
    capped = loop.max_retrains <= loop.period_days
    checks.append(_check(
        3, "loop.policy", "retraining has a cool-down and a cap",
        loop.cooldown_days > 0 and capped,
        f"cooldown_days {loop.cooldown_days:g}, at most {loop.max_retrains} retrain(s) per "
        f"{loop.period_days} days",
        "loop.cooldown_days: > 0, loop.max_retrains: <= loop.period_days",
    ))  # fmt: skip
    m = config.monitoring
    problems = []
    if m.psi_act > MAX_PSI_ACT:
        problems.append(f"psi_act {m.psi_act:g} > {MAX_PSI_ACT}")
    if m.prediction_kl > MAX_PREDICTION_KL:
        problems.append(f"prediction_kl {m.prediction_kl:g} > {MAX_PREDICTION_KL}")
    if m.accuracy_ratio > MAX_ACCURACY_RATIO:
        problems.append(f"accuracy_ratio {m.accuracy_ratio:g} > {MAX_ACCURACY_RATIO}")
    checks.append(_check(
        3, "monitoring.thresholds", "drift and accuracy thresholds that can fire", not problems,
        f"PSI {m.psi_notice:g}/{m.psi_warning:g}/{m.psi_act:g}, prediction KL "
        f"{m.prediction_kl:g}, accuracy ratio {m.accuracy_ratio:g}"
        + (f"; too loose: {'; '.join(problems)}" if problems else ""),
        f"monitoring.psi_act <= {MAX_PSI_ACT}, monitoring.prediction_kl <= {MAX_PREDICTION_KL}, "
        f"monitoring.accuracy_ratio <= {MAX_ACCURACY_RATIO}",
    ))  # fmt: skip
    # Labels of the last delay_days of a window are not known yet when it is judged.
    delay, window = config.labels.delay_days, m.window_days
    coverage = max(0.0, (window - delay) / window)
    judgeable = coverage >= m.min_label_coverage and coverage > 0.0
    checks.append(_check(
        3, "labels.judgeable", "delayed labels arrive in time to judge accuracy", judgeable,
        f"labels.delay_days {delay} in a {window}-day window: at most {coverage:.0%} of its rows "
        f"labelled when judged (monitoring.min_label_coverage {m.min_label_coverage:.0%})",
        f"monitoring.window_days: >= {_min_window(delay, m.min_label_coverage)} (or a shorter "
        "labels.delay_days, or a lower monitoring.min_label_coverage)",
    ))  # fmt: skip
    progressive = _progressive(config)
    checks.append(_check(
        3, "rollout.progressive", "new versions are tried on part of the traffic (canary or A/B)",
        progressive,
        f"rollout.strategy {config.rollout.strategy}, steps "
        f"{' -> '.join(f'{s:g}%' for s in config.rollout.steps)}",
        "rollout.strategy: canary with rollout.steps [10, 50, 100] (or ab)",
    ))  # fmt: skip
    checks.append(_check(
        3, "serving.prediction_log", "the server logs predictions for monitoring",
        state.prediction_segments > 0,
        f"{state.prediction_segments} prediction log segment(s), {state.feedback_segments} "
        "feedback segment(s) under .driftloop/",
        "driftloop serve, send traffic and outcomes (/v1/feedback)",
    ))  # fmt: skip
    damaged, held = state.damaged_segments, state.quarantined_files
    checks.append(_check(
        3, "logs.readable", "every log segment can be read (none damaged, none quarantined)",
        not damaged and not held,
        f"{len(damaged)} damaged segment(s) in place"
        + (f" ({', '.join(damaged[:3])}{' ...' if len(damaged) > 3 else ''})" if damaged else "")
        + f", {held} file(s) in .driftloop/quarantine/",
        "`driftloop monitor` moves damaged segments aside; restore each from a backup or "
        "delete it from .driftloop/quarantine/ (records.jsonl says why each was moved)",
    ))  # fmt: skip
    runs = state.loop_events
    checks.append(_check(
        3, "loop.history", "the loop has run and recorded its decisions", bool(runs),
        "never run (no loop_events table in .driftloop/state.db)" if runs is None
        else f"{runs} loop event(s) recorded",
        "driftloop loop run",
    ))  # fmt: skip
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


# -- gathering (reads only) -------------------------------------------------------------


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)


def _state_db(path: Path, model: str) -> tuple[dict[str, int] | None, int | None]:
    """(rollouts of ``model`` by state, loop events of ``model``), None where a table is absent."""
    if not path.is_file():
        return None, None
    rollouts: dict[str, int] | None = None
    loop_events: int | None = None
    with closing(_read_only(path)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "rollouts" in tables:
            rows = db.execute(
                "SELECT state, COUNT(*) FROM rollouts WHERE model = ? GROUP BY state", (model,)
            ).fetchall()
            rollouts = {str(s): int(n) for s, n in rows}
        if "loop_events" in tables:
            columns = {r[1] for r in db.execute("PRAGMA table_info(loop_events)")}
            query = "SELECT COUNT(*) FROM loop_events"
            args: tuple[str, ...] = ()
            if "model" in columns:  # the loop's store keys its events by model
                query, args = query + " WHERE model = ?", (model,)
            loop_events = int(db.execute(query, args).fetchone()[0])
    return rollouts, loop_events


def _damaged(state_dir: Path) -> tuple[str, ...]:
    """Log segments whose first and last bytes are not Parquet's (read-only: not moved)."""
    from driftloop.storage.quarantine import damaged_segments

    return tuple(str(p.relative_to(state_dir)) for p, _why in damaged_segments(state_dir))


def _quarantined(state_dir: Path) -> int:
    from driftloop.storage.quarantine import QUARANTINE_DIR, RECORDS

    folder = state_dir / QUARANTINE_DIR
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.name != RECORDS)


def _champion(project: Project) -> tuple[ChampionFacts | None, str | None]:
    """(the champion, None) or (None, why the registry could not be read)."""
    from driftloop.errors import DriftloopError

    cfg = project.config.registry
    local_db = project.state_dir / "mlflow.db"
    if cfg.tracking_uri is None and not local_db.is_file():
        # Opening it would create an empty one; nothing was ever registered.
        return None, f"no registry yet: {local_db} does not exist (nothing trained)"
    try:
        from driftloop.registry import CHAMPION, open_registry

        registry = open_registry(project)
        registry.check_reachable()
        found = registry.alias(CHAMPION)
    except DriftloopError as exc:
        return None, str(exc)
    except Exception as exc:  # a doctor reports what it cannot read rather than crash
        return None, f"registry could not be read: {type(exc).__name__}: {exc}"
    if found is None:
        return None, None
    return ChampionFacts(version=found.version, gate=found.gate, tags=dict(found.tags)), None


def gather_state(project: Project) -> ProjectState:
    """Read the project's files, state database and registry; write nothing, start nothing."""
    from driftloop.features.layout import project_layout

    champion, registry_error = _champion(project)
    try:
        rollouts, loop_events = _state_db(project.state_dir / "state.db", project.model_name)
    except sqlite3.Error as exc:
        from driftloop.errors import ProjectError

        raise ProjectError(
            f"{project.state_dir / 'state.db'} cannot be read ({exc}): restore or remove it"
        ) from exc
    return ProjectState(
        feast_registry=project.feast_registry_path.is_file(),
        offline_table=project_layout(project).offline_path.is_file(),
        online_store=(
            project.online_store_path.is_file()
            if project.online_store_path is not None
            else project.feast_registry_path.is_file()
        ),
        registry_error=registry_error,
        champion=champion,
        admin_token=bool(project.config.serving.resolved_admin_token()),
        rollouts=rollouts,
        loop_events=loop_events,
        prediction_segments=segment_count(predictions_dir(project.state_dir)),
        feedback_segments=segment_count(feedback_dir(project.state_dir)),
        damaged_segments=_damaged(project.state_dir),
        quarantined_files=_quarantined(project.state_dir),
    )


def diagnose(project: Project) -> Diagnosis:
    """The maturity level ``project`` reaches, every check, and what the next level needs."""
    return conclude(evaluate(project.config, gather_state(project)))
