"""Load with rollout churn against a running server, and the checks on what came back.

The churn itself (the admin calls and the route tables they install) is in
:mod:`driftloop.harness.churn`.

The reliability benchmark's and its test's driver. Many concurrent connections send valid
requests (V2 infer and the entity endpoint) while a churn thread moves the registry's
aliases and the server's route table through the admin API: challenger set and reloaded,
weights 10 % then 50 %, promote, reload, rollback. Every answer must be a 200 naming a
(route, version) that a route table in force while it was in flight serves, and after a
graceful stop the prediction log must hold exactly the rows that were answered.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

from driftloop.features.engineering import ENTITY_KEYS
from driftloop.harness.churn import ChurnStep, RouteTimeline
from driftloop.monitoring.predlog import read_predictions

__all__ = [
    "Answer",
    "LoadPlan",
    "LoadSummary",
    "LogCheck",
    "check_log",
    "misrouted",
    "run_load",
    "summarize",
]

Row = tuple[str, str, str]  # one answered prediction: (its request id, version, route)


@dataclass(frozen=True)
class Answer:
    """One request: when it was in flight, its status (0: no response) and its rows."""

    request_id: str
    endpoint: str
    sent: float
    received: float
    status: int
    rows: tuple[Row, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


@dataclass(frozen=True)
class LoadPlan:
    """What to send: seeded single- and multi-row requests, a share of them by entity."""

    base_url: str
    model_name: str
    connections: int
    entities: Sequence[tuple[Any, ...]] = ()
    entity_keys: tuple[str, ...] = ENTITY_KEYS  # the project's entity key names, in order
    entity_share: float = 0.25
    max_rows: int = 3
    seed: int = 0
    prefix: str = "load"

    def __post_init__(self) -> None:
        if not self.prefix.replace("_", "").isalnum():
            raise ValueError(f"prefix must be letters, digits and '_', got {self.prefix!r}")


def _bodies(plan: LoadPlan, n_features: int, count: int = 256) -> list[tuple[str, int, bytes]]:
    """A seeded pool of (endpoint, rows, body), sent in turn."""
    rng = np.random.default_rng(plan.seed)
    out: list[tuple[str, int, bytes]] = []
    for _ in range(count):
        n = int(rng.integers(1, plan.max_rows + 1))
        if plan.entities and rng.random() < plan.entity_share:
            picks = rng.choice(len(plan.entities), size=min(n, len(plan.entities)), replace=False)
            keys = [plan.entities[int(i)] for i in picks]
            doc: dict[str, Any] = {
                "entities": [dict(zip(plan.entity_keys, k, strict=True)) for k in keys]
            }
            out.append(("entity", len(keys), orjson.dumps(doc)))
        else:
            x = rng.uniform(0.0, 30.0, size=(n, n_features)).round(2)
            doc = {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [n, n_features],
                        "datatype": "FP32",
                        "data": x.tolist(),
                    }
                ]
            }
            out.append(("v2", n, orjson.dumps(doc)))
    return out


def _rows(endpoint: str, rid: str, doc: dict[str, Any]) -> tuple[Row, ...]:
    if endpoint == "entity":
        return tuple(
            (str(p["request_id"]), str(p["model_version"]), str(p["route"]))
            for p in doc["predictions"]
        )
    n = int(doc["outputs"][0]["shape"][0])
    ids = [rid] if n == 1 else [f"{rid}:{i}" for i in range(n)]
    version, route = str(doc["model_version"]), str(doc["parameters"]["route"])
    return tuple((i, version, route) for i in ids)


class _Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: against the same server on the
    same busy machine, httpx's async client managed 40-65 requests a second on 1-64
    connections, this 470-550 and wrk 545-1,860 (measured back to back, V2 single row)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head[1:] if line)
        }
        if "content-length" not in fields:
            raise ConnectionError(f"a response without Content-Length: {head[0]}")
        data = await self.reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return int(head[0].split(" ", 2)[1]), data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _send(conn: _Connection, plan: LoadPlan, i: int, body: tuple[str, int, bytes]) -> Answer:
    endpoint, n, content = body
    rid = f"{plan.prefix}-{i}"
    path = "/v1/predict" if endpoint == "entity" else f"/v2/models/{plan.model_name}/infer"
    headers = {"Content-Type": "application/json", "X-Request-Id": rid}
    if endpoint == "v2":
        headers["X-Routing-Key"] = rid  # spread V2 requests over both versions
    sent = time.monotonic()
    try:
        status, data = await conn.post(path, headers, content)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        await conn.close()  # a dropped connection is a failed request; the next one reconnects
        return Answer(rid, endpoint, sent, time.monotonic(), 0, error=f"{type(exc).__name__}")
    received = time.monotonic()
    if status != 200:
        return Answer(rid, endpoint, sent, received, status, error=data[:200].decode("latin-1"))
    try:
        rows = _rows(endpoint, rid, orjson.loads(data))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return Answer(rid, endpoint, sent, received, status, error=f"malformed answer: {exc!r}")
    error = "" if len(rows) == n else f"answered {len(rows)} rows for {n}"
    return Answer(rid, endpoint, sent, received, 200, rows, error)


def run_load(
    plan: LoadPlan, keep_going: Callable[[int], bool], answers: list[Answer] | None = None
) -> list[Answer]:
    """Send requests on ``plan.connections`` connections while ``keep_going(issued)``
    (called with the number sent so far before each request); each answer is appended
    to ``answers`` (a new list by default) as it arrives, so another thread can follow."""
    import httpx

    out: list[Answer] = [] if answers is None else answers
    meta = httpx.get(f"{plan.base_url}/v2/models/{plan.model_name}", timeout=60).json()
    pool = _bodies(plan, len(meta["parameters"]["feature_order"]))
    where = urlsplit(plan.base_url)
    host, port = where.hostname or "127.0.0.1", where.port or 80

    async def main() -> list[Answer]:
        issued = 0

        async def worker() -> None:
            nonlocal issued
            conn = _Connection(host, port)
            try:
                while keep_going(issued):  # no await between the check and the count
                    i, issued = issued, issued + 1
                    out.append(await _send(conn, plan, i, pool[i % len(pool)]))
            finally:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(plan.connections)))
        return out

    return asyncio.run(main())


def misrouted(answers: Sequence[Answer], timeline: RouteTimeline) -> list[Answer]:
    """Answers naming a (route, version) no table in force while they were in flight serves."""
    bad = []
    for a in answers:
        if a.ok and not {(r[2], r[1]) for r in a.rows} <= timeline.allowed(a.sent, a.received):
            bad.append(a)
    return bad


@dataclass(frozen=True)
class LogCheck:
    """Prediction-log rows of a run against the rows its answers acknowledged."""

    expected: int
    found: int
    missing: tuple[Row, ...]  # acknowledged, not in the log (or fewer times)
    unexpected: tuple[Row, ...]  # in the log, never acknowledged (or more times)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def check_log(state_dir: Path, answers: Sequence[Answer], prefix: str) -> LogCheck:
    """Compare the served rows (request id, version, route) logged for ``prefix``'s requests."""
    expected = Counter(row for a in answers if a.ok for row in a.rows)
    log = read_predictions(
        state_dir, f"starts_with(request_id, '{prefix}-')", ["request_id", "version", "route"]
    )
    found: Counter[Row] = Counter()
    if not log.empty:
        found = Counter(zip(log["request_id"], log["version"], log["route"], strict=True))
    return LogCheck(
        sum(expected.values()),
        sum(found.values()),
        tuple((expected - found).elements()),
        tuple((found - expected).elements()),
    )


@dataclass(frozen=True)
class LoadSummary:
    """Requests, failures, throughput and client-side latency of one run."""

    requests: int
    failed: int
    rows: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    p99_during_admin_ms: float  # requests in flight while an admin call ran
    during_admin: int

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0


def summarize(answers: Sequence[Answer], steps: Sequence[ChurnStep] = ()) -> LoadSummary:
    """Numbers of a run; latencies are of the successful requests."""
    ok = [a for a in answers if a.ok]
    sent = np.array([a.sent for a in ok])
    received = np.array([a.received for a in ok])
    lat = (received - sent) * 1000.0
    overlaps = np.zeros(len(ok), dtype=bool)
    for s in steps:
        overlaps |= (sent <= s.finished) & (received >= s.started)
    during = lat[overlaps]
    elapsed = max(a.received for a in answers) - min(a.sent for a in answers) if answers else 0.0

    def pct(x: np.ndarray, q: float) -> float:
        return float(np.percentile(x, q)) if x.size else math.nan

    return LoadSummary(
        len(answers),
        len(answers) - len(ok),
        sum(len(a.rows) for a in ok),
        elapsed,
        pct(lat, 50),
        pct(lat, 99),
        pct(during, 99),
        int(during.size),
    )
