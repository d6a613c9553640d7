"""Drift statistics: pure functions of bin counts or raw values, no clock, logging or I/O.

Binned statistics (PSI, KL, JS, chi-square, binned Wasserstein) take counts on the same
bins, e.g. a reference profile's counts and a live window's. Empty bins are handled by
additive (Laplace-style) smoothing: ``smoothing`` is added to every bin count of both sides
before counts become proportions, so an empty bin gives a large but finite term instead of
infinity. Decisions use effect sizes (PSI levels), not p-values: on large windows every
tiny shift is "significant".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import rel_entr

from driftloop.monitoring.sketch import validate_edges

__all__ = [
    "DEFAULT_MIN_ROWS",
    "DEFAULT_SMOOTHING",
    "PSI_ACT",
    "PSI_NOTICE",
    "PSI_WARNING",
    "ChiSquareResult",
    "DriftDecision",
    "KSResult",
    "PersistentDrift",
    "PsiLevel",
    "benjamini_hochberg",
    "chi_square",
    "decide_feature_drift",
    "js_divergence",
    "kl_divergence",
    "ks_from_counts",
    "ks_test",
    "psi",
    "psi_level",
    "wasserstein_from_counts",
    "wasserstein_normalized",
]

DEFAULT_SMOOTHING = 0.5  # pseudo-count added to every bin of both sides
PSI_NOTICE = 0.10
PSI_WARNING = 0.15
PSI_ACT = 0.25
DEFAULT_MIN_ROWS = 500  # rows in the current window before any drift level is reported

PsiLevel = Literal["none", "notice", "warning", "act"]
FloatArray = NDArray[np.float64]
_REF_CUR = ("reference_counts", "current_counts")


def _counts(name: str, counts: ArrayLike) -> FloatArray:
    """``counts`` as a 1-D float array; ValueError unless finite, non-negative, non-empty."""
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name} must be finite and non-negative, bin {i} is {float(arr[i])!r}")
    return arr


def _pair(
    reference: ArrayLike,
    current: ArrayLike,
    names: tuple[str, str],
    current_may_be_empty: bool = False,
) -> FloatArray:
    """Both sides validated and stacked into a 2 x k array; neither side may sum to 0."""
    ref, cur = _counts(names[0], reference), _counts(names[1], current)
    if ref.size != cur.size:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of bins, "
            f"got {ref.size} and {cur.size}"
        )
    for name, arr in zip(names, (ref, cur), strict=True):
        if arr.sum() == 0 and not (current_may_be_empty and arr is cur):
            raise ValueError(f"{name} is empty: its counts sum to 0")
    return np.vstack([ref, cur])


def _check_smoothing(smoothing: float) -> None:
    """ValueError unless ``smoothing`` is a finite pseudo-count >= 0."""
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be finite and >= 0, got {smoothing!r}")


def _proportions(
    reference: ArrayLike, current: ArrayLike, smoothing: float, names: tuple[str, str]
) -> tuple[FloatArray, FloatArray]:
    """Smoothed proportions of both sides (``smoothing`` added to every bin first)."""
    _check_smoothing(smoothing)
    table = _pair(reference, current, names) + smoothing
    table /= table.sum(axis=1, keepdims=True)
    return table[0], table[1]


def psi(
    reference_counts: ArrayLike, current_counts: ArrayLike, smoothing: float = DEFAULT_SMOOTHING
) -> float:
    """Population Stability Index: sum of (c - r) * ln(c / r) over proportions r and c.

    ``smoothing`` is added to every bin count of both sides before proportions are taken
    (additive, Laplace-style), so empty bins give finite values. With ``smoothing=0`` a bin
    empty on one side only makes the PSI infinite; one empty on both sides adds nothing.
    """
    r, c = _proportions(reference_counts, current_counts, smoothing, _REF_CUR)
    # (c - r) ln(c / r) = c ln(c / r) + r ln(r / c); rel_entr handles zeros without warnings.
    return float(np.sum(rel_entr(c, r) + rel_entr(r, c)))


def psi_level(
    value: float,
    notice: float = PSI_NOTICE,
    warning: float = PSI_WARNING,
    act: float = PSI_ACT,
) -> PsiLevel:
    """The highest level whose threshold ``value`` reaches (>=): none, notice, warning, act."""
    if not 0 <= notice <= warning <= act:
        raise ValueError(
            f"thresholds must satisfy 0 <= notice <= warning <= act, "
            f"got notice={notice!r}, warning={warning!r}, act={act!r}"
        )
    if math.isnan(value) or value < 0:
        raise ValueError(f"PSI must be a non-negative number, got {value!r}")
    if value >= act:
        return "act"
    if value >= warning:
        return "warning"
    if value >= notice:
        return "notice"
    return "none"


def kl_divergence(
    p_counts: ArrayLike, q_counts: ArrayLike, smoothing: float = DEFAULT_SMOOTHING
) -> float:
    """KL(P || Q) in nats on the same bins, with additive smoothing as in :func:`psi`."""
    p, q = _proportions(p_counts, q_counts, smoothing, ("p_counts", "q_counts"))
    return float(np.sum(rel_entr(p, q)))


def js_divergence(
    p_counts: ArrayLike, q_counts: ArrayLike, smoothing: float = DEFAULT_SMOOTHING
) -> float:
    """Jensen-Shannon divergence in bits (base 2, within [0, 1]), smoothed as in :func:`psi`."""
    p, q = _proportions(p_counts, q_counts, smoothing, ("p_counts", "q_counts"))
    m = (p + q) / 2.0
    nats = 0.5 * float(np.sum(rel_entr(p, m))) + 0.5 * float(np.sum(rel_entr(q, m)))
    return min(max(nats / math.log(2.0), 0.0), 1.0)


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov test on raw values."""

    statistic: float
    pvalue: float
    n_reference: int
    n_current: int


