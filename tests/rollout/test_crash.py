"""Kill the rollout at every point of its state machine, restart it: it finishes correctly
and applies no step twice (the router sees each weight once, the log each transition once)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.rollout.conftest import Harness


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, no except clause catches it."""


class Dying:
    """Delegates to ``inner``; dies on the n-th call of ``method``, before or after it."""

    def __init__(self, inner: Any, method: str, nth: int, when: str) -> None:
        self._inner, self._method, self._nth, self._when = inner, method, nth, when
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name != self._method:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            if self.count == self._nth and self._when == "before":
                raise Killed(name)
            out = target(*args, **kwargs)
            if self.count == self._nth and self._when == "after":
                raise Killed(name)
            return out

        return call


POINTS = [
    ("router", "reload", 1, "before"),  # pending: challenger alias moved, not loaded
    ("router", "reload", 1, "after"),
    ("router", "set_weight", 1, "before"),  # step 1 stored, weight not set
    ("router", "set_weight", 1, "after"),  # weight set, step not marked applied
    ("router", "set_weight", 2, "before"),  # step 2 stored
    ("router", "set_weight", 2, "after"),
    ("router", "reload", 2, "before"),  # promoted stored, aliases moved, not reloaded
    ("registry", "move_alias", 1, "after"),  # challenger alias set, rollout still pending
    ("registry", "move_alias", 2, "before"),  # promoted stored, champion not moved
    ("registry", "move_alias", 2, "after"),  # champion moved, challenger alias not cleared
    ("store", "mark_applied", 1, "before"),
    ("store", "mark_applied", 3, "before"),  # promoted and applied, not marked
]


@pytest.mark.parametrize(("what", "method", "nth", "when"), POINTS)
def test_killed_good_rollout_resumes_and_promotes_once(
    harness: Harness, what: str, method: str, nth: int, when: str
) -> None:
    traffic = harness.traffic(seed=11)
    if what == "router":
        first = harness.controller(router=Dying(harness.router, method, nth, when))
    elif what == "registry":
        first = harness.controller(registry=Dying(harness.registry, method, nth, when))
    else:
        first = harness.controller()
        first.store = Dying(harness.store, method, nth, when)
    rollout = first.start("2")
    with pytest.raises(Killed):
        first.run(rollout.id, on_tick=traffic)

    second = harness.controller()  # a new process: same stores, same live router
    assert second.start("2").id == rollout.id  # `rollout start 2` again resumes it
    final = second.run(rollout.id, on_tick=traffic)

    assert final.state == "promoted" and final.applied
    events = [(e.from_state, e.to_state) for e in harness.store.events(rollout.id)]
    assert events == [
        ("", "pending"),
        ("pending", "step 1 (10%)"),
        ("step 1 (10%)", "step 2 (50%)"),
        ("step 2 (50%)", "promoted"),
    ]
    weights = [w for kind, w, _ in harness.router.calls if kind == "weight"]
    assert weights == [10.0, 50.0]
    assert harness.registry.alias("champion").version == "2"
    assert harness.registry.alias("challenger") is None
    promotions = [m for m in harness.registry.alias_history("champion") if m.kind == "promote"]
    assert len(promotions) == 1


@pytest.mark.parametrize(
    ("method", "nth", "when"),
    [("set_weight", 2, "before"), ("set_weight", 2, "after"), ("reload", 2, "before")],
)
def test_killed_rollback_resumes_and_rolls_back_once(
    harness: Harness, method: str, nth: int, when: str
) -> None:
    traffic = harness.traffic(seed=12, stable_errors=0.01, canary_errors=0.05)
    first = harness.controller(router=Dying(harness.router, method, nth, when))
    rollout = first.start("2")
    with pytest.raises(Killed):
        first.run(rollout.id, on_tick=traffic)
    final = harness.controller().run(rollout.id, on_tick=traffic)
    assert final.state == "rolled_back" and final.applied
    assert [w for kind, w, _ in harness.router.calls if kind == "weight"] == [10.0, 0.0]
    assert max(traffic.canary_seen) == 10.0
    assert harness.registry.alias("challenger") is None
    clears = [
        m
        for m in harness.registry.alias_history("challenger")
        if m.kind == "clear" and m.actor.startswith("driftloop rollout")
    ]
    assert len(clears) == 1
