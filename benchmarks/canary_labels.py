"""Slow labels for ``benchmarks/canary.py``: days until a rollout held on labels decides,
with paired shadow evidence against the canary slice's own labels (seeded, pure numpy)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from rich.table import Table
from scipy.special import expit
from scipy.stats import rankdata

from driftloop.config import OutcomeGateConfig
from driftloop.config.rollout import PairedConfig
from driftloop.rollout.outcomes import (
    VersionOutcomes,
    outcome_evidence,
    paired_evidence,
    row_losses,
)
from driftloop.rollout.sequential import MeanStats

LABEL_SCENARIOS = {"clearly better (retrained)": 1, "as good": 0, "worse": -1}


def _auc(y: NDArray[np.float64], p: NDArray[np.float64]) -> float | None:
    pos = int(y.sum())
    if pos == 0 or pos == y.size:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (y.size - pos)))


def _version(y: NDArray[np.float64], p: NDArray[np.float64]) -> VersionOutcomes:
    return VersionOutcomes(
        MeanStats(0, 0.0, 0.0), int(y.size), 0.0, 0.0, int(y.sum()), _auc(y, p), "classification"
    )


def _labelled_trial(
    rng: np.random.Generator, quality: int, per_day: int, days: int, delay_days: float
) -> tuple[float | None, float | None, bool, bool]:
    """Days until each rule decides (None: not within ``days``), and whether it rolled back."""
    n = per_day * days
    z1, z2 = rng.normal(0.0, 0.8, n), rng.normal(0.0, 0.8, n)
    y = (rng.random(n) < expit(-2.2 + z1 + z2)).astype(np.float64)

    def model(base: float, a1: float, a2: float) -> NDArray[np.float64]:
        return np.asarray(expit(base + a1 * z1 + a2 * z2 + rng.normal(0.0, 0.3, n)))

    # after a change the stale stable misses z2 and the new base rate (log loss 0.418, ROC
    # AUC 0.68); the retrain sees both (0.351, 0.76); a worse one also loses half of z1
    p_s = model(-2.9, 1.0, 0.0)
    p_c = {1: model(-2.2, 1.0, 1.0), 0: model(-2.9, 1.0, 0.0), -1: model(-2.9, 0.5, 0.0)}[quality]
    served_at = np.sort(rng.random(n)) * days
    labelled_at = served_at + rng.lognormal(np.log(delay_days), 0.8, n)
    canary = rng.random(n) < 0.10  # the step's 10 % slice; the rest is mirrored in shadow
    diff = row_losses(y, p_c, "classification") - row_losses(y, p_s, "classification")
    cfg, gate = PairedConfig(), OutcomeGateConfig()
    paired_day = unpaired_day = None
    paired_back = unpaired_back = False
    for day in range(1, days + 1):
        known = labelled_at <= day
        if paired_day is None:
            rows = known & ~canary
            mine = VersionOutcomes(MeanStats(0, 0.0, 0.0), paired={"1": MeanStats.of(diff[rows])})
            ev, _ = paired_evidence(mine, "1", cfg, "classification")
            if ev.passed is not None:
                paired_day, paired_back = float(day), not ev.passed
        if unpaired_day is None:
            c, s = known & canary, known & ~canary
            _, acc = outcome_evidence(
                _version(y[c], p_c[c]), _version(y[s], p_s[s]), gate, "classification"
            )
            if acc.passed is not None:
                unpaired_day, unpaired_back = float(day), not acc.passed
        if paired_day is not None and unpaired_day is not None:
            break
    return paired_day, unpaired_day, paired_back, unpaired_back


def slow_labels(trials: int, seed: int, per_day: int, days: int, delay_days: float) -> Table:
    """Days to a decision on labels: the canary slice's own labels vs paired shadow rows."""
    table = Table(
        title=f"Slow labels: {per_day} requests a day at 10 %, labels after a median "
        f"{delay_days:g} days ({trials} trials)"
    )
    for col in ("challenger", "measure", "paired, else slice labels", "slice labels (before)"):
        table.add_column(col)
    for s_i, (name, quality) in enumerate(LABEL_SCENARIOS.items()):
        rng = np.random.default_rng([seed, 100 + s_i])
        runs = [_labelled_trial(rng, quality, per_day, days, delay_days) for _ in range(trials)]
        combined = [
            (p, pb) if p is not None and (u is None or p <= u) else (u, ub) for p, u, pb, ub in runs
        ]  # paired first, else the slice's labels
        cells = []
        for days_to, back in (
            ([r[0] for r in combined], [r[1] for r in combined]),
            ([r[1] for r in runs], [r[3] for r in runs]),
        ):
            decided = [d for d in days_to if d is not None]
            med = f"{np.median(decided):.0f}" if decided else "-"
            cells.append((f"{len(decided) / trials:.1%} ({med})", f"{sum(back) / trials:.1%}"))
        paired_only = [r[0] for r in runs if r[0] is not None]
        table.add_row(
            name,
            "paired test decided (median day)",
            f"{len(paired_only) / trials:.1%} ({np.median(paired_only):.0f})"
            if paired_only
            else "0.0% (-)",
            "",
        )
        table.add_row(name, f"decided within {days} days (median day)", cells[0][0], cells[1][0])
        table.add_row("", "rolled back", cells[0][1], cells[1][1])
    return table