def _raw(name: str, values: ArrayLike) -> FloatArray:
    """Raw values without NaN; ValueError on infinities or when nothing is left."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise ValueError(f"{name} must not contain infinite values, found {n_inf}")
    if arr.size == 0:
        raise ValueError(f"{name} has no finite values")
    return arr


def ks_test(reference: ArrayLike, current: ArrayLike) -> KSResult:
    """Two-sample KS test (``scipy.stats.ks_2samp``), NaN ignored, infinities refused."""
    ref, cur = _raw("reference", reference), _raw("current", current)
    from scipy import stats  # imported here: scipy.stats costs ~70 MB and ~1 s to import

    result = stats.ks_2samp(ref, cur)
    return KSResult(float(result.statistic), float(result.pvalue), ref.size, cur.size)


def ks_from_counts(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """The two-sample KS statistic on binned data: the largest gap between the two
    empirical CDFs at the bin edges (no smoothing).

    When every distinct value has its own bin (a discrete column) this equals
    ``scipy.stats.ks_2samp(...).statistic`` on the raw values; on quantile bins it is at
    most that (the CDFs are compared at the edges only).
    """
    table = _pair(reference_counts, current_counts, _REF_CUR)
    cdf = np.cumsum(table, axis=1) / table.sum(axis=1, keepdims=True)
    return float(np.max(np.abs(cdf[0] - cdf[1])))


def _scale(std: float) -> float:
    """The normalizer for Wasserstein distances: ``std``, or 1.0 when it is 0 or undefined."""
    return std if math.isfinite(std) and std > 0 else 1.0


def wasserstein_normalized(reference: ArrayLike, current: ArrayLike) -> float:
    """Wasserstein-1 distance over the reference's std (ddof=1); NaN ignored, inf refused.

    A reference with std 0 (constant, or a single value) is normalized by 1.0 instead,
    so the result is then the plain distance in the column's units.
    """
    ref, cur = _raw("reference", reference), _raw("current", current)
    std = float(ref.std(ddof=1)) if ref.size > 1 else 0.0
    from scipy import stats

    return float(stats.wasserstein_distance(ref, cur)) / _scale(std)


def _bin_points(edges: tuple[float, ...]) -> FloatArray:
    """A representative point per bin: midpoints inside, half a neighbour's width outside."""
    e = np.asarray(edges, dtype=np.float64)
    if e.size == 0:
        return np.zeros(1)  # one bin holding everything: any point, distances are 0
    if e.size == 1:
        return np.array([e[0], e[0]])
    inner = (e[:-1] + e[1:]) / 2.0
    low = e[0] - (e[1] - e[0]) / 2.0
    high = e[-1] + (e[-1] - e[-2]) / 2.0
    return np.concatenate([[low], inner, [high]])


