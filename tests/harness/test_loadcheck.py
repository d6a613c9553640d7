"""The load-with-churn checks on their own: which versions a request in flight may name,
and the prediction-log comparison (the server runs in tests/rollout/test_load_churn.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.harness.churn import RouteTimeline
from driftloop.harness.loadcheck import Answer, LoadPlan, check_log, misrouted
from driftloop.monitoring.predlog import predictions_dir
from driftloop.storage.segments import SegmentLog


def _routes(champion: str, challenger: str | None = None, weight: float = 0.0) -> dict[str, object]:
    return {"champion": champion, "challenger": challenger, "challenger_weight": weight}


def _answer(rid: str, sent: float, received: float, *rows: tuple[str, str]) -> Answer:
    return Answer(rid, "v2", sent, received, 200, tuple((rid, v, r) for v, r in rows))


def test_a_request_may_name_any_table_in_force_while_it_was_in_flight() -> None:
    timeline = RouteTimeline(_routes("1"))
    timeline.record(10.0, 11.0, _routes("1", "2", 0.0))  # challenger loaded, no traffic yet
    timeline.record(20.0, 21.0, _routes("1", "2", 50.0))
    timeline.record(30.0, 31.0, _routes("2"))  # promoted
    assert timeline.allowed(0.0, 5.0) == {("champion", "1")}
    assert timeline.allowed(12.0, 19.0) == {("champion", "1")}  # weight 0 serves no challenger
    assert timeline.allowed(19.0, 20.5) == {("champion", "1"), ("challenger", "2")}
    assert timeline.allowed(25.0, 30.5) == {
        ("champion", "1"),
        ("challenger", "2"),
        ("champion", "2"),
    }
    assert timeline.allowed(32.0, 40.0) == {("champion", "2")}
    answers = [
        _answer("ok", 22.0, 23.0, ("2", "challenger")),
        _answer("late", 32.0, 33.0, ("1", "champion")),
        _answer("early", 1.0, 2.0, ("2", "challenger")),
    ]
    assert [a.request_id for a in misrouted(answers, timeline)] == ["late", "early"]


def test_the_log_check_names_missing_and_unexpected_rows(tmp_path: Path) -> None:
    log = SegmentLog(predictions_dir(tmp_path), 3600.0, 10_000)
    log.append(
        [
            {"request_id": "t-1", "version": "1", "route": "champion"},
            {"request_id": "t-2", "version": "1", "route": "champion"},
            {"request_id": "t-2", "version": "1", "route": "champion"},  # twice
            {"request_id": "other-1", "version": "1", "route": "champion"},
        ]
    )
    log.flush()
    answers = [
        _answer("t-1", 0.0, 1.0, ("1", "champion")),
        _answer("t-2", 0.0, 1.0, ("1", "champion")),
        _answer("t-3", 0.0, 1.0, ("2", "challenger")),
        Answer("t-4", "v2", 0.0, 1.0, 503, error="not ready"),
    ]
    check = check_log(tmp_path, answers, "t")
    assert (check.expected, check.found) == (3, 3)
    assert check.missing == (("t-3", "2", "challenger"),)
    assert check.unexpected == (("t-2", "1", "champion"),)
    assert not check.ok


def test_a_request_id_prefix_must_be_plain() -> None:
    with pytest.raises(ValueError, match="prefix must be letters"):
        LoadPlan("http://127.0.0.1:1", "m", 1, prefix="x'; DROP")
