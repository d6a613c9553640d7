"""Load with rollout churn: a real `driftloop serve` under concurrent valid requests while
promote/rollback cycles, reloads and weight changes happen, against the same load without
churn (the baseline), in one run.

    .venv/bin/python benchmarks/load_churn.py [--project DIR] [--duration 60]
        [--connections 64] [--cycles 10] [--seed 0]

Without --project a default retail project is created in a temporary folder, with two
versions (trained as of 28 days before the shift and as of the shift). With --project the
project's champion and its latest other version are used in place: the churn moves their
aliases (each cycle ends with a rollback, so the champion is the same afterwards, the
challenger alias cleared) and the prediction log grows.

Each run starts its own server subprocess on 127.0.0.1 (a free port, admin token from
DRIFTLOOP_ADMIN_TOKEN), sends 3 s of warm-up (checked like the rest, not timed) and then
--duration seconds of requests on --connections connections (driftloop.harness.loadcheck's
keep-alive client in this process: 3/4 V2 infer, 1/4 the entity endpoint, 1-3 rows each),
stops it with SIGTERM and reads its prediction log with DuckDB. The churn run spreads
--cycles cycles evenly over the duration, each: challenger set in the registry + reload,
weight 10, weight 50, promote, reload, rollback. Latencies are the client's (send to
answer), so they include the load generator's own time on the shared cores.
Exit 1 when a valid request failed, an answer named a version not serving while it was in
flight, an admin call failed, the server did not stop cleanly, or a log row was lost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from driftloop.harness.churn import STEPS_PER_CYCLE, ChurnStep, RouteTimeline, run_churn
from driftloop.harness.loadcheck import (
    Answer,
    LoadPlan,
    LoadSummary,
    LogCheck,
    check_log,
    misrouted,
    run_load,
    summarize,
)
from serving import free_port, wait_http

console = Console(width=140)
WARMUP_S = 3.0  # first requests on a fresh server: Feast opens, caches fill


@dataclass(frozen=True)
class RunResult:
    """One run's numbers and verdicts."""

    name: str
    summary: LoadSummary
    by_endpoint: dict[str, LoadSummary]
    warmup: LoadSummary
    warmup_log: LogCheck
    misrouted: int
    log: LogCheck
    steps: list[ChurnStep]
    exit_code: int | None

    @property
    def ok(self) -> bool:
        return (
            self.summary.failed == 0
            and self.misrouted == 0
            and self.log.ok
            and self.warmup.failed == 0
            and self.warmup_log.ok
            and self.exit_code == 0
            and all(s.status == 200 for s in self.steps)
        )


def build_project(folder: Path) -> tuple[Any, tuple[str, str]]:
    """The default retail project, online store materialized, v1 champion and v2 trained."""
    from driftloop.app.scaffold import create_project
    from driftloop.features.store import FeatureStore
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry
    from driftloop.registry.base import CHALLENGER

    project = create_project(folder / "bench", "retail", 1)
    store = FeatureStore(project)
    store.materialize(store.apply().last_day)
    registry = open_registry(project)
    shift = project.config.scenario.shift.date
    first = run_training(project, registry, shift - timedelta(days=28), actor="bench")
    second = run_training(project, registry, shift, actor="bench", on_pass="challenger")
    if registry.alias(CHALLENGER) is not None:
        registry.move_alias(CHALLENGER, None, "clear", "bench", "the churn sets it")
    return project, (first.version, second.version)


def existing_project(root: Path) -> tuple[Any, tuple[str, str]]:
    """``root``'s champion and its latest other version; exit 2 without two versions."""
    from driftloop.errors import DriftloopError
    from driftloop.project import Project
    from driftloop.registry import open_registry
    from driftloop.registry.base import CHAMPION

    try:
        project = Project.load(root)
        registry = open_registry(project)
    except DriftloopError as exc:
        console.print(f"--project {root}: {exc}")
        raise SystemExit(2) from None
    champion = registry.alias(CHAMPION)
    others = sorted(
        (
            v.version
            for v in registry.versions()
            if champion is None or v.version != champion.version
        ),
        key=int,
    )
    if champion is None or not others:
        console.print(
            f"--project {root}: needs a champion and one more registered version "
            "(run `driftloop train` twice)"
        )
        raise SystemExit(2)
    return project, (champion.version, others[-1])


