"""The alias operations: promote, roll back, set and clear the challenger.

The one place that moves ``champion`` and ``challenger`` and checks a move first; the CLI,
the server's admin API, the training pipeline, the rollout and the loop all call these
instead of composing :meth:`ModelRegistry.move_alias` themselves. A refused move raises
:class:`~driftloop.errors.AliasError` (exit 2, HTTP 409) saying why and what to do.
"""

from __future__ import annotations

from driftloop.errors import AliasError
from driftloop.faults import crash_point
from driftloop.registry.base import ALIASES, CHALLENGER, CHAMPION, ModelRegistry, ModelVersion
from driftloop.registry.history import AliasMove, previous_holder

__all__ = [
    "check_promotion",
    "clear_challenger",
    "point",
    "promote",
    "rollback",
    "rollback_target",
    "set_challenger",
]


def point(
    registry: ModelRegistry, alias: str, version: str, *, kind: str, actor: str, reason: str
) -> AliasMove | None:
    """Point ``alias`` at ``version``; None (nothing moved) when it already points there.

    ``kind`` is recorded with the move ("train", "canary", "promote", ...)."""
    if alias not in ALIASES:
        raise AliasError(f"alias must be one of {', '.join(ALIASES)}, got {alias!r}")
    current = registry.alias(alias)
    if current is not None and current.version == version:
        return None
    return registry.move_alias(alias, version, kind, actor, reason)


def set_challenger(
    registry: ModelRegistry, version: str, *, kind: str, actor: str, reason: str
) -> AliasMove | None:
    """Make ``version`` the challenger; None when it already is. ``kind`` is recorded with
    the move ("train" for a trained version, "canary" for a rollout's)."""
    return point(registry, CHALLENGER, version, kind=kind, actor=actor, reason=reason)


def clear_challenger(
    registry: ModelRegistry, *, actor: str, reason: str, of: str | None = None
) -> AliasMove | None:
    """Remove the challenger alias (only when it points at ``of``, if given); None when
    there was nothing to remove."""
    current = registry.alias(CHALLENGER)
    if current is None or (of is not None and current.version != of):
        return None
    return registry.move_alias(CHALLENGER, None, "clear", actor, reason)


def check_promotion(registry: ModelRegistry, version: str, *, force: bool) -> ModelVersion:
    """The version to promote, or why not: unknown (ModelNotFound), already the champion,
    or rejected by its gate (unless ``force``)."""
    target = registry.get(version)  # raises ModelNotFound for an unknown version
    if target.gate != "passed" and not force:
        raise AliasError(
            f"version {version} failed its gate ({target.tags.get('driftloop.gate_summary')}):"
            " pass --force to promote it anyway"
        )
    champion = registry.alias(CHAMPION)
    if champion is not None and champion.version == version:
        raise AliasError(f"version {version} is already the champion")
    return target


def promote(registry: ModelRegistry, version: str, *, actor: str, reason: str) -> AliasMove | None:
    """Make ``version`` the champion, then clear the challenger if it pointed there.

    Idempotent, so a promotion resumed after a crash finishes: None when ``version`` already
    is the champion (the challenger is still cleared). Check first with
    :func:`check_promotion`; this moves whatever it is given."""
    move = point(registry, CHAMPION, version, kind="promote", actor=actor, reason=reason)
    if move is not None:
        crash_point("aliases.champion_moved")
    clear_challenger(registry, actor=actor, reason=f"v{version} promoted", of=version)
    return move


def rollback_target(registry: ModelRegistry) -> str:
    """The champion to go back to (rollbacks undone as a stack), or why there is none."""
    current = registry.alias(CHAMPION)
    if current is None:
        raise AliasError("there is no champion to roll back: run `driftloop train` first")
    target = previous_holder(registry.alias_history(CHAMPION))
    if target is None:
        raise AliasError(
            f"v{current.version} is the only champion there has been: nothing to roll back to"
        )
    return target


def rollback(registry: ModelRegistry, target: str, *, actor: str, reason: str) -> AliasMove:
    """Put the champion back on ``target`` (from :func:`rollback_target`)."""
    return registry.move_alias(CHAMPION, target, "rollback", actor, reason)
