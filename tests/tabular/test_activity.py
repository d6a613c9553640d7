"""Real-time activity features: the offline fold, the server's step and a brute-force
recount agree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.features.table import (
    ACTIVITY_AFTER,
    ACTIVITY_SCALES,
    activity_feature_names,
    activity_features,
    activity_history,
    activity_online,
    activity_state_names,
    activity_step,
)

STATE = list(activity_state_names())


def _events(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for card in ("a", "b", "c"):
        t = pd.Timestamp("2025-01-01", tz="UTC")
        for _ in range(30):
            t += pd.Timedelta(seconds=int(rng.choice([30, 600, 5000, 90000, 400000])))
            rows.append(
                {
                    "card": card,
                    "event_timestamp": t,
                    "amount": round(float(rng.gamma(2.0, 20.0)), 2),
                }
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _brute_force(events: pd.DataFrame) -> pd.DataFrame:
    """Each event's features from the entity's earlier events, summed directly."""
    out = []
    for row in events.itertuples(index=False):
        earlier = events[
            (events["card"] == row.card) & (events["event_timestamp"] < row.event_timestamp)
        ]
        ages = (row.event_timestamp - earlier["event_timestamp"]).dt.total_seconds().to_numpy()
        values = {
            f"txn_rate_{k}": float(np.exp(-ages / tau).sum()) for k, tau in ACTIVITY_SCALES.items()
        }
        if len(earlier):
            weights = np.exp(-ages / ACTIVITY_SCALES["30d"])
            usual = (weights * earlier["amount"]).sum() / weights.sum()
            values["seconds_since_last"] = float(ages.min())
            values["amount_vs_avg_30d"] = row.amount / usual
        else:
            values["seconds_since_last"] = math.nan
            values["amount_vs_avg_30d"] = math.nan
        out.append(values)
    return pd.DataFrame(out, index=events.index)


def _seen_offline(events: pd.DataFrame) -> pd.DataFrame:
    """The state each event sees, as the point-in-time join finds it: the entity's latest
    activity row stamped at or before the event."""
    rows = activity_history(events, ["card"], "amount")
    seen = pd.merge_asof(
        events.sort_values("event_timestamp"),
        rows.sort_values("event_timestamp"),
        on="event_timestamp",
        by="card",
        allow_exact_matches=True,
    )
    return seen.set_index(events.sort_values("event_timestamp").index).loc[events.index]


def test_offline_features_equal_a_brute_force_recount() -> None:
    events = _events()
    seen = _seen_offline(events)
    features = activity_features(seen, "amount")
    assert list(features.columns) == list(activity_feature_names("amount"))
    expected = _brute_force(events)
    pd.testing.assert_frame_equal(features, expected[features.columns], rtol=1e-9)
    # an event's own row is valid only after it: nothing of itself leaks into its features
    rows = activity_history(events, ["card"], "amount")
    assert (
        rows.groupby("card")["event_timestamp"].min()
        == events.groupby("card")["event_timestamp"].min() + ACTIVITY_AFTER
    ).all()


def test_server_steps_give_the_offline_values_one_request_or_a_batch_at_a_time() -> None:
    events = _events().sort_values("event_timestamp").reset_index(drop=True)
    offline = activity_features(_seen_offline(events), "amount")
    store: dict[str, list[float]] = {}  # the online store: the last pushed state per card
    served = []
    sizes = [1, 3, 7, 1, 12]  # batches, some holding one card twice
    start = 0
    while start < len(events):
        batch = events.iloc[start : start + sizes[len(served) % len(sizes)]]
        states = pd.DataFrame(
            [store.get(c, [math.nan] * len(STATE)) for c in batch["card"]],
            columns=STATE,
            index=batch.index,
        )
        seeing, pushed = activity_online(states, batch, ["card"], "amount")
        served.append(activity_features(batch.join(seeing), "amount"))
        for row in pushed.itertuples(index=False):
            store[row.card] = [getattr(row, n) for n in STATE]
        assert pushed["card"].is_unique  # one state per card: its last event here
        start += len(batch)
    pd.testing.assert_frame_equal(pd.concat(served), offline, rtol=1e-12)


def test_a_first_event_has_empty_history_and_steps_need_no_state() -> None:
    first = activity_step([math.nan] * len(STATE), 100.0, 12.5, ACTIVITY_SCALES)
    assert first == [100.0, 1.0, 1.0, 1.0, 12.5]
    later = activity_step(first, 100.0 + 3600.0, math.nan, ACTIVITY_SCALES)
    assert later[1] == pytest.approx(math.exp(-1) + 1) and later[-1] == pytest.approx(
        12.5 * math.exp(-3600 / ACTIVITY_SCALES["30d"])
    )
    frame = pd.DataFrame([[math.nan] * len(STATE)], columns=STATE).assign(
        event_timestamp=pd.Timestamp("2025-01-01", tz="UTC"), amount=3.0
    )
    got = activity_features(frame, "amount").iloc[0]
    assert got["txn_rate_1h"] == 0.0 and math.isnan(got["seconds_since_last"])
    assert math.isnan(got["amount_vs_avg_30d"])
