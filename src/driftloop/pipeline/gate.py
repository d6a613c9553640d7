"""The quality gate: a candidate against the champion on the same holdout.

Pure: metrics and prediction summaries in, a frozen verdict with every check out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from driftloop.config import GateConfig
from driftloop.pipeline.metrics import HIGHER_IS_BETTER
from driftloop.statistics.paired import MIN_GROUPS, PairedGain

__all__ = ["GateCheck", "GateVerdict", "PredictionSanity", "evaluate_gate", "prediction_sanity"]


@dataclass(frozen=True)
class PredictionSanity:
    """What the gate needs to know about the candidate's holdout predictions."""

    rows: int
    non_finite: int
    minimum: float
    maximum: float


def prediction_sanity(predictions: ArrayLike) -> PredictionSanity:
    """Summarize predictions: count of NaN/inf and the finite range."""
    p = np.asarray(predictions, dtype="float64").ravel()
    finite = p[np.isfinite(p)]
    return PredictionSanity(
        rows=int(p.size),
        non_finite=int(p.size - finite.size),
        minimum=float(finite.min()) if finite.size else float("nan"),
        maximum=float(finite.max()) if finite.size else float("nan"),
    )


@dataclass(frozen=True)
class GateCheck:
    """One condition of the gate with the numbers that decided it."""

    name: str
    passed: bool
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class GateVerdict:
    """All checks; the candidate passes only if every one passes."""

    metric: str
    candidate: float
    champion: float | None
    champion_version: str | None
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)

    def summary(self) -> str:
        head = "passed" if self.passed else f"rejected ({', '.join(self.failed_checks)})"
        against = (
            f" vs champion v{self.champion_version} {self.champion:.4f}"
            if self.champion is not None
            else " (no champion)"
        )
        return f"{head}: {self.metric} {self.candidate:.4f}{against}"


def evaluate_gate(
    cfg: GateConfig,
    candidate: Mapping[str, float],
    sanity: PredictionSanity,
    max_training_label: float,
    champion: Mapping[str, float] | None = None,
    champion_version: str | None = None,
    paired: PairedGain | None = None,
    champion_reference: float | None = None,
) -> GateVerdict:
    """Decide whether ``candidate`` may take an alias; every number is kept. ``paired``:
    both models' per-row losses on the holdout, judged day by day (``cfg.significance``);
    ``champion_reference``: the champion's own holdout value of the metric when it was
    registered (a champion far past it is broken: ``cfg.significance_waived_at``)."""
    metric = cfg.metric
    value = float(candidate[metric])
    checks = [
        *_sanity_checks(cfg, sanity, max_training_label),
        *_metric_checks(cfg, candidate, metric, value),
    ]
    champion_value: float | None = None
    if champion is not None:
        champion_value = float(champion[metric])
        checks.append(_vs_champion(cfg, metric, value, champion_value, champion_version))
        if cfg.significance is not None:
            broken = _broken(cfg, metric, champion_value, champion_reference)
            checks.append(
                _significant_gain(cfg.significance, paired, champion_version)
                if broken is None
                else broken
            )
    return GateVerdict(
        metric=metric,
        candidate=value,
        champion=champion_value,
        champion_version=champion_version,
        checks=tuple(checks),
    )


def _sanity_checks(
    cfg: GateConfig, sanity: PredictionSanity, max_training_label: float
) -> list[GateCheck]:
    """The candidate's holdout predictions: finite, and within the configured bounds."""
    checks = [
        GateCheck(
            "finite_predictions",
            sanity.non_finite == 0,
            float(sanity.non_finite),
            0.0,
            f"{sanity.non_finite} of {sanity.rows} predictions are NaN or infinite",
        )
    ]
    if cfg.min_prediction is not None:
        checks.append(
            GateCheck(
                "min_prediction",
                bool(sanity.minimum >= cfg.min_prediction),
                sanity.minimum,
                cfg.min_prediction,
                f"smallest prediction {sanity.minimum:.4g} (allowed >= {cfg.min_prediction:g})",
            )
        )
    ceiling = cfg.max_prediction_factor * max(max_training_label, 1.0)
    checks.append(
        GateCheck(
            "max_prediction",
            bool(sanity.maximum <= ceiling),
            sanity.maximum,
            ceiling,
            f"largest prediction {sanity.maximum:.4g} (allowed <= {ceiling:.4g} = "
            f"{cfg.max_prediction_factor:g} x largest training label)",
        )
    )
    return checks


