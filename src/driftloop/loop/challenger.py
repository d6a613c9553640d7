"""The scheduled challenger (pure): when the loop retrains without a drift signal.

A plain one is due when the champion's data is ``loop.challenger_every_days`` old; after
a change, follow-ups are due as the new regime's data doubles. Either is only a
challenger: the gate (by ``loop.challenger_min_gain``) and the canary decide.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from driftloop.config import LoopConfig
from driftloop.loop.policy import Decision

__all__ = ["SCHEDULED", "retrain_weight", "scheduled_challenger"]

SCHEDULED = "scheduled challenger"  # the reason of a retrain on loop.challenger_every_days


def retrain_weight(decision: Decision, cfg: LoopConfig) -> float:
    """The recency weight a retrain asks for: a drift retrain's and a follow-up's weigh the
    regime's rows ``loop.recent_weight`` times (the training run keeps the weighting only
    where the validation days prefer it); a plain scheduled challenger's weigh alike."""
    plain = decision.evidence.get("scheduled") and not decision.evidence.get("follow_up")
    return 1.0 if plain else cfg.recent_weight


def scheduled_challenger(
    at: datetime,
    champion_as_of: date | None,
    last_retrain: datetime | None,
    cfg: LoopConfig,
    *,
    label_delay_days: int = 1,
    rollout_running: str | None = None,
    newest_data: date | None = None,
    regime_since: date | None = None,
) -> Decision | None:
    """A retrain on a schedule when nothing else retrains: the champion's data is
    ``loop.challenger_every_days`` old and no retrain started since. Its version is only a
    challenger: the gate and the canary decide whether it replaces the champion. None
    when the schedule is off, not due, or a rollout runs (it finishes first).

    ``newest_data``: the newest day the project's data holds. Age counts to it when it is
    earlier than ``at``: a champion is not stale because the clock moved on while no new
    data arrived (a retrain would learn the same rows).

    ``regime_since``: the day the newest drift episode's signal began. A model fitted soon
    after a change learned the new regime from a few weeks; each week more of it is worth
    a refit. So while the last fit saw less than ``challenger_every_days`` of the regime,
    the challenger is due once the regime's days have doubled since that fit (at least
    ``min_recent_days`` later): a change retrained on after 7 days gets challengers near
    days 14, 28 and 56, then the regular schedule. These weight the regime's rows as a
    drift retrain does (``recent_from``); plain scheduled ones weight nothing."""
    every = cfg.challenger_every_days
    if not every or not cfg.enabled or rollout_running or champion_as_of is None:
        return None
    since = champion_as_of
    if last_retrain is not None and last_retrain.date() > since:
        since = last_retrain.date()
    until = at.date() if newest_data is None else min(at.date(), newest_data)
    age = (until - since).days
    regime_seen = None if regime_since is None else (since - regime_since).days
    follow_up = regime_seen is not None and 0 <= regime_seen < every
    due_after = max(cfg.min_recent_days, regime_seen or 0) if follow_up else every
    if age < due_after:
        return None
    labelled_until = at.date() - timedelta(days=label_delay_days)
    if follow_up:
        assert regime_since is not None
        why = (
            f"the regime that began {regime_since} had {regime_seen} days when the last model "
            f"was fitted and has doubled since ({age} days later)"
        )
        recent_from = regime_since - timedelta(days=cfg.lookback_days)
    else:
        why = (
            f"the champion's data and the last retrain are {age} days "
            f"old (loop.challenger_every_days {every:g})"
        )
        recent_from = labelled_until
    return Decision(
        "retrain",
        f"{SCHEDULED}: {why}; retraining on the window to "
        f"{labelled_until}, deployed only if it beats the champion by "
        f"{cfg.challenger_min_gain:.0%} at the gate and through the canary",
        since=since,
        recent_from=recent_from,
        evidence={"scheduled": True, "age_days": age, "follow_up": follow_up},
    )
