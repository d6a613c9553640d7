"""Is a candidate better than the model serving, on the same rows? (pure)

The gate compares a candidate and the champion on one holdout. A lower error on it may be
the luck of the week: a holdout of 140 rows from 20 stations over 7 days holds 7
independent days, not 140 independent rows (the stations share each day's weather and
events). The test here takes each day's summed loss difference as one observation and
asks, one-sided, whether the candidate's losses are lower on average over the days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["MIN_GROUPS", "PairedGain", "paired_gain"]

MIN_GROUPS = 3  # fewer days cannot estimate the day-to-day spread: not judged


@dataclass(frozen=True)
class PairedGain:
    """The candidate's loss advantage over the champion, judged day by day."""

    groups: int  # days with a labelled row
    rows: int
    relative: float  # (champion loss - candidate loss) / champion loss, summed over rows
    p_value: float  # one-sided: the candidate's losses are lower (NaN: not judged)


def paired_gain(
    champion_losses: ArrayLike, candidate_losses: ArrayLike, groups: ArrayLike
) -> PairedGain:
    """One-sided paired t-test over groups of rows (days) of ``champion - candidate``.

    Each group's summed loss difference is one observation (a day with more rows weighs
    more, as a pooled WAPE or log loss weighs it); the t statistic of their mean has
    ``groups - 1`` degrees of freedom. Fewer than ``MIN_GROUPS`` groups: p NaN. Every
    group's difference equal: p is 0 when they are all gains, else 1 (no spread to
    weigh). Rows with a non-finite loss on either side are skipped."""
    champion = np.asarray(champion_losses, dtype="float64").ravel()
    candidate = np.asarray(candidate_losses, dtype="float64").ravel()
    keys = np.asarray(groups).ravel()
    if not champion.shape == candidate.shape == keys.shape:
        raise ValueError(
            f"champion_losses {champion.shape}, candidate_losses {candidate.shape} and "
            f"groups {keys.shape} must hold one value per row"
        )
    ok = np.isfinite(champion) & np.isfinite(candidate)
    champion, candidate, keys = champion[ok], candidate[ok], keys[ok]
    total = float(champion.sum())
    relative = (total - float(candidate.sum())) / total if total > 0 else math.nan
    _, index = np.unique(keys, return_inverse=True)
    per_group = np.bincount(index, weights=champion - candidate) if keys.size else np.zeros(0)
    n = int(per_group.size)
    return PairedGain(n, int(champion.size), relative, _one_sided_p(per_group))


def _one_sided_p(diffs: np.ndarray) -> float:
    """P(mean difference this large | no gain): SciPy's one-sided one-sample t-test over
    the groups (which gives NaN where they have no spread: decided here instead)."""
    from scipy import stats

    if diffs.size < MIN_GROUPS:
        return math.nan
    mean = float(diffs.mean())
    if float(diffs.std(ddof=1)) <= 1e-12 * max(abs(mean), 1e-300):
        return 0.0 if mean > 0 else 1.0
    return float(stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue)
