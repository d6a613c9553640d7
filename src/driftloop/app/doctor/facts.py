"""The doctor's vocabulary: the levels, the facts it reads, its checks and the diagnosis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "LEVEL_NAMES",
    "LINEAGE_TAGS",
    "TOP_LEVEL",
    "UNKNOWN_COMMIT",
    "ChampionFacts",
    "Check",
    "Diagnosis",
    "ProjectState",
    "check",
    "conclude",
    "reached_level",
]

LEVEL_NAMES: Mapping[int, str] = {
    0: "manual process",
    1: "ML pipeline automation",
    2: "CI/CD pipeline automation",
    3: "full MLOps (continuous training)",
}
TOP_LEVEL = 3

# Tags the training pipeline writes on every version (pipeline/train.py): without them a
# version cannot be traced back to its data, split, features and code.
LINEAGE_TAGS = (
    "driftloop.data_digest",
    "driftloop.split",
    "driftloop.as_of",
    "driftloop.window_start",
    "driftloop.window_end",
    "driftloop.feature_registry_digest",
    "driftloop.git_commit",
)
UNKNOWN_COMMIT = "unknown"


# -- facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChampionFacts:
    """The champion version as the registry holds it."""

    version: str
    gate: str  # "passed" | "rejected" | "unknown"
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ProjectState:
    """What exists on disk and in the registry; gathered by ``gather_state``."""

    feast_registry: bool = False
    offline_table: bool = False
    online_store: bool = False
    registry_error: str | None = "registry not read"
    champion: ChampionFacts | None = None
    admin_token: bool = False
    rollouts: Mapping[str, int] | None = None  # state -> count; None: no rollouts table
    loop_events: int | None = None  # rows in loop_events; None: no such table
    prediction_segments: int = 0
    feedback_segments: int = 0
    damaged_segments: tuple[str, ...] = ()  # segments in place that cannot be read
    quarantined_files: int = 0  # files moved aside, still in the quarantine folder


# -- checks and the diagnosis ---------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One fact, the level it is evidence for, what was seen, and how to fix it."""

    id: str
    level: int
    title: str
    passed: bool
    seen: str
    fix: str


def check(level: int, id_: str, title: str, passed: bool, seen: str, fix: str) -> Check:
    """A :class:`Check`, its fields in the order the level checks write them."""
    return Check(id=id_, level=level, title=title, passed=passed, seen=seen, fix=fix)


@dataclass(frozen=True)
class Diagnosis:
    """Every check, the level reached, and the failed checks of the next level."""

    checks: tuple[Check, ...]
    level: int
    next_level_missing: tuple[Check, ...] = field(default=())

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def next_level(self) -> int | None:
        return self.level + 1 if self.level < TOP_LEVEL else None


def reached_level(checks: Sequence[Check]) -> int:
    """The highest level L such that every check of levels 1..L passes (0 if level 1 fails).

    A level without checks counts as passed only up to the levels that have some."""
    level = 0
    for candidate in range(1, TOP_LEVEL + 1):
        if not all(c.passed for c in checks if c.level == candidate):
            break
        level = candidate
    return level


def conclude(checks: Sequence[Check]) -> Diagnosis:
    """The diagnosis of a list of checks."""
    level = reached_level(checks)
    missing = tuple(c for c in checks if c.level == level + 1 and not c.passed)
    return Diagnosis(checks=tuple(checks), level=level, next_level_missing=missing)