def _metric_checks(
    cfg: GateConfig, candidate: Mapping[str, float], metric: str, value: float
) -> list[GateCheck]:
    """The candidate's holdout metric: finite, within its absolute bounds, and its bias."""
    higher = metric in HIGHER_IS_BETTER
    checks: list[GateCheck] = []
    if not np.isfinite(value):
        checks.append(GateCheck(metric, False, value, float("nan"), f"{metric} is not finite"))
    if cfg.max_metric is not None and not higher:
        checks.append(
            GateCheck(
                f"max_{metric}",
                value <= cfg.max_metric,
                value,
                cfg.max_metric,
                f"{metric} {value:.4f} (allowed <= {cfg.max_metric:g})",
            )
        )
    if cfg.min_metric is not None and higher:
        checks.append(
            GateCheck(
                f"min_{metric}",
                value >= cfg.min_metric,
                value,
                cfg.min_metric,
                f"{metric} {value:.4f} (required >= {cfg.min_metric:g})",
            )
        )
    if cfg.max_abs_bias is not None and "bias" in candidate:
        bias = float(candidate["bias"])
        checks.append(
            GateCheck(
                "max_abs_bias",
                abs(bias) <= cfg.max_abs_bias,
                abs(bias),
                cfg.max_abs_bias,
                f"bias {bias:+.4f} of total demand (allowed within +-{cfg.max_abs_bias:g})",
            )
        )
    return checks


def _vs_champion(
    cfg: GateConfig,
    metric: str,
    value: float,
    champion_value: float,
    champion_version: str | None,
) -> GateCheck:
    """The candidate against the champion on the same holdout, within the tolerance."""
    tol = cfg.relative_tolerance
    if metric in HIGHER_IS_BETTER:
        limit = champion_value * (1.0 - tol)
        ok = value >= limit
        rel = "at least"
    else:
        limit = champion_value * (1.0 + tol)
        ok = value <= limit
        rel = "at most"
    return GateCheck(
        "vs_champion",
        bool(ok),
        value,
        limit,
        f"{metric} {value:.4f} vs champion v{champion_version} {champion_value:.4f}: "
        f"must be {rel} {limit:.4f} (tolerance {tol:.1%})",
    )


def _significant_gain(alpha: float, paired: PairedGain | None, champion: str | None) -> GateCheck:
    """The candidate's per-row losses below the champion's, by more than the holdout's
    days vary: a gain the week's luck cannot explain (statistics.paired). A holdout of
    fewer than ``MIN_GROUPS`` days (a monthly table's week holds one) cannot be judged so:
    the check passes, saying so, and the gain rule decides alone."""
    if paired is None or not np.isfinite(paired.p_value):
        days = 0 if paired is None else paired.groups
        return GateCheck(
            "significant_gain",
            True,
            float("nan"),
            alpha,
            f"not judged: the holdout holds {days} day(s) with labels, a paired test over "
            f"days needs {MIN_GROUPS}; the comparison with champion v{champion} decides",
        )
    return GateCheck(
        "significant_gain",
        bool(paired.p_value < alpha),
        paired.p_value,
        alpha,
        f"loss {paired.relative:+.1%} lower than champion v{champion}'s on the same "
        f"{paired.rows} rows over {paired.groups} days: one-sided paired t-test over days "
        f"p = {paired.p_value:.3g} (deployed when < {alpha:g})",
    )


def _broken(cfg: GateConfig, metric: str, now: float, reference: float | None) -> GateCheck | None:
    """The paired test waived, passed, when the champion's error on this holdout is
    ``significance_waived_at`` times its own at registration (None: it is not)."""
    if reference is None or not (np.isfinite(now) and np.isfinite(reference)):
        return None
    higher = metric in HIGHER_IS_BETTER
    error, ref = (1.0 - now, 1.0 - reference) if higher else (now, reference)
    if ref <= 0 or error < cfg.significance_waived_at * ref:
        return None
    return GateCheck(
        "significant_gain",
        True,
        error / ref,
        cfg.significance_waived_at,
        f"waived: champion's {'1 - ' if higher else ''}{metric} on this holdout is "
        f"{error / ref:.2f}x its own at registration (>= {cfg.significance_waived_at:g}x: "
        "broken), so a candidate no worse than it is deployed",
    )
