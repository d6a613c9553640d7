"""The alias operations every caller uses (CLI, admin API, training, rollout, loop)."""

from __future__ import annotations

from typing import Any

import pytest

from driftloop.errors import AliasError, ModelNotFound
from driftloop.registry import CHALLENGER, CHAMPION, aliases, open_registry


def _holders(registry: Any) -> tuple[str | None, str | None]:
    champion, challenger = registry.alias(CHAMPION), registry.alias(CHALLENGER)
    return (
        champion.version if champion else None,
        challenger.version if challenger else None,
    )


def test_promote_clears_the_challenger_it_promotes_and_rollback_walks_back(
    canary_copy: Any,
) -> None:
    registry = open_registry(canary_copy)
    assert _holders(registry) == ("1", "2")
    aliases.check_promotion(registry, "2", force=False)
    move = aliases.promote(registry, "2", actor="tests", reason="drill")
    assert (move.from_version, move.to_version, move.kind) == ("1", "2", "promote")
    assert _holders(registry) == ("2", None)
    cleared = registry.alias_history(CHALLENGER)[-1]
    assert (cleared.kind, cleared.reason) == ("clear", "v2 promoted")
    with pytest.raises(AliasError, match="version 2 is already the champion") as info:
        aliases.check_promotion(registry, "2", force=True)
    assert info.value.http_status == 409 and info.value.exit_code == 2
    with pytest.raises(ModelNotFound):
        aliases.check_promotion(registry, "99", force=True)

    target = aliases.rollback_target(registry)
    assert target == "1"
    aliases.rollback(registry, target, actor="tests", reason="drill over")
    assert _holders(registry) == ("1", None)
    with pytest.raises(AliasError, match="v1 is the only champion there has been"):
        aliases.rollback_target(registry)


def test_point_and_clear_move_nothing_when_there_is_nothing_to_move(canary_copy: Any) -> None:
    registry = open_registry(canary_copy)
    before = len(registry.alias_history())
    assert aliases.point(registry, CHALLENGER, "2", kind="canary", actor="t", reason="r") is None
    assert aliases.clear_challenger(registry, actor="t", reason="r", of="1") is None
    assert len(registry.alias_history()) == before
    cleared = aliases.clear_challenger(registry, actor="t", reason="r", of="2")
    assert cleared is not None and cleared.to_version is None
    assert aliases.clear_challenger(registry, actor="t", reason="r") is None
    with pytest.raises(AliasError, match="alias must be one of champion, challenger"):
        aliases.point(registry, "staging", "2", kind="canary", actor="t", reason="r")
