"""Start a project's loop over: remove what a replay (or a served loop) left behind.

What goes: the local model registry (``mlflow.db`` and ``mlartifacts/``), the state
database (aliases' history, rollouts, loop events, routes), the prediction and feedback
logs, the timeline, and a SQLite online store inside the project. What stays: the
config, the data, the Feast repository (``feature_repo/``) and anything else in the
folder. Everything is first moved aside into one folder inside ``.driftloop/`` and only
then deleted: if a move fails, what was moved is put back and nothing is lost.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from driftloop.config import CONFIG_FILENAME
from driftloop.errors import ProjectError, UsageError
from driftloop.monitoring.predlog import FEEDBACK, PREDICTIONS
from driftloop.project import Project

__all__ = ["STATE_NAMES", "FreshStart", "remove_loop_state", "require_project_folder"]

# Inside .driftloop/: what a replay or a served loop writes.
STATE_NAMES = ("mlflow.db", "mlartifacts", "state.db", PREDICTIONS, FEEDBACK, "timeline.json")
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class FreshStart:
    """What ``remove_loop_state`` removed and what it kept, as paths relative to the root."""

    removed: tuple[str, ...]
    kept: tuple[str, ...]


def require_project_folder(root: Path) -> None:
    """Refuse a folder that is not a driftloop project (before anything is removed)."""
    folder = root.expanduser().resolve()
    if not (folder / CONFIG_FILENAME).is_file():
        raise ProjectError(
            f"{folder} is not a driftloop project (it has no {CONFIG_FILENAME}): --fresh "
            "removes a project's registry and state, so it runs only in a project folder; "
            "pass --project DIR, or make one with `driftloop init DIR`"
        )


def _targets(project: Project) -> list[Path]:
    state = project.state_dir
    names = [
        n + s
        for n in STATE_NAMES
        for s in ("", *_SQLITE_SIDECARS)
        if not n.endswith(".json") or not s
    ]
    found = [state / n for n in names]
    online = project.online_store_path
    if online is not None:
        found += [online.with_name(online.name + s) for s in ("", *_SQLITE_SIDECARS)]
    root = project.root.resolve()
    inside = []
    for path in dict.fromkeys(found):
        if not (path.exists() or path.is_symlink()):
            continue
        # a link is removed as a link; nothing outside the project is ever touched
        where = path.parent.resolve() / path.name
        if not where.is_relative_to(root) or where == root:
            continue
        inside.append(path)
    return inside


def _kept(project: Project) -> list[str]:
    kept = [CONFIG_FILENAME, "data/", "feature_repo/"]
    registry = project.config.registry
    if registry.artifact_location is not None:
        kept.append(f"artifacts at {registry.artifact_location} (outside this project's state)")
    if project.online_store_path is None:
        kept.append(f"the online store ({project.online_store_label}): materialize rewrites it")
    return [k for k in kept if not k.endswith("/") or (project.root / k).is_dir()]


def remove_loop_state(project: Project) -> FreshStart:
    """Remove the registry, state, logs and online store of ``project`` (see the module)."""
    tracking = project.config.registry.tracking_uri
    if tracking is not None:
        from driftloop.registry.mlflow_registry import mask_uri

        raise UsageError(
            f"registry.tracking_uri is {mask_uri(tracking)}: --fresh clears only the local "
            f"registry under .driftloop/; delete model {project.model_name!r} there (or set "
            "registry.model_name to a new name in driftloop.yaml), then replay without --fresh"
        )
    targets = _targets(project)
    if not targets:
        return FreshStart((), tuple(_kept(project)))
    trash = Path(tempfile.mkdtemp(prefix=".fresh-", dir=project.state_dir))
    moved: list[tuple[Path, Path]] = []
    try:
        for i, path in enumerate(targets):
            aside = trash / f"{i}-{path.name}"
            os.replace(path, aside)
            moved.append((path, aside))
    except OSError as exc:
        for path, aside in reversed(moved):
            os.replace(aside, path)
        shutil.rmtree(trash, ignore_errors=True)
        raise ProjectError(
            f"could not remove {targets[len(moved)]} ({exc}); nothing was removed: stop "
            "`driftloop serve` or other commands using this project, then retry"
        ) from exc
    removed = [
        path.relative_to(project.root).as_posix() + ("/" if aside.is_dir() else "")
        for path, aside in moved
    ]
    shutil.rmtree(trash, ignore_errors=True)
    return FreshStart(tuple(removed), tuple(_kept(project)))
