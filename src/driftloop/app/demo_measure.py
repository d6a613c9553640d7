"""The demo's measurements against its targets: detection, recovery, the broken
challenger's exposure, read off the replay and written as key numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from driftloop.loop.replay import ReplayResult, trailing_wape
from driftloop.loop.timeline import KeyNumber
from driftloop.pipeline.train import TrainingResult
from driftloop.statistics.accuracy import wape

__all__ = ["TRAILING_DAYS", "Measured", "key_numbers", "measure"]

TARGET_DETECTION_DAYS = 7
TARGET_RECOVERY_DAYS = 21
RECOVERY_TOLERANCE = 0.10
REFERENCE_DAYS = 14
TRAILING_DAYS = 7  # as the replay's


def _recovery_day(
    frame: pd.DataFrame, shift: date, reference: float, end: date
) -> tuple[int | None, dict[date, float]]:
    """First day after the shift whose trailing window (all post-shift) is back within
    the tolerance of the reference; and the trailing WAPE of every day."""
    trailing = {}
    found = None
    day = min(frame["day"])
    while day < end:
        trailing[day] = trailing_wape(frame, day, TRAILING_DAYS)
        after = day >= shift + timedelta(days=TRAILING_DAYS - 1)
        if found is None and after and trailing[day] <= reference * (1 + RECOVERY_TOLERANCE):
            found = (day - shift).days
        day += timedelta(days=1)
    return found, trailing


@dataclass(frozen=True)
class Measured:
    """The demo's numbers, read off the replay (before they become key numbers)."""

    reference: float
    recovery: int | None
    trailing: dict[date, float]
    frozen_recovery: int | None
    frozen_trailing: dict[date, float]
    detection: int | None
    false_alarms: int
    broken_version: str
    broken_max: float
    broken_served: int
    retrains: int
    promoted: tuple[str, ...]
    rolled_back: tuple[str, ...]
    last_day: date


def measure(
    replay: ReplayResult, broken: TrainingResult | None, shift: bool, shift_date: date
) -> Measured:
    """The demo's numbers from the replay (``broken``: the corrupted retrain, if any)."""
    served, frozen, events, horizon = replay.served, replay.frozen, replay.events, replay.horizon
    end = horizon[1]
    ref_rows = served[
        (served["day"] >= shift_date - timedelta(days=REFERENCE_DAYS))
        & (served["day"] < shift_date)
    ]
    reference = wape(ref_rows["label"].to_numpy("float64"), ref_rows["prediction"].to_numpy())
    recovery, trailing = _recovery_day(served, shift_date, reference, end)
    frozen_recovery, frozen_trailing = _recovery_day(frozen, shift_date, reference, end)
    detections = [e for e in events if e.kind == "drift_detected"]
    after_shift = [e for e in detections if e.at.date() >= shift_date]
    detection = (after_shift[0].at.date() - shift_date).days if after_shift else None
    false_alarms = sum(1 for e in detections if not shift or e.at.date() < shift_date)
    broken_version = broken.version if broken else ""
    steps = ("rollout_step", "promoted")
    weights = [
        float(e.evidence.get("weight", 0.0))
        for e in events
        if e.version == broken_version and e.kind in steps
    ]
    broken_max = max(weights, default=0.0)
    broken_served = int((served["version"] == broken_version).sum()) if broken_version else 0
    retrains = sum(1 for e in events if e.kind == "retrain_started")
    promoted = tuple(e.version or "" for e in events if e.kind == "promoted")
    rolled_back = tuple(e.version or "" for e in events if e.kind == "rolled_back")
    return Measured(
        reference=reference,
        recovery=recovery,
        trailing=trailing,
        frozen_recovery=frozen_recovery,
        frozen_trailing=frozen_trailing,
        detection=detection,
        false_alarms=false_alarms,
        broken_version=broken_version,
        broken_max=broken_max,
        broken_served=broken_served,
        retrains=retrains,
        promoted=promoted,
        rolled_back=rolled_back,
        last_day=end - timedelta(days=1),
    )


def key_numbers(replay: ReplayResult, m: Measured, shift: bool) -> list[KeyNumber]:
    """The numbers the demo reports, each with its target where it has one."""
    project, served, last_day = replay.project, replay.served, m.last_day
    detection, recovery, broken_version = m.detection, m.recovery, m.broken_version
    key: list[KeyNumber] = []
    if shift:
        key += [
            KeyNumber(
                "days from the shift to detection",
                "not detected" if detection is None else str(detection),
                f"<= {TARGET_DETECTION_DAYS}",
                detection is not None and detection <= TARGET_DETECTION_DAYS,
            ),
            KeyNumber(
                "days from the shift to accuracy within 10 % of the pre-shift level "
                "(trailing 7 days, served)",
                "not restored" if recovery is None else str(recovery),
                f"<= {TARGET_RECOVERY_DAYS}",
                recovery is not None and recovery <= TARGET_RECOVERY_DAYS,
            ),
            KeyNumber(
                "the same for the frozen v1 (control, never retrained)",
                "not restored" if m.frozen_recovery is None else str(m.frozen_recovery),
            ),
        ]
    else:
        key.append(
            KeyNumber(
                "retrains without a shift (control run)", str(m.retrains), "0", m.retrains == 0
            )
        )
    key += [
        KeyNumber(
            "broken challenger's highest traffic weight",
            f"{m.broken_max:g} %" if broken_version else "not submitted",
            f"<= {project.config.rollout.steps[0]:g} %",
            bool(broken_version)
            and m.broken_max <= project.config.rollout.steps[0]
            and broken_version in m.rolled_back,
        ),
        KeyNumber(
            "broken challenger's exposure",
            f"{m.broken_served} predictions ({m.broken_served / max(len(served), 1):.2%} of all)",
        ),
        KeyNumber("pre-shift WAPE (reference, served, 14 days)", f"{m.reference:.3f}"),
        KeyNumber(
            f"WAPE, last {TRAILING_DAYS} days: served / frozen v1 / retrained every "
            f"{replay.schedule_days} days",
            f"{m.trailing.get(last_day, math.nan):.3f} / "
            f"{m.frozen_trailing.get(last_day, math.nan):.3f} / "
            f"{trailing_wape(replay.scheduled, last_day, TRAILING_DAYS):.3f}",
        ),
        KeyNumber(
            "retrains / promotions / rollbacks",
            f"{m.retrains} / {len(m.promoted)} / {len(m.rolled_back)}",
        ),
        KeyNumber(
            "false drift alarms " + ("before the shift" if shift else "(no shift at all)"),
            str(m.false_alarms),
            "0",
            m.false_alarms == 0,
        ),
    ]
    return key
