"""Whether a retrain would learn anything new: a labelled row since the last retrain's
window ended. A monthly table checked daily would otherwise retrain every week of its
month on the same rows (Texas housing did, 9 times in 11 weeks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from driftloop.features.layout import project_layout
from driftloop.loop.policy import Decision
from driftloop.project import Project

__all__ = ["rows_between", "unchanged_data", "with_new_rows"]


def rows_between(project: Project, after: date, until: date) -> bool:
    """Whether the project's raw events hold a day in ``(after, until]``."""
    layout = project_layout(project)
    days = layout.event_days(layout.read_events())
    return bool(((days > after) & (days <= until)).any()) if len(days) else False


def unchanged_data(decision: Decision, last_retrain: datetime, label_delay_days: int) -> Decision:
    """A retrain held because no labelled row arrived since ``last_retrain``'s window
    ended: it would learn the rows the last retrain learned (a monthly table checked
    daily, retrained every week of its month)."""
    trained_until = last_retrain.date() - timedelta(days=label_delay_days)
    return Decision(
        "hold",
        f"{decision.reason.split(';')[0]}; no labelled row since the retrain of "
        f"{last_retrain:%Y-%m-%d} (its window ended {trained_until}): a retrain would learn "
        "the same rows",
        decision.triggers,
        decision.since,
        evidence=decision.evidence,
        blocker="data",
    )


def with_new_rows(
    project: Project, retrains: Sequence[datetime], decision: Decision, now: datetime
) -> Decision:
    """``decision`` (a retrain), or a hold when no labelled row arrived since the last of
    ``retrains`` ended its window: it would learn the same rows again."""
    if not retrains:
        return decision
    last = max(retrains)
    delay = project.config.labels.delay_days
    trained_until = last.date() - timedelta(days=delay)
    if rows_between(project, trained_until, now.date() - timedelta(days=delay)):
        return decision
    return unchanged_data(decision, last, delay)