def wasserstein_from_counts(
    edges: Sequence[float], reference_counts: ArrayLike, current_counts: ArrayLike
) -> float:
    """:func:`wasserstein_normalized` on binned data, each bin at a representative point.

    Inner bins sit at their midpoint; the open outer bins at the edge minus (plus) half the
    neighbouring bin's width, or at the edge itself when there is only one edge. The
    normalizer is the reference's binned std (frequency weights, ddof=1), 1.0 if it is 0.
    Each outer bin puts its mass on one point, so changes in the tails (a wider spread, a
    large shift) come out smaller than on raw values.
    """
    checked = validate_edges(edges)
    table = _pair(reference_counts, current_counts, _REF_CUR)
    if table.shape[1] != len(checked) + 1:
        raise ValueError(
            f"counts must have len(edges) + 1 = {len(checked) + 1} bins, got {table.shape[1]}"
        )
    points = _bin_points(checked)
    ref, cur = table
    n = float(ref.sum())
    mean = float(np.dot(ref, points)) / n
    std = math.sqrt(float(np.dot(ref, (points - mean) ** 2)) / (n - 1)) if n > 1 else 0.0
    from scipy import stats

    distance = float(stats.wasserstein_distance(points, points, ref, cur))
    return distance / _scale(std)


@dataclass(frozen=True)
class ChiSquareResult:
    """Pearson chi-square test of homogeneity on a 2 x k table of counts."""

    statistic: float
    pvalue: float
    dof: int


def chi_square(reference_counts: ArrayLike, current_counts: ArrayLike) -> ChiSquareResult:
    """Chi-square homogeneity test of two count vectors on the same categorical bins.

    Bins empty on both sides are dropped first. No Yates continuity correction is applied,
    also for two bins, so the statistic is the plain Pearson one. A single remaining bin
    gives statistic 0, p-value 1 and 0 degrees of freedom.
    """
    table = _pair(reference_counts, current_counts, _REF_CUR)
    table = table[:, table.sum(axis=0) > 0]
    from scipy import stats

    result = stats.chi2_contingency(table, correction=False)
    return ChiSquareResult(float(result.statistic), float(result.pvalue), int(result.dof))


def benjamini_hochberg(pvalues: ArrayLike, alpha: float = 0.05) -> tuple[bool, ...]:
    """Which hypotheses are rejected with the false discovery rate controlled at ``alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be a 1-D sequence, got shape {p.shape}")
    bad = np.flatnonzero(~((p >= 0) & (p <= 1)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"p-values must lie in [0, 1], p-value {i} is {float(p[i])!r}")
    m = p.size
    order = np.argsort(p)
    # Step-up: adjusted p_(i) = min over j >= i of p_(j) * m / j, capped at 1.
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    rejected = np.empty(m, dtype=bool)
    rejected[order] = adjusted <= alpha
    return tuple(bool(r) for r in rejected)


@dataclass(frozen=True)
class DriftDecision:
    """Drift level of one feature in one window, judged on effect size (PSI)."""

    psi: float  # NaN when there is not enough data
    level: PsiLevel
    js_divergence: float  # NaN when there is not enough data
    rows: int  # non-missing rows in the current window
    enough_data: bool
    reason: str


def decide_feature_drift(
    reference_counts: ArrayLike,
    current_counts: ArrayLike,
    min_rows: int = DEFAULT_MIN_ROWS,
    notice: float = PSI_NOTICE,
    warning: float = PSI_WARNING,
    act: float = PSI_ACT,
    smoothing: float = DEFAULT_SMOOTHING,
) -> DriftDecision:
    """The PSI level of a window, or level "none" when it has fewer than ``min_rows`` rows."""
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ValueError(f"min_rows must be an integer >= 1, got {min_rows!r}")
    rows = int(
        _pair(reference_counts, current_counts, _REF_CUR, current_may_be_empty=True)[1].sum()
    )
    psi_level(0.0, notice, warning, act)  # validates the thresholds
    _check_smoothing(smoothing)
    if rows < min_rows:
        reason = f"{rows} rows in the window, fewer than min_rows={min_rows}"
        return DriftDecision(math.nan, "none", math.nan, rows, False, reason)
    value = psi(reference_counts, current_counts, smoothing)
    level = psi_level(value, notice, warning, act)
    js = js_divergence(reference_counts, current_counts, smoothing)
    return DriftDecision(value, level, js, rows, True, f"PSI {value:.4f} is level {level!r}")


class PersistentDrift:
    """Drift is detected once a condition held for ``k`` consecutive windows."""

    def __init__(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        self._k = k
        self._run = 0

    @property
    def run_length(self) -> int:
        """Consecutive windows, up to the latest, in which the condition held."""
        return self._run

    @property
    def drift_detected(self) -> bool:
        """Whether the condition held in each of the last ``k`` windows."""
        return self._run >= self._k

    def update(self, level_reached: bool) -> None:
        """Record one window: extend the run if the condition held, otherwise reset it."""
        self._run = self._run + 1 if level_reached else 0
