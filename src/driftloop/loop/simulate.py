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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from driftloop.clock import SimulatedClock
from driftloop.features.engineering import ENTITY_KEYS
from driftloop.features.store import FeatureStore, utc_midnight
from driftloop.features.training_set import LABEL_COLUMN
from driftloop.loop.controller import LoopController, LoopTurn
from driftloop.loop.policy import Signals

__all__ = ["DayServed", "Simulation", "midnight"]

Intervention = Callable[["Simulation", date], None]


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


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


@dataclass
class Simulation:
    """Drives ``server_url`` and ``loop`` over days; ``served`` collects every answer."""

    store: FeatureStore
    server_url: str
    loop: LoopController
    clock: SimulatedClock
    flush: Callable[[], Any]
    rounds_per_day: int = 12
    served: list[dict[str, Any]] = field(default_factory=list)
    _pending_labels: dict[date, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sales = self.store.project.read_sales()
        day = pd.to_datetime(sales["date"]).dt.date
        self._truth = {
            (d, int(s), int(p)): float(u)
            for d, s, p, u in zip(day, sales[ENTITY_KEYS[0]], sales[ENTITY_KEYS[1]],
                                  sales[LABEL_COLUMN], strict=True)
        }  # fmt: skip
        self._by_store: dict[int, list[int]] = {}
        for store_id, product_id in self.store.entities():
            self._by_store.setdefault(store_id, []).append(product_id)
        self._delay = self.store.project.config.labels.delay_days
        self._every = self.store.project.config.rollout.check_interval_s
        self._last_tick: datetime | None = None

    def run(
        self,
        start: date,
        end: date,
        interventions: Mapping[date, Intervention] | None = None,
        on_day: Callable[[DayServed], None] | None = None,
    ) -> list[DayServed]:
        """Serve ``start``..``end`` (exclusive); ``interventions[d]`` runs at d's start."""
        import httpx

        days = []
        with httpx.Client(base_url=self.server_url, timeout=60) as client:
            day = start
            while day < end:
                served = self._day(client, day, (interventions or {}).get(day))
                days.append(served)
                if on_day is not None:
                    on_day(served)
                day += timedelta(days=1)
        return days

    def _day(self, client: Any, day: date, intervention: Intervention | None) -> DayServed:
        self.clock.set(midnight(day))
        self.store.materialize(utc_midnight(pd.Timestamp(day)))
        feedback = self._deliver_labels(client, day)
        if intervention is not None:
            intervention(self, day)
        requests = 0
        step = timedelta(hours=24 / self.rounds_per_day)
        for r in range(self.rounds_per_day):
            self.clock.set(midnight(day) + r * step)
            requests += self._round(client, day, r)
            self.clock.sleep(step.total_seconds() / 2)  # the rollout looks mid-round
            now = self.clock.now()
            if self._last_tick is None or (now - self._last_tick).total_seconds() >= self._every:
                self.flush()  # the rollout's outcome gates read the logs
                self.loop.tick_rollout()
                self._last_tick = now
        self.clock.set(midnight(day) + timedelta(hours=24) - timedelta(seconds=1))
        self.flush()
        turn = self.loop.check()
        signals = turn.signals
        champion = self.loop.registry.alias("champion")
        challenger = self.loop.registry.alias("challenger")
        return DayServed(
            day, requests, feedback, signals, turn,
            champion.version if champion else None, challenger.version if challenger else None,
        )  # fmt: skip

    def _round(self, client: Any, day: date, index: int) -> int:
        """Every store asks for the forecasts of its products: one request per store, routed
        as a whole by its run (store, day, round), so each version serves every store."""
        n = 0
        for store_id, products in self._by_store.items():
            entities = [{ENTITY_KEYS[0]: store_id, ENTITY_KEYS[1]: p} for p in products]
            body = {"event_time": day.isoformat(), "entities": entities,
                    "routing_key": f"store-{store_id}/{day}/{index}"}  # fmt: skip
            response = client.post("/v1/predict", json=body)
            response.raise_for_status()
            n += 1
            for answer in response.json()["predictions"]:
                row = {"day": day, ENTITY_KEYS[0]: answer[ENTITY_KEYS[0]],
                       ENTITY_KEYS[1]: answer[ENTITY_KEYS[1]],
                       "version": str(answer["model_version"]), "prediction": answer["prediction"],
                       "request_id": answer["request_id"], "route": answer["route"]}  # fmt: skip
                self.served.append(row)
                self._pending_labels.setdefault(day, []).append(row)
        return n

    def _deliver_labels(self, client: Any, today: date) -> int:
        """Labels of the days whose delay has passed, as the business would report them."""
        sent = 0
        for day in sorted(d for d in self._pending_labels if d + timedelta(self._delay) <= today):
            rows = self._pending_labels.pop(day)
            outcomes = []
            for row in rows:
                value = self._truth.get((day, row[ENTITY_KEYS[0]], row[ENTITY_KEYS[1]]))
                if value is not None:
                    outcomes.append({"request_id": row["request_id"], "value": value,
                                     "name": LABEL_COLUMN})  # fmt: skip
            for chunk in range(0, len(outcomes), 1000):
                part = outcomes[chunk : chunk + 1000]
                client.post("/v1/feedback", json={"outcomes": part}).raise_for_status()
                sent += len(part)
        return sent

    def served_frame(self) -> pd.DataFrame:
        """Every answer with its true label (NaN where the data has none)."""
        frame = pd.DataFrame(self.served)
        if frame.empty:
            return frame
        frame["label"] = [
            self._truth.get((d, s, p), np.nan)
            for d, s, p in zip(frame["day"], frame[ENTITY_KEYS[0]], frame[ENTITY_KEYS[1]],
                               strict=True)
        ]  # fmt: skip
        return frame
