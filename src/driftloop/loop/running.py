"""The loop's pace: a check every ``check_every_hours``, rollout ticks between, pauses
while a dependency is down, and the controller lease taken, renewed and given up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from driftloop.loop.lease import ControllerLease, LeaseHolder
from driftloop.loop.outages import OUTAGES

if TYPE_CHECKING:
    from driftloop.loop.controller import LoopController, LoopTurn

__all__ = ["run_turns", "take_lease"]

logger = logging.getLogger("driftloop.loop")


def run_turns(
    loop: LoopController,
    until: datetime | None,
    on_turn: Callable[[LoopTurn], None] | None,
    lease: ControllerLease | None,
    on_wait: Callable[[LeaseHolder], None] | None,
) -> None:
    """Turn ``loop`` until ``until`` (see :meth:`LoopController.run`)."""
    every = loop.cfg.check_every_hours * 3600.0
    tick_every = loop.project.config.rollout.check_interval_s
    next_check = loop.clock.now()
    while until is None or loop.clock.now() < until:
        if lease is not None and not lease.renew():
            logger.warning("loop: the lease of %s was taken over; waiting", loop.model)
            if not take_lease(loop, lease, until, on_wait):
                return
        paused = False
        try:
            loop.outages.probe()
            loop.outages.resume()
            if loop.clock.now() >= next_check:
                turn = loop.check()
                next_check = turn.at + timedelta(seconds=every)
                if on_turn is not None:
                    on_turn(turn)
            else:
                loop.tick_rollout()
        except OUTAGES as exc:
            loop.outages.pause(exc)
            paused = True
        now = loop.clock.now()
        running = loop.rollouts.store.active(loop.model) is not None
        wait = (next_check - now).total_seconds()
        if paused:
            wait = tick_every  # probe again at the rollout's pace
        elif running:
            wait = min(wait, tick_every)
        if lease is not None:
            wait = min(wait, lease.renew_every_s)
        if until is not None:
            wait = min(wait, (until - now).total_seconds())
            if wait <= 0:
                break
        loop.clock.sleep(max(wait, 0.0))


def take_lease(
    loop: LoopController,
    lease: ControllerLease,
    until: datetime | None,
    on_wait: Callable[[LeaseHolder], None] | None,
) -> bool:
    """Wait for the lease and record taking it; False if ``until`` came first."""
    got = lease.wait(until, on_wait)
    if got is None:
        return False
    message = f"{lease.holder} is the active controller (lease {lease.lease_s:g} s)"
    if got.taken_from is not None:
        message += f", taking over from {got.taken_from}, whose lease expired"
    loop.store.record(
        loop.model,
        loop.clock.now(),
        "lease_acquired",
        message,
        evidence={
            "holder": lease.holder,
            "taken_from": got.taken_from,
            "lease_s": lease.lease_s,
        },
    )
    return True
