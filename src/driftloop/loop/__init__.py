"""The closed loop: the controller that turns monitoring signals into retrains and rollouts."""

from driftloop.loop.controller import LoopController, LoopTurn
from driftloop.loop.policy import Decision, Signals, decide
from driftloop.loop.store import LoopEvent, LoopStore
from driftloop.loop.timeline import DayRecord, KeyNumber, Timeline, TimelineEvent

__all__ = [
    "DayRecord",
    "Decision",
    "KeyNumber",
    "LoopController",
    "LoopEvent",
    "LoopStore",
    "LoopTurn",
    "Signals",
    "Timeline",
    "TimelineEvent",
    "decide",
]
