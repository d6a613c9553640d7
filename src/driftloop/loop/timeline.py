"""What a run of the loop leaves behind for people: one record per day, events, key numbers.

The demo (and later ``driftloop replay``) fills a ``Timeline``; ``driftloop.app.report``
renders it as HTML with plots. It is plain data, JSON round-trippable, so a report can
be re-rendered from ``.driftloop/timeline.json`` without re-running anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

__all__ = ["DayRecord", "KeyNumber", "Timeline", "TimelineEvent"]


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class DayRecord:
    """One simulated (or real) day of serving, judged afterwards.

    ``weights`` is each version's share of that day's served predictions (0..1).
    ``wape`` is each version's WAPE on that day's labelled predictions; ``served_wape``
    is the WAPE of what was actually served (the mix); ``frozen_wape`` is the first
    champion's WAPE on the same rows had it never been replaced (the control), and
    ``scheduled_wape`` that of a model retrained on a fixed schedule, both scored
    offline. Drift values are those of the controller's check at the end of the day
    over its trailing window (None: not enough data).
    """

    day: date
    weights: dict[str, float]
    wape: dict[str, float]
    served_wape: float | None
    frozen_wape: float | None
    max_feature_psi: float | None
    drifted_features: int
    prediction_kl: float | None
    accuracy_ratio: float | None
    label_coverage: float | None
    champion: str | None
    challenger: str | None
    scheduled_wape: float | None = None  # a fixed-schedule retrain's, scored offline
    # Whether the monitor judged the day's window: enough rows for drift, enough labels
    # for accuracy (None: not recorded, an older timeline; judged when a value is there).
    drift_judged: bool | None = None
    accuracy_judged: bool | None = None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["day"] = self.day.isoformat()
        for key in (
            "served_wape",
            "frozen_wape",
            "max_feature_psi",
            "prediction_kl",
            "accuracy_ratio",
            "label_coverage",
            "scheduled_wape",
        ):
            doc[key] = _num(doc[key])
        doc["wape"] = {k: _num(v) for k, v in self.wape.items()}
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DayRecord:
        nan = float("nan")
        return cls(
            day=date.fromisoformat(doc["day"]),
            weights={str(k): float(v) for k, v in doc["weights"].items()},
            wape={str(k): nan if v is None else float(v) for k, v in doc["wape"].items()},
            **{
                k: doc[k]
                for k in (
                    "served_wape",
                    "frozen_wape",
                    "max_feature_psi",
                    "drifted_features",
                    "prediction_kl",
                    "accuracy_ratio",
                    "label_coverage",
                    "champion",
                    "challenger",
                )
            },
            scheduled_wape=doc.get("scheduled_wape"),
            drift_judged=doc.get("drift_judged"),
            accuracy_judged=doc.get("accuracy_judged"),
        )


@dataclass(frozen=True)
class TimelineEvent:
    """A decision or happening, with the evidence it was taken on."""

    at: datetime
    kind: str  # e.g. "drift_detected", "retrain", "gate", "rollout_step", "promoted", ...
    message: str
    version: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TimelineEvent:
        return cls(
            datetime.fromisoformat(doc["at"]),
            doc["kind"],
            doc["message"],
            doc.get("version"),
            dict(doc.get("evidence") or {}),
        )


@dataclass(frozen=True)
class KeyNumber:
    """A headline result: measured ``value`` against its ``target`` (None: no target)."""

    name: str
    value: str
    target: str | None = None
    met: bool | None = None


@dataclass(frozen=True)
class Timeline:
    """Everything the report shows."""

    title: str
    project: str
    scenario: str  # one paragraph: what was simulated
    shift_date: date | None
    thresholds: dict[str, float]  # psi_warning, psi_act, prediction_kl, accuracy_ratio
    reference_wape: float | None  # the pre-shift level accuracy is judged against
    days: tuple[DayRecord, ...]
    events: tuple[TimelineEvent, ...]
    key_numbers: tuple[KeyNumber, ...]
    versions: dict[str, dict[str, str]]  # version -> lineage facts (parent, as_of, gate ...)
    accuracy_metric: str = "WAPE"  # what the accuracy numbers are (log loss: classification)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "project": self.project,
            "scenario": self.scenario,
            "shift_date": self.shift_date.isoformat() if self.shift_date else None,
            "thresholds": self.thresholds,
            "reference_wape": _num(self.reference_wape),
            "days": [d.to_json() for d in self.days],
            "events": [e.to_json() for e in self.events],
            "key_numbers": [asdict(k) for k in self.key_numbers],
            "versions": self.versions,
            "accuracy_metric": self.accuracy_metric,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Timeline:
        return cls(
            title=doc["title"],
            project=doc["project"],
            scenario=doc["scenario"],
            shift_date=date.fromisoformat(doc["shift_date"]) if doc["shift_date"] else None,
            thresholds={k: float(v) for k, v in doc["thresholds"].items()},
            reference_wape=doc["reference_wape"],
            days=tuple(DayRecord.from_json(d) for d in doc["days"]),
            events=tuple(TimelineEvent.from_json(e) for e in doc["events"]),
            key_numbers=tuple(KeyNumber(**k) for k in doc["key_numbers"]),
            versions={str(k): dict(v) for k, v in doc["versions"].items()},
            accuracy_metric=str(doc.get("accuracy_metric", "WAPE")),
        )

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Timeline:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
