"""Playing days of traffic through a real server on a simulated clock, with the loop running.

Each simulated day: the online store is materialized with the rows valid that day; the
labels of the days whose delay has passed arrive through ``/v1/feedback``; traffic comes
in rounds (every store asks for its products' forecasts once per round, one HTTP request
each, as a replenishment job would), and after every round a running rollout is ticked; at the
end of the day the controller checks. The clock only moves when the simulation says so,
so a day of the server, the rollout and the loop takes as long as its requests do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from driftloop.clock import SimulatedClock
from driftloop.features.store import FeatureStore, utc_midnight
from driftloop.loop.controller import LoopController, LoopTurn
from driftloop.loop.policy import Signals

__all__ = ["DayServed", "Simulation", "midnight"]

REPLAY_READ_TIMEOUT_S = 1800.0  # a batch to the replay's own server (loopback)

_JUST_AFTER = timedelta(microseconds=1)  # Feast's window includes its start

Intervention = Callable[["Simulation", date], None]


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# A retail scenario's traffic: every store asks for every product's forecast 12 times a day.
ROUNDS_PER_DAY = 12


@dataclass(frozen=True)
class DayServed:
    """What one simulated day served and what the controller saw at its end."""

    day: date
    requests: int
    feedback: int
    signals: Signals | None
    turn: LoopTurn | None
    champion: str | None
    challenger: str | None
    played: int = 0  # days played so far, this one included
    total: int = 0  # days the run plays


@dataclass
class Simulation:
    """Drives ``server_url`` and ``loop`` over days; ``served`` collects every answer."""

    store: FeatureStore
    server_url: str
    loop: LoopController
    clock: SimulatedClock
    flush: Callable[[], Any]
    rounds_per_day: int = ROUNDS_PER_DAY
    served: list[dict[str, Any]] = field(default_factory=list)
    _pending_labels: dict[date, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        project, layout = self.store.project, self.store.layout
        events = layout.read_events()
        self._label = layout.label
        self._keys = self.store.keys
        self._event_traffic = layout.event_requests
        day = layout.event_days(events)
        self._truth: dict[tuple[Any, ...], float] = {}
        self._by_store: dict[int, list[int]] = {}
        self._events: dict[date, pd.DataFrame] = {}
        self._delay = project.config.labels.delay_days
        self._every = project.config.rollout.check_interval_s
        self._last_tick: datetime | None = None
        self._materialized: datetime | None = None
        self._max_rows = project.config.serving.max_batch_rows
        if self._event_traffic:  # the events themselves are the traffic, in time order
            grouped = events.assign(_day=day).groupby("_day", sort=True)
            self._events = {d: g for d, g in grouped}  # type: ignore[misc]
            return
        store_key, product_key = self._keys
        self._truth = {
            (d, int(s), int(p)): float(u)
            for d, s, p, u in zip(
                day, events[store_key], events[product_key], events[self._label], strict=True
            )
        }
        for store_id, product_id in self.store.entities():
            self._by_store.setdefault(store_id, []).append(product_id)

    def run(
        self,
        start: date,
        end: date,
        interventions: Mapping[date, Intervention] | None = None,
        on_day: Callable[[DayServed], None] | None = None,
    ) -> list[DayServed]:
        """Serve ``start``..``end`` (exclusive); ``interventions[d]`` runs at d's start."""
        import httpx

        days: list[DayServed] = []
        # The replay's own server on loopback: a batch may wait minutes for the CPU on a
        # loaded machine (a fraud replay at load 18 died on a 60 s read timeout); only a
        # server that accepts no connection is an error early.
        timeout = httpx.Timeout(REPLAY_READ_TIMEOUT_S, connect=30.0)
        with httpx.Client(base_url=self.server_url, timeout=timeout) as client:
            day = start
            while day < end:
                served = self._day(client, day, (interventions or {}).get(day))
                served = replace(served, played=len(days) + 1, total=(end - start).days)
                days.append(served)
                if on_day is not None:
                    on_day(served)
                day += timedelta(days=1)
        return days

    def _day(self, client: Any, day: date, intervention: Intervention | None) -> DayServed:
        self.clock.set(midnight(day))
        self._materialize(utc_midnight(pd.Timestamp(day)))
        feedback = self._deliver_labels(client, day)
        if intervention is not None:
            intervention(self, day)
        requests = 0
        if self._event_traffic:
            todays = self._events.get(day)
            moments = [] if todays is None else list(todays.groupby("event_timestamp", sort=True))
            for batch in self._steps(moments):
                self.clock.set(max(self.clock.now(), batch[-1][0]))
                requests += self._events_step(client, day, [g for _, g in batch])
                self._maybe_tick()
        else:
            step = timedelta(hours=24 / self.rounds_per_day)
            for r in range(self.rounds_per_day):
                self.clock.set(midnight(day) + r * step)
                requests += self._round(client, day, r)
                self.clock.sleep(step.total_seconds() / 2)  # the rollout looks mid-round
                self._maybe_tick()
        self.clock.set(midnight(day) + timedelta(hours=24) - timedelta(seconds=1))
        self.flush()
        turn = self.loop.check()
        signals = turn.signals
        champion = self.loop.registry.alias("champion")
        challenger = self.loop.registry.alias("challenger")
        return DayServed(
            day,
            requests,
            feedback,
            signals,
            turn,
            champion.version if champion else None,
            challenger.version if challenger else None,
        )

    def _materialize(self, until: datetime) -> None:
        """The rows valid at ``until`` into the online store: the whole TTL window the first
        time, then only the rows stamped since the last call (the store keeps the rest).
        The first window is written as the later ones are, straight to the online store
        (the rows Feast's materialize of it leaves: tests/features/test_store.py)."""
        if self._materialized is None:
            since = until - timedelta(days=self.store.project.config.features.ttl_days)
        else:
            since = self._materialized + _JUST_AFTER
        if since <= until:
            self.store.materialize(until, since=since)
        self._materialized = until if self._materialized is None else max(until, self._materialized)

    def _steps(
        self, moments: list[tuple[Any, pd.DataFrame]]
    ) -> list[list[tuple[datetime, pd.DataFrame]]]:
        """A day's moments, gathered into the steps the server sees as one batch: up to and
        including the moment after which a rollout tick is due (routes change only there),
        and at most ``serving.max_batch_rows`` events."""
        steps: list[list[tuple[datetime, pd.DataFrame]]] = []
        current: list[tuple[datetime, pd.DataFrame]] = []
        rows, last_tick, now = 0, self._last_tick, self.clock.now()
        for stamp, group in moments:
            moment = pd.Timestamp(stamp).to_pydatetime()
            if current and rows + len(group) > self._max_rows:
                steps.append(current)
                current, rows = [], 0
            current.append((moment, group))
            rows += len(group)
            now = max(now, moment)
            if last_tick is None or (now - last_tick).total_seconds() >= self._every:
                steps.append(current)
                current, rows, last_tick = [], 0, now
        if current:
            steps.append(current)
        return steps

    def _maybe_tick(self) -> None:
        now = self.clock.now()
        if self._last_tick is None or (now - self._last_tick).total_seconds() >= self._every:
            # Only a running rollout reads the logs here (its outcome gates): without one the
            # tick is a no-op and the buffered rows wait for the end of the day's flush.
            if self.loop.rollouts.store.active(self.loop.model) is not None:
                self.flush()
                self.loop.tick_rollout()
            self._last_tick = now

    def _batch(self, client: Any, bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Each body's predictions: the bodies go as one /v1/predict/batch call, each
        answered as /v1/predict would answer it alone."""
        response = client.post("/v1/predict/batch", json={"requests": bodies})
        response.raise_for_status()
        return [r["predictions"] for r in response.json()["responses"]]

    def _events_step(self, client: Any, day: date, moments: list[pd.DataFrame]) -> int:
        """A table project's events of one step: one request each (in one batch), routed by
        the event, with the fields its repository says a request carries."""
        fields = list(self.store.layout.request_fields)
        rows = [row for events in moments for row in events.to_dict("records")]
        bodies = []
        for row in rows:
            item = {k: _plain(row[k]) for k in (*self._keys, *fields)}
            stamp = pd.Timestamp(row["event_timestamp"])
            key = "/".join(str(row[k]) for k in self._keys) + f"/{stamp.isoformat()}"
            bodies.append({"event_time": stamp.isoformat(), "entities": [item], "routing_key": key})
        for row, answers in zip(rows, self._batch(client, bodies), strict=True):
            answer = answers[0]
            out = {
                "day": day,
                **{k: row[k] for k in self._keys},
                "version": str(answer["model_version"]),
                "prediction": answer["prediction"],
                "request_id": answer["request_id"],
                "route": answer["route"],
                "label": float(row[self._label]),
            }
            self.served.append(out)
            self._pending_labels.setdefault(pd.Timestamp(row["event_timestamp"]).date(), []).append(
                out
            )
        return len(rows)

    def _round(self, client: Any, day: date, index: int) -> int:
        """Every store asks for the forecasts of its products: one request per store (the
        round's requests in one batch), routed as a whole by its run (store, day, round), so
        each version serves every store."""
        bodies = []
        for store_id, products in self._by_store.items():
            entities = [{self._keys[0]: store_id, self._keys[1]: p} for p in products]
            bodies.append(
                {
                    "event_time": day.isoformat(),
                    "entities": entities,
                    "routing_key": f"store-{store_id}/{day}/{index}",
                }
            )
        for chunk in _chunks(bodies, self._max_rows):
            for answers in self._batch(client, chunk):
                for answer in answers:
                    row = {
                        "day": day,
                        self._keys[0]: answer[self._keys[0]],
                        self._keys[1]: answer[self._keys[1]],
                        "version": str(answer["model_version"]),
                        "prediction": answer["prediction"],
                        "request_id": answer["request_id"],
                        "route": answer["route"],
                    }
                    self.served.append(row)
                    self._pending_labels.setdefault(day, []).append(row)
        return len(bodies)

    def _deliver_labels(self, client: Any, today: date) -> int:
        """Labels of the days whose delay has passed, as the business would report them."""
        sent = 0
        for day in sorted(d for d in self._pending_labels if d + timedelta(self._delay) <= today):
            rows = self._pending_labels.pop(day)
            outcomes = []
            for row in rows:
                value = row.get("label")
                if value is None:
                    value = self._truth.get((day, row[self._keys[0]], row[self._keys[1]]))
                if value is not None and np.isfinite(value):
                    outcomes.append(
                        {"request_id": row["request_id"], "value": value, "name": self._label}
                    )
            for chunk in range(0, len(outcomes), 1000):
                part = outcomes[chunk : chunk + 1000]
                client.post("/v1/feedback", json={"outcomes": part}).raise_for_status()
                sent += len(part)
        return sent

    def served_frame(self) -> pd.DataFrame:
        """Every answer with its true label (NaN where the data has none)."""
        frame = pd.DataFrame(self.served)
        if frame.empty or "label" in frame:
            return frame
        frame["label"] = [
            self._truth.get((d, s, p), np.nan)
            for d, s, p in zip(
                frame["day"], frame[self._keys[0]], frame[self._keys[1]], strict=True
            )
        ]
        return frame


def _chunks(bodies: list[dict[str, Any]], limit: int) -> list[list[dict[str, Any]]]:
    """Consecutive bodies holding at most ``limit`` entities together (a body alone may
    hold more: the server then refuses it, as it would refuse it alone)."""
    out: list[list[dict[str, Any]]] = []
    rows = limit
    for body in bodies:
        n = len(body["entities"])
        if rows + n > limit:
            out.append([])
            rows = 0
        out[-1].append(body)
        rows += n
    return out


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers as Python's, missing as None."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and not np.isfinite(value) else value
    if value is pd.NA or value is pd.NaT:
        return None
    return value
