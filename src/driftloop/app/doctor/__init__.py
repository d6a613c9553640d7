"""``driftloop doctor``: which MLOps maturity level a project's config and state reach.

The specification's levels (quiz Q1), as facts of a driftloop project:

* Level 0, manual process: nothing below holds.
* Level 1, ML pipeline automation: features declared once and applied to the feature
  store (offline table and online store), a registry with a champion that carries the
  training pipeline's lineage (data digest, time split, code version, feature digest):
  training is automated and reproducible, deployment may still be by hand.
* Level 2, CI/CD pipeline automation: a quality gate with a relative tolerance and
  absolute bounds, the champion passed it, a skew check with a tight tolerance, passing
  candidates become the challenger, rollout gates within sane bounds, the server's admin
  API on (automated deployment drives it), and a rollout that decided on its own.
* Level 3, full MLOps: the loop enabled with triggers, a cool-down and a cap, monitoring
  thresholds that can fire, a label delay that leaves accuracy judgeable, a progressive
  (canary or A/B) strategy, a prediction log, and the loop having run.

``gather_state`` does all the reading (files, the state database, the registry) and never
writes, starts or contacts a server other than the configured registry; ``evaluate``,
``reached_level`` and ``conclude`` are pure, so the level computation is table-testable.
"""

from driftloop.app.doctor.checks import evaluate
from driftloop.app.doctor.facts import (
    LEVEL_NAMES,
    LINEAGE_TAGS,
    ChampionFacts,
    Check,
    Diagnosis,
    ProjectState,
    conclude,
    reached_level,
)
from driftloop.app.doctor.gather import diagnose, gather_state

__all__ = [
    "LEVEL_NAMES",
    "LINEAGE_TAGS",
    "ChampionFacts",
    "Check",
    "Diagnosis",
    "ProjectState",
    "conclude",
    "diagnose",
    "evaluate",
    "gather_state",
    "reached_level",
]
