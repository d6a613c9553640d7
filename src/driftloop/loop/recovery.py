"""What a restarted controller finds of the one before it, and finishes.

A retrain is recorded step by step (``retrain_started``, then the version registered with
the id of that event in its tags, then ``gate_passed`` or ``gate_rejected``, then
``rollout_started``). A controller killed in between (kill -9, a node lost) leaves a
``retrain_started`` with no outcome. The next controller, before it decides anything:

* finds the version that retrain registered (the tag) and records its outcome, moving
  the challenger alias to it if the kill came between registration and the alias; the
  rollout then starts as for any gated challenger without one;
* or, with no version registered, records ``retrain_interrupted``: that retrain does not
  count for the cool-down or the cap, so the loop retrains again at once if the signal
  still holds (one registered challenger in the end, as in an uninterrupted run).

It also turns the quarantine's records (:mod:`driftloop.storage.quarantine`) into loop events.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from driftloop.faults import crash_point
from driftloop.loop.store import LoopEvent, LoopStore
from driftloop.pipeline.train import TRAIN_STEPS
from driftloop.registry import aliases
from driftloop.registry.base import CHALLENGER, CHAMPION, ModelRegistry, ModelVersion
from driftloop.storage.quarantine import records

__all__ = ["RETRAIN_TAG", "crash_on_step", "finish_interrupted", "mirror_quarantine"]

RETRAIN_TAG = "driftloop.retrain_event"  # the loop event id of the retrain that made a version
OUTCOMES = (
    "retrain_failed",
    "retrain_waiting",
    "gate_rejected",
    "gate_passed",
    "retrain_interrupted",
)
ACTOR = "driftloop loop"
# Crash points inside a retrain, at the training pipeline's steps (see faults.CRASH_POINTS).
_STEP_POINTS = {
    TRAIN_STEPS[3]: "loop.trained",  # trained, not evaluated
    TRAIN_STEPS[5]: "loop.gated",  # the gate's verdict is known, nothing registered
}


def crash_on_step(step: str) -> None:
    """The training pipeline's progress hook: a crash point at some of its steps."""
    point = _STEP_POINTS.get(step)
    if point is not None:
        crash_point(point)


def unfinished(store: LoopStore, model: str) -> LoopEvent | None:
    """The newest ``retrain_started`` with no outcome recorded after it."""
    started = store.last(model, "retrain_started")
    if started is None:
        return None
    later = store.events(model, kinds=OUTCOMES, limit=1)
    return None if later and later[0].id > started.id else started


def _made_by(registry: ModelRegistry, event: LoopEvent) -> ModelVersion | None:
    return next((v for v in registry.versions() if v.tags.get(RETRAIN_TAG) == str(event.id)), None)


def finish_interrupted(
    store: LoopStore, registry: ModelRegistry, model: str, now: datetime
) -> LoopEvent | None:
    """Record the outcome of a retrain the previous controller did not finish; the event
    recorded (None: nothing was unfinished)."""
    started = unfinished(store, model)
    if started is None:
        return None
    version = _made_by(registry, started)
    if version is None:
        return store.record(
            model,
            now,
            "retrain_interrupted",
            f"the retrain started {started.at:%Y-%m-%d %H:%M} registered no version (the "
            "controller stopped during it); it counts for neither the cool-down nor the cap",
            evidence={"retrain": started.id},
        )
    summary = version.tags.get("driftloop.gate_summary", version.gate)
    evidence = {
        "summary": summary,
        "metrics": dict(version.metrics),
        "retrain": started.id,
        "found_after_restart": True,
    }
    if version.gate != "passed":
        return store.record(
            model,
            now,
            "gate_rejected",
            f"v{version.version} rejected: {summary}",
            version=version.version,
            evidence=evidence,
        )
    champion, challenger = registry.alias(CHAMPION), registry.alias(CHALLENGER)
    aliased = {v.version for v in (champion, challenger) if v is not None}
    if version.version not in aliased:  # killed between registration and the alias
        why = f"gate {summary} (alias moved after a restart)"
        aliases.set_challenger(registry, version.version, kind="train", actor=ACTOR, reason=why)
    return store.record(
        model,
        now,
        "gate_passed",
        f"v{version.version} passed: {summary}",
        version=version.version,
        evidence=evidence,
    )


def mirror_quarantine(store: LoopStore, model: str, state_dir: Path, now: datetime) -> int:
    """One ``quarantined`` event per quarantine record not yet in the log; how many."""
    found = records(state_dir)
    seen = len(store.events(model, kinds=("quarantined",)))
    for record in found[seen:]:
        store.record(
            model,
            now,
            "quarantined",
            f"{record.source} could not be read and was moved aside: {record.reason}",
            evidence={
                "log": record.log,
                "source": record.source,
                "moved_to": record.moved_to,
                "quarantined_at": record.at,
            },
        )
    return len(found) - seen if len(found) > seen else 0
