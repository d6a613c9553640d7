"""A drift episode in the loop's log: each check recorded, an episode opened with its
baseline, held, and closed when the champion has recovered."""

from __future__ import annotations

import math
from datetime import date, timedelta

from driftloop.loop.policy import Decision, Signals, fired, trigger_words
from driftloop.loop.store import LoopEvent, LoopStore
from driftloop.monitoring.assess import ACCURACY_METRICS, metric_label
from driftloop.project import Project
from driftloop.registry.base import CHAMPION, ModelRegistry

__all__ = ["Episodes", "describe", "iso_day"]


def iso_day(value: object) -> date | None:
    """An evidence field's ISO date, or None."""
    return date.fromisoformat(value) if isinstance(value, str) else None


def describe(s: Signals) -> str:
    """The signals in words, for the log's messages."""
    parts = [f"{len(s.drifted_features)} feature(s) at PSI >= act"]
    if s.max_feature_psi is not None:
        parts.append(f"max PSI {s.max_feature_psi:.2f}")
    if s.prediction_kl is not None:
        parts.append(f"prediction KL {s.prediction_kl:.3f}")
    if s.accuracy_ratio is not None:
        name = metric_label(s.accuracy_metric)
        parts.append(f"{name} {s.accuracy_ratio:.2f}x holdout ({s.accuracy_state})")
    return ", ".join(parts)


class Episodes:
    """The episode bookkeeping of one model's loop in its event store."""

    def __init__(self, project: Project, registry: ModelRegistry, store: LoopStore) -> None:
        self.project = project
        self.registry = registry
        self.store = store
        self.cfg = project.config.loop

    @property
    def model(self) -> str:
        return self.registry.model_name

    def open(self) -> LoopEvent | None:
        """The drift_detected event of the episode still open (not recovered), if any."""
        detected = self.store.last(self.model, "drift_detected")
        if detected is None:
            return None
        recovered = self.store.last(self.model, "recovered")
        return detected if recovered is None or recovered.id < detected.id else None

    def labelled_since(self, episode: LoopEvent, signals: Signals) -> bool:
        """Whether the accuracy just judged covers labelled days of the episode's regime:
        an episode is not recovered on labels that all predate it (they arrive late)."""
        since = iso_day(episode.evidence.get("since"))
        if since is None:
            return True
        end = signals.accuracy_window[1] if signals.accuracy_window else signals.window[1]
        labelled_until = end - timedelta(days=self.project.config.labels.delay_days)
        return labelled_until > since

    def baseline(self, history: list[Signals]) -> float | None:
        """The WAPE before the episode: that of the newest check whose window ended before
        the first signalling window began (windows that overlap the change already saw
        some of it); else the champion's holdout WAPE."""
        first = history[-1]
        for s in reversed(history[:-1]):
            if not fired(s, self.cfg):
                break
            first = s
        for s in reversed(history[:-1]):
            if s.window[1] <= first.window[0] and s.wape is not None and not fired(s, self.cfg):
                return s.wape
        champion = self.registry.alias(CHAMPION)
        if champion is None:
            return None
        metric = ACCURACY_METRICS[self.project.config.training.task]
        value = float(champion.metrics.get(f"holdout_{metric}", math.nan))
        return value if math.isfinite(value) else None

    def record_check(
        self,
        signals: Signals,
        decision: Decision,
        history: list[Signals],
        episode: LoopEvent | None,
    ) -> None:
        """Record the check; open an episode on sustained triggers, close it on recovery,
        and record a hold when its blocker changed."""
        at = signals.at
        self.store.record(
            self.model,
            at,
            "check",
            decision.reason,
            version=signals.champion,
            evidence={
                "signals": signals.to_json(),
                "action": decision.action,
                "triggers": list(decision.triggers),
            },
        )
        sustained = bool(decision.triggers)
        if sustained and episode is None:
            baseline = self.baseline(history)
            self.store.record(
                self.model,
                at,
                "drift_detected",
                f"{trigger_words(decision.triggers)} sustained for v{signals.champion} since "
                f"{decision.since}: {describe(signals)}; the episode stays open until the "
                f"window's {metric_label(signals.accuracy_metric)} is back within "
                f"{self.cfg.recovery_tolerance:.0%} of "
                + ("the level before" if baseline is None else f"{baseline:.4f}"),
                version=signals.champion,
                evidence={**signals.to_json(), "baseline_wape": baseline, "since": decision.since},
            )
        elif (
            episode is not None
            and decision.reason == "healthy"
            and signals.wape is not None
            and self.labelled_since(episode, signals)
        ):
            self.store.record(
                self.model,
                at,
                "recovered",
                f"no trigger fires for v{signals.champion}: {describe(signals)}",
                version=signals.champion,
                evidence=signals.to_json(),
            )
        if decision.action == "hold":
            last = self.store.last(self.model, "hold")
            if last is None or last.evidence.get("blocker") != decision.blocker:
                self.store.record(
                    self.model,
                    at,
                    "hold",
                    decision.reason,
                    version=signals.champion,
                    evidence={"blocker": decision.blocker},
                )
