"""What the doctor reads (files, the state database, the registry), read-only."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.app.doctor.checks import evaluate
from driftloop.app.doctor.facts import ChampionFacts, Diagnosis, ProjectState, conclude
from driftloop.monitoring.predlog import feedback_dir, predictions_dir, segment_count

if TYPE_CHECKING:
    from driftloop.project import Project

__all__ = ["diagnose", "gather_state"]


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
