"""The card-fraud scenario of the specification's Q3: imbalanced classification whose
strongest signals are real-time (how busy the card has just been), with a change of
fraud pattern on a date.

Cards spend at their own pace and amount, mostly in a few favourite merchant categories
near home. Each day a few cards are compromised:

- before the shift, a compromised card is drained in one burst: several transactions
  minutes apart, large for the card, far from home, in electronics, jewelry or travel,
  often at night;
- from the shift date, fraud turns into account takeover: one or two transactions a day
  over several days, of an ordinary amount for the card, close to home, by day, online,
  in digital goods (gift cards, game credits). Legitimate spending on digital goods also
  grows, so the category's share drifts.

A model trained before the shift keys on size, distance and bursts and misses the new
pattern; a model retrained on recent labels finds it. Labels (chargebacks) are known
days later. Everything comes from one seeded generator, so a seed gives identical data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

__all__ = ["CATEGORIES", "FraudScenario", "generate_fraud"]

CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "travel",
    "electronics",
    "jewelry",
    "digital_goods",
)
CHANNELS = ("pos", "online", "atm")
_BURST_CATEGORIES = (4, 5, 6)  # travel, electronics, jewelry
_DIGITAL = 7


@dataclass(frozen=True)
class FraudScenario:
    """The knobs of the generated card transactions."""

    seed: int = 1
    n_cards: int = 500
    days: int = 180
    start: date = date(2025, 1, 1)
    shift: bool = True
    shift_after_days: int = 110
    txn_per_card_day: float = 0.4
    compromised_per_1000_cards: float = 2.5  # a day; about 1.5 % of transactions are fraud

    def __post_init__(self) -> None:
        checks = {
            "n_cards": self.n_cards >= 20,
            "days": self.days >= 61,
            "shift_after_days": 0 < self.shift_after_days < self.days,
            "txn_per_card_day": 0 < self.txn_per_card_day <= 50,
            "compromised_per_1000_cards": 0 < self.compromised_per_1000_cards < 1000,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"fraud scenario: {bad[0]}={getattr(self, bad[0])!r} is out of range "
                "(n_cards >= 20, days >= 61, 0 < shift_after_days < days, "
                "0 < txn_per_card_day <= 50, 0 < compromised_per_1000_cards < 1000)"
            )

    @property
    def shift_date(self) -> date:
        return self.start + timedelta(days=self.shift_after_days)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)


def _day_seconds(rng: np.random.Generator, n: int, night: float) -> np.ndarray:
    """Seconds into the day: mostly 07:00-23:00, a share ``night`` in 00:00-06:00."""
    late = rng.random(n) < night
    hours = np.where(late, rng.uniform(0, 6, n), rng.triangular(7, 14, 23, n))
    return (hours * 3600).astype("int64")


def _takeover(
    rng: np.random.Generator, card_id: str, mu: float, moment: pd.Timestamp
) -> pd.DataFrame:
    """Account takeover (after the shift): slow, ordinary amounts, online, over days."""
    span = int(rng.integers(2, 6))
    daily = rng.integers(1, 3, span)
    k = int(daily.sum())
    offsets = np.repeat(np.arange(span), daily) * 86400 + _day_seconds(rng, k, 0.0)
    return pd.DataFrame(
        {
            "card_id": card_id,
            "timestamp": moment + pd.to_timedelta(offsets, "s"),
            "amount": np.exp(mu + rng.normal(0.2, 0.4, k)),
            "merchant_category": _DIGITAL,
            "channel": 1,
            "distance_km": np.exp(rng.normal(1.5, 0.8, k)),
            "is_fraud": 1,
        }
    )


def _burst(rng: np.random.Generator, card_id: str, mu: float, moment: pd.Timestamp) -> pd.DataFrame:
    """A burst: large, far, within the hour or two, often at night."""
    k = 1 + int(rng.poisson(2.0))
    first = _day_seconds(rng, 1, 0.2)[0]
    offsets = first + np.cumsum(rng.exponential(1500, k)).astype("int64")
    burst = rng.random(k) < 0.7  # the rest blend into the card's own shopping
    return pd.DataFrame(
        {
            "card_id": card_id,
            "timestamp": moment + pd.to_timedelta(offsets, "s"),
            "amount": np.exp(mu + np.where(burst, rng.uniform(0.4, 2.0, k), rng.normal(0, 0.6, k))),
            "merchant_category": np.where(
                burst, rng.choice(_BURST_CATEGORIES, k), rng.integers(0, 4, k)
            ),
            "channel": np.where(rng.random(k) < 0.5, 1, 0),
            "distance_km": np.exp(
                np.where(burst, rng.normal(3.5, 1.5, k), rng.normal(1.5, 0.8, k))
            ),
            "is_fraud": 1,
        }
    )


def _tidy(table: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Cut at the end, one event per card and second, rounded values, category names."""
    end = start + pd.Timedelta(days=days)
    table = table[table["timestamp"] < end]
    table = table.sort_values(["timestamp", "card_id"], kind="stable").reset_index(drop=True)
    # One event per card and second: a later twin moves on by a second at a time.
    stamp = table["timestamp"].astype("int64") // 10**9
    while True:
        clash = pd.Series(stamp).groupby(table["card_id"]).diff().eq(0)
        if not clash.any():
            break
        stamp = stamp + clash.astype("int64")
    table["timestamp"] = pd.to_datetime(stamp, unit="s", utc=True)
    table = table.sort_values(["timestamp", "card_id"], kind="stable").reset_index(drop=True)
    table["amount"] = table["amount"].round(2)
    table["distance_km"] = table["distance_km"].round(2)
    table["merchant_category"] = np.asarray(CATEGORIES)[table["merchant_category"].to_numpy()]
    table["channel"] = np.asarray(CHANNELS)[table["channel"].to_numpy()]
    return table


