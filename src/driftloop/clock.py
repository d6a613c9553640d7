"""Clocks: every time-dependent part of driftloop takes one.

The wall clock is for production; the simulated clock lets a scenario replay two
years in a minute with the very same code.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SimulatedClock", "WallClock", "ensure_utc"]


def ensure_utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """What time-dependent code asks of time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        ...


class WallClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep needs seconds >= 0, got {seconds}")
        time.sleep(seconds)

    def __repr__(self) -> str:
        return "WallClock()"


class SimulatedClock:
    """Time that moves only when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep needs seconds >= 0, got {seconds}")
        self.advance(timedelta(seconds=seconds))

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"a simulated clock only moves forward, got {delta}")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump to ``moment``, which must not be earlier than now."""
        target = ensure_utc(moment)
        with self._lock:
            if target < self._now:
                raise ValueError(
                    f"a simulated clock only moves forward: now {self._now.isoformat()}, "
                    f"asked for {target.isoformat()}"
                )
            self._now = target
            return self._now

    def __repr__(self) -> str:
        return f"SimulatedClock(now={self._now.isoformat()})"
