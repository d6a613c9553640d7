from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftloop.registry.history import AliasHistory, AliasMove, previous_holder

AT = datetime(2020, 1, 1, tzinfo=UTC)


def move(to: str | None, kind: str = "promote", frm: str | None = None) -> AliasMove:
    return AliasMove("m", "champion", frm, to, kind, "tests", "why", AT)


def test_previous_holder_walks_back_through_rollbacks() -> None:
    moves = [move("1", "train"), move("2"), move("3")]
    assert previous_holder(moves) == "2"
    moves.append(move("2", "rollback", "3"))
    assert previous_holder(moves) == "1"  # a second rollback goes further back, not to 3


def test_previous_holder_is_none_for_a_single_champion() -> None:
    assert previous_holder([move("1", "train")]) is None
    assert previous_holder([]) is None


def test_previous_holder_skips_a_repeat_of_the_current_version() -> None:
    assert previous_holder([move("1"), move("2"), move("2")]) == "1"


def test_a_move_is_kept_only_if_the_registry_call_succeeds(tmp_path: Path) -> None:
    history = AliasHistory(tmp_path / "state.db")
    with history.recording(move("1")):
        pass
    with pytest.raises(RuntimeError), history.recording(move("2")):
        raise RuntimeError("registry refused")
    assert [m.to_version for m in history.moves("m")] == ["1"]
    assert history.moves("m", "challenger") == []
    assert history.moves("m")[0].at == AT