def generate_fraud(cfg: FraudScenario) -> pd.DataFrame:
    """Card transactions: card_id, timestamp, amount, merchant_category, channel,
    distance_km, is_fraud; sorted by time, one row per card and second."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_cards
    start = pd.Timestamp(cfg.start, tz="UTC")
    shift_at = start + pd.Timedelta(days=cfg.shift_after_days)
    # The cards: pace, typical amount, favourite categories, online habit.
    pace = rng.gamma(2.0, cfg.txn_per_card_day / 2.0, n)
    mu = rng.normal(3.3, 0.5, n)
    taste = rng.dirichlet(np.array([6, 4, 3, 4, 1, 1, 0.3, 0.3]), n)
    online = rng.beta(2, 6, n)
    ids = np.array([f"c{i:05d}" for i in range(n)])

    # Legitimate spending, card by card and day by day.
    counts = rng.poisson(np.outer(pace, np.ones(cfg.days)))
    card = np.repeat(np.arange(n), counts.sum(axis=1))
    day = np.concatenate([np.repeat(np.arange(cfg.days), c) for c in counts])
    seconds = _day_seconds(rng, len(card), 0.04)
    # Shopping trips: a sixth of purchases are followed by another minutes later.
    again = rng.random(len(card)) < 0.17
    card = np.concatenate([card, card[again]])
    day = np.concatenate([day, day[again]])
    seconds = np.concatenate([seconds, seconds[again] + rng.integers(300, 3600, again.sum())])
    m = len(card)
    when = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, "s")
    after = np.asarray(when >= shift_at) & cfg.shift
    digital_share = np.where(after, 0.08, 0.01)  # digital goods grow from the shift
    picked = np.array([rng.choice(7, p=taste[c, :7] / taste[c, :7].sum()) for c in card])
    category = np.where(rng.random(m) < digital_share, _DIGITAL, picked)
    channel = np.where(rng.random(m) < online[card], 1, 0)
    channel = np.where((channel == 0) & (rng.random(m) < 0.05), 2, channel)
    channel = np.where(category == _DIGITAL, 1, channel)
    legit = pd.DataFrame(
        {
            "card_id": ids[card],
            "timestamp": when,
            "amount": np.exp(mu[card] + rng.normal(0, 0.6, m)),
            "merchant_category": category,
            "channel": channel,
            # 3 % of purchases are made travelling, far from home
            "distance_km": np.exp(
                np.where(rng.random(m) < 0.03, rng.normal(4.5, 1.2, m), rng.normal(1.5, 0.8, m))
            ),
            "is_fraud": 0,
        }
    )

    # Fraud: the compromised cards of each day.
    frauds = []
    compromised = cfg.compromised_per_1000_cards * n / 1000
    for d in range(cfg.days):
        moment = start + pd.Timedelta(days=d)
        for c in rng.choice(n, size=min(rng.poisson(compromised), n), replace=False):
            if cfg.shift and moment >= shift_at:  # account takeover: slow, ordinary, online
                frauds.append(_takeover(rng, ids[c], mu[c], moment))
            else:  # a burst: large, far, within the hour or two, often at night
                frauds.append(_burst(rng, ids[c], mu[c], moment))
    return _tidy(pd.concat([legit, *frauds], ignore_index=True), start, cfg.days)
