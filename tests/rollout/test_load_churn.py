"""Load with rollout churn through a real server (the short form of benchmarks/load_churn.py):
promote/rollback cycles, reloads and weight changes fail no request, every answer names a
version that was serving while it was in flight, and the log holds every answered row."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from driftloop.features.store import FeatureStore
from driftloop.harness.churn import STEPS_PER_CYCLE, ChurnStep, RouteTimeline, run_churn
from driftloop.harness.loadcheck import Answer, LoadPlan, check_log, misrouted, run_load, summarize
from driftloop.registry import open_registry
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "churn-test-token"
CONNECTIONS = 16
REQUESTS = 600  # at least; the load goes on until the churn is done
AFTER_EACH_STEP = 25  # requests sent after an admin call and answered before the next one
CYCLES = 3


def _wait(condition: Any, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.005)


def test_promote_rollback_churn_under_load_fails_nothing_and_loses_no_log_row(
    rollout_project: Any,
) -> None:
    ctx = build_context(rollout_project, admin_token=TOKEN)
    server = BackgroundServer(ctx).start()
    answers: list[Answer] = []
    steps: list[ChurnStep] = []
    churn_done = threading.Event()
    try:
        routes = httpx.get(
            f"{server.url}/admin/routes", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        assert (routes["champion"], routes["challenger"]) == ("1", None)
        timeline = RouteTimeline(routes)

        def pace(_step: int) -> None:
            # At most CONNECTIONS requests were in flight when the last call returned, so
            # every answer past them was sent after it: each table serves AFTER_EACH_STEP.
            mark = len(answers) + CONNECTIONS + AFTER_EACH_STEP
            _wait(lambda: len(answers) >= mark, f"{mark} answers")

        def churn() -> None:
            try:
                steps.extend(
                    run_churn(
                        server.url,
                        TOKEN,
                        open_registry(rollout_project),
                        ("1", "2"),
                        CYCLES,
                        pace,
                        timeline,
                    )
                )
            finally:
                churn_done.set()

        thread = threading.Thread(target=churn)
        thread.start()
        plan = LoadPlan(
            server.url,
            ctx.model_name,
            CONNECTIONS,
            FeatureStore(rollout_project).entities(),
            prefix="churn",
        )
        deadline = time.monotonic() + 120
        run_load(
            plan,
            lambda n: (n < REQUESTS or not churn_done.is_set()) and time.monotonic() < deadline,
            answers,
        )
        thread.join()
    finally:
        server.stop()  # the graceful stop: in-flight requests finish, the log is flushed

    assert [(s.name, s.status, s.error) for s in steps if s.status != 200] == []
    assert len(steps) == CYCLES * STEPS_PER_CYCLE
    assert [(a.request_id, a.status, a.error) for a in answers if not a.ok] == []
    assert len(answers) >= REQUESTS
    assert [(a.request_id, a.rows) for a in misrouted(answers, timeline)] == []
    seen = {(route, version) for a in answers for _, version, route in a.rows}
    assert {("champion", "1"), ("challenger", "2"), ("champion", "2")} <= seen
    assert {a.endpoint for a in answers} == {"v2", "entity"}
    log = check_log(rollout_project.state_dir, answers, "churn")
    assert (log.missing, log.unexpected) == ((), ())
    assert log.found == log.expected == summarize(answers).rows
    assert timeline.current.champion == "1"  # every cycle ended with its rollback


def test_a_stop_under_load_logs_every_answered_row(rollout_project: Any) -> None:
    ctx = build_context(rollout_project, admin_token=TOKEN)
    ctx.settings = ctx.settings.model_copy(update={"log_flush_interval_s": 3600.0})
    server = BackgroundServer(ctx).start()
    answers: list[Answer] = []
    stopped = threading.Event()
    pending_at_stop: list[int] = []

    def stop_mid_load() -> None:
        _wait(lambda: len(answers) >= 300, "300 answers")
        pending_at_stop.append(ctx.predictions.pending)
        server.stop()  # what SIGTERM does: stop accepting, finish in-flight, flush, exit
        stopped.set()

    stopper = threading.Thread(target=stop_mid_load)
    stopper.start()
    plan = LoadPlan(
        server.url,
        ctx.model_name,
        CONNECTIONS,
        FeatureStore(rollout_project).entities(),
        prefix="stop",
    )
    run_load(plan, lambda _n: not stopped.is_set(), answers)
    stopper.join()

    answered = [a for a in answers if a.ok]
    assert len(answered) >= 300 and pending_at_stop[0] > 0  # the last flush had rows to write
    # refused once closed (status 0), never a 5xx: the failure names each answer and its body
    assert [(a.request_id, a.status, a.error) for a in answers if not a.ok and a.status] == []
    log = check_log(rollout_project.state_dir, answers, "stop")
    assert (log.missing, log.unexpected) == ((), ())
    assert log.found == summarize(answers).rows