def one_run(
    project: Any, versions: tuple[str, str], name: str, prefix: str, cycles: int, args: Any
) -> RunResult:
    """Serve, load (with churn when ``cycles``), stop with SIGTERM, check answers and log."""
    from driftloop.features.store import FeatureStore
    from driftloop.registry import open_registry

    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DRIFTLOOP_ADMIN_TOKEN": token, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server_log = project.state_dir / f"load-churn-{prefix}.log"
    with server_log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "driftloop",
                "serve",
                "--project",
                str(project.root),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with console.status(f"{name}: starting the server"):
            wait_http(f"{url}/v2/health/ready", proc)
        auth = {"Authorization": f"Bearer {token}"}
        timeline = RouteTimeline(httpx.get(f"{url}/admin/routes", headers=auth).json())
        entities = FeatureStore(project).entities()
        plan = LoadPlan(
            url, project.model_name, args.connections, entities, seed=args.seed, prefix=prefix
        )
        with console.status(f"{name}: {WARMUP_S:g} s warm-up on a fresh server (not timed)"):
            warm_start = time.monotonic()
            warmup = run_load(
                replace(plan, prefix=f"{prefix}_warm"),
                lambda _n: time.monotonic() < warm_start + WARMUP_S,
            )
        total_steps = cycles * STEPS_PER_CYCLE
        start = time.monotonic()
        steps: list[ChurnStep] = []
        churn_done = threading.Event()

        def pace(step: int) -> None:  # admin calls spread evenly over the duration
            delay = start + (step + 0.5) * args.duration / total_steps - time.monotonic()
            time.sleep(max(delay, 0.0))

        def churn() -> None:
            try:
                steps.extend(
                    run_churn(url, token, open_registry(project), versions, cycles, pace, timeline)
                )
            finally:
                churn_done.set()

        thread = threading.Thread(target=churn, daemon=True)
        if cycles:
            thread.start()
        else:
            churn_done.set()
        with console.status(f"{name}: {args.connections} connections, {args.duration} s"):
            answers: list[Answer] = run_load(
                plan, lambda _n: time.monotonic() < start + args.duration or not churn_done.is_set()
            )
        if cycles:
            thread.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(timeout=120)
    if exit_code != 0:
        console.print(f"{name}: the server exited with {exit_code}; its output: {server_log}")
    log = check_log(project.state_dir, answers, prefix)
    warmup_log = check_log(project.state_dir, warmup, f"{prefix}_warm")
    answers = [*warmup, *answers]  # for the failure lines below
    for a in [a for a in answers if not a.ok][:5]:
        console.print(f"{name}: failed {a.endpoint} {a.request_id}: {a.status} {a.error}")
    for s in [s for s in steps if s.status != 200]:
        console.print(f"{name}: admin call {s.name!r} answered {s.status}: {s.error}")
    measured = answers[len(warmup) :]
    by_endpoint = {
        e: summarize([a for a in measured if a.endpoint == e], steps) for e in ("v2", "entity")
    }
    return RunResult(
        name,
        summarize(measured, steps),
        by_endpoint,
        summarize(warmup),
        warmup_log,
        len(misrouted(answers, timeline)),
        log,
        steps,
        exit_code,
    )


def print_table(results: list[RunResult], args: Any) -> None:
    table = Table(
        title=f"{args.connections} connections, {args.duration} s a run, "
        "driftloop serve on 127.0.0.1, 2 cores shared with the client"
    )
    columns = (
        "run",
        "requests",
        "failed",
        "wrong version",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99 ms in admin calls",
        "admin calls ok",
        "log rows expected",
        "found",
    )
    for column in columns:
        table.add_column(
            column, justify="left" if column == "run" else "right", no_wrap=column == "run"
        )
    for r in results:
        s = r.summary
        admin = f"{sum(x.status == 200 for x in r.steps)}/{len(r.steps)}" if r.steps else "-"
        during = f"{s.p99_during_admin_ms:.1f}" if r.steps else "-"
        table.add_row(
            r.name,
            f"{s.requests:,}",
            str(s.failed),
            str(r.misrouted),
            f"{s.rps:,.0f}",
            f"{s.p50_ms:.1f}",
            f"{s.p99_ms:.1f}",
            during,
            admin,
            f"{r.log.expected:,}",
            f"{r.log.found:,}",
        )
    console.print(table)
    for r in results:
        w = r.warmup
        notes = [
            f"warm-up {w.requests:,} requests, {w.failed} failed, log rows "
            f"{r.warmup_log.found:,} of {r.warmup_log.expected:,}"
        ]
        if r.steps:
            notes.append(f"{r.summary.during_admin:,} requests in flight during admin calls")
        notes += [
            f"{e} {x.requests:,} requests, p50 {x.p50_ms:.1f} ms, p99 {x.p99_ms:.1f} ms"
            for e, x in r.by_endpoint.items()
        ]
        console.print(f"{r.name}: " + "; ".join(notes))
    base, churn = results[0].summary, results[-1].summary
    console.print(
        f"churn / baseline: req/s {churn.rps / base.rps:.2f}x, p50 "
        f"{churn.p50_ms / base.p50_ms:.2f}x, p99 {churn.p99_ms / base.p99_ms:.2f}x; "
        f"{args.cycles} promote/rollback cycles, {len(results[-1].steps)} admin calls"
    )


def main() -> None:
    """Run the baseline and the churn run, print the table, exit 1 on any lost request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a project with two versions (in place)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load a run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--cycles", type=int, default=10, help="promote/rollback cycles")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request bodies")
    args = parser.parse_args()
    if args.duration < 1 or args.connections < 1 or args.cycles < 1:
        parser.error("--duration, --connections and --cycles must be at least 1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as tmp:
        if args.project:
            project, versions = existing_project(args.project)
        else:
            with console.status("creating the retail project and training two versions"):
                project, versions = build_project(Path(tmp))
        tag = secrets.token_hex(3)  # request ids of this invocation, in a log that may hold more
        results = [
            one_run(project, versions, "baseline (no churn)", f"base_{tag}", 0, args),
            one_run(
                project,
                versions,
                f"churn ({args.cycles} cycles)",
                f"churn_{tag}",
                args.cycles,
                args,
            ),
        ]
    print_table(results, args)
    if not all(r.ok for r in results):
        console.print("FAILED: a request failed, a version was wrong, or a log row was lost")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
