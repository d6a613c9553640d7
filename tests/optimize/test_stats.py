"""Trade-off arithmetic: disagreement, metric loss, the keep/reject verdict, the choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftloop.optimize.stats import (
    agreement,
    choose_best,
    judge_variant,
    latency_summary,
    relative_metric_loss,
)


def test_regression_disagreement_is_wape_against_fp32() -> None:
    result = agreement("regression", [10.0, 20.0, 70.0], [11.0, 18.0, 70.0])
    assert result.disagreement == pytest.approx(3.0 / 100.0)
    assert result.max_abs_diff == pytest.approx(2.0)
    assert result.rows == 3


def test_classification_disagreement_counts_flipped_classes() -> None:
    result = agreement("classification", [0.2, 0.6, 0.49, 0.9], [0.3, 0.4, 0.51, 0.95])
    assert result.disagreement == pytest.approx(0.5)


def test_identical_predictions_agree_fully() -> None:
    result = agreement("regression", np.zeros(4), np.zeros(4))
    assert result.disagreement == 0.0 and result.max_abs_diff == 0.0


def test_agreement_refuses_arrays_of_different_length() -> None:
    with pytest.raises(ValueError, match="differ in length: 2 vs 3"):
        agreement("regression", [1.0, 2.0], [1.0, 2.0, 3.0])


def test_metric_loss_for_lower_and_higher_is_better() -> None:
    assert relative_metric_loss("wape", 0.50, 0.505) == pytest.approx(0.01)
    assert relative_metric_loss("wape", 0.50, 0.45) == pytest.approx(-0.1)
    assert relative_metric_loss("roc_auc", 0.80, 0.792) == pytest.approx(0.01)
    assert relative_metric_loss("roc_auc", 0.80, 0.82) < 0
    assert math.isinf(relative_metric_loss("wape", 0.5, float("nan")))


def test_judge_keeps_within_both_tolerances_and_names_each_breach() -> None:
    kept = judge_variant("wape", 0.006, 0.009, 0.01, 0.02)
    assert kept.kept and kept.reason.startswith("kept: wape +0.60% vs FP32")
    assert judge_variant("wape", 0.01, 0.02, 0.01, 0.02).kept  # the limits themselves pass
    both = judge_variant("wape", 0.03, 0.05, 0.01, 0.02)
    assert not both.kept
    assert "wape +3.00% vs FP32 (allowed <= 1.00% worse)" in both.reason
    assert "disagreement with FP32 5.00% (allowed <= 2.00%)" in both.reason
    assert not judge_variant("wape", float("nan"), 0.0, 0.01, 0.02).kept


def test_best_is_the_smallest_kept_variant_then_the_smaller_loss() -> None:
    assert choose_best([]) is None
    assert choose_best([("fused", 300, 0.0), ("int8-dynamic", 75, 0.006)]) == "int8-dynamic"
    assert choose_best([("a", 75, 0.006), ("b", 75, 0.001)]) == "b"


def test_latency_percentiles_in_milliseconds() -> None:
    summary = latency_summary([0.001] * 99 + [0.1])
    assert summary.p50_ms == pytest.approx(1.0)
    assert summary.p99_ms > 1.0 and summary.runs == 100
    with pytest.raises(ValueError, match="no timed runs"):
        latency_summary([])
