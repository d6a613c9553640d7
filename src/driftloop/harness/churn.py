"""The rollout churn of the load check: promote/rollback cycles through the admin API,
and the timeline of the route tables they put in force."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from driftloop.registry import ModelRegistry, aliases

__all__ = ["STEPS_PER_CYCLE", "ChurnStep", "RouteSpan", "RouteTimeline", "run_churn"]

STEPS_PER_CYCLE = 6  # challenger + reload, weight 10, weight 50, promote, reload, rollback


@dataclass(frozen=True)
class RouteSpan:
    """A route table and the monotonic window in which it may have been serving."""

    champion: str
    challenger: str | None
    challenger_weight: float
    since: float  # start of the admin call that installed it
    until: float = math.inf  # end of the admin call that replaced it

    @classmethod
    def of(cls, routes: dict[str, Any], since: float) -> RouteSpan:
        challenger = routes.get("challenger")
        return cls(
            str(routes["champion"]),
            None if challenger is None else str(challenger),
            float(routes.get("challenger_weight") or 0.0),
            since,
        )

    def serves(self) -> set[tuple[str, str]]:
        """The (route, version) pairs this table can answer with."""
        pairs = {("champion", self.champion)}
        if self.challenger is not None and self.challenger_weight > 0:
            pairs.add(("challenger", self.challenger))
        return pairs


class RouteTimeline:
    """The route tables in the order the admin API installed them (thread-safe)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self._spans = [RouteSpan.of(routes, -math.inf)]
        self._lock = threading.Lock()

    @property
    def current(self) -> RouteSpan:
        with self._lock:
            return self._spans[-1]

    @property
    def spans(self) -> list[RouteSpan]:
        with self._lock:
            return list(self._spans)

    def record(self, started: float, finished: float, routes: dict[str, Any]) -> None:
        """An admin call between ``started`` and ``finished`` left ``routes`` serving."""
        with self._lock:
            self._spans[-1] = replace(self._spans[-1], until=finished)
            self._spans.append(RouteSpan.of(routes, started))

    def allowed(self, sent: float, received: float) -> set[tuple[str, str]]:
        """What any table possibly in force between ``sent`` and ``received`` serves."""
        out: set[tuple[str, str]] = set()
        for span in self.spans:
            if span.since <= received and span.until >= sent:
                out |= span.serves()
        return out


@dataclass(frozen=True)
class ChurnStep:
    """One admin call of the churn: what, when, and its status (200 expected)."""

    name: str
    started: float
    finished: float
    status: int
    error: str = ""


def run_churn(
    base_url: str,
    token: str,
    registry: ModelRegistry,
    versions: tuple[str, str],
    cycles: int,
    pace: Callable[[int], None],
    timeline: RouteTimeline,
) -> list[ChurnStep]:
    """``cycles`` promote/rollback cycles between ``versions`` through the admin API.

    Each cycle names the non-champion version challenger in the registry and reloads,
    sets weights 10 and 50, promotes, reloads, and rolls back; ``pace(step)`` is called
    before every admin call (it waits for the load, or for the clock).
    """
    import httpx

    steps: list[ChurnStep] = []
    with httpx.Client(
        base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as admin:

        def call(step: int, name: str, path: str, body: dict[str, Any]) -> None:
            pace(step)
            started = time.monotonic()
            try:
                r = admin.post(path, json=body)
                status, error = r.status_code, "" if r.status_code == 200 else r.text[:200]
            except httpx.HTTPError as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}"
            finished = time.monotonic()
            if status == 200:
                timeline.record(started, finished, r.json())
            steps.append(ChurnStep(name, started, finished, status, error))

        for cycle in range(cycles):
            step = cycle * STEPS_PER_CYCLE
            other = versions[1] if timeline.current.champion == versions[0] else versions[0]
            why, actor = f"cycle {cycle}", "load churn"
            aliases.set_challenger(registry, other, kind="promote", actor=actor, reason=why)
            call(step, "reload (new challenger)", "/admin/reload", {})
            call(step + 1, "weight 10", "/admin/weights", {"challenger_weight": 10})
            call(step + 2, "weight 50", "/admin/weights", {"challenger_weight": 50})
            call(step + 3, "promote", "/admin/promote", {"reason": f"churn cycle {cycle}"})
            call(step + 4, "reload", "/admin/reload", {})
            call(step + 5, "rollback", "/admin/rollback", {"reason": f"churn cycle {cycle}"})
    return steps
