from __future__ import annotations

import pytest

from driftloop.serving.routing import RouteTable, bucket, choose

KEYS = [f"{s}:{p}" for s in range(100) for p in range(100)]  # 10,000 entities


def share_on_challenger(table: RouteTable) -> float:
    return sum(choose(table, k)[0] == "challenger" for k in KEYS) / len(KEYS)


@pytest.mark.parametrize("weight", [10.0, 50.0, 90.0])
def test_split_over_10k_entities_is_within_two_points(weight: float) -> None:
    assert share_on_challenger(RouteTable("1", "2", weight)) == pytest.approx(
        weight / 100, abs=0.02
    )


def test_assignment_is_sticky() -> None:
    table = RouteTable("1", "2", 10.0)
    first = [choose(table, k) for k in KEYS]
    assert [choose(table, k) for k in KEYS] == first


def test_an_entity_on_the_challenger_stays_there_as_the_weight_grows() -> None:
    at10 = {k for k in KEYS if choose(RouteTable("1", "2", 10.0), k)[0] == "challenger"}
    at50 = {k for k in KEYS if choose(RouteTable("1", "2", 50.0), k)[0] == "challenger"}
    assert at10 <= at50


def test_a_new_challenger_draws_a_new_sample() -> None:
    two = {k for k in KEYS if choose(RouteTable("1", "2", 10.0), k)[0] == "challenger"}
    three = {k for k in KEYS if choose(RouteTable("1", "3", 10.0), k)[0] == "challenger"}
    assert len(two & three) < 0.2 * len(two)


def test_edges_of_the_weight_range() -> None:
    assert share_on_challenger(RouteTable("1", "2", 0.0)) == 0.0
    assert share_on_challenger(RouteTable("1", "2", 100.0)) == 1.0
    assert choose(RouteTable("1"), "x") == ("champion", "1")


def test_bucket_is_stable_across_processes() -> None:
    # BLAKE2b, not Python's salted hash(): a fixed value, the same on every run.
    assert bucket("3:7", "challenger-2") == bucket("3:7", "challenger-2")
    assert 0 <= bucket("3:7", "challenger-2") < 10_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"champion": "1", "challenger": "2", "challenger_weight": 101.0}, "within 0..100"),
        ({"champion": "1", "challenger_weight": 5.0}, "needs a challenger"),
        ({"champion": "1", "shadow": True}, "needs a challenger"),
        ({"champion": "1", "challenger": "1"}, "cannot be champion and challenger"),
    ],
)
def test_invalid_tables_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTable(**kwargs)  # type: ignore[arg-type]
