"""The one definition of WAPE, log loss and ROC AUC, and its one convention: nothing to
judge is NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from driftloop.statistics.accuracy import (
    LOSS_CLIP,
    class_losses,
    degraded_ratio_at,
    log_loss_sum,
    median_day_ratio,
    or_none,
    pr_auc,
    roc_auc,
    roc_auc_from_counts,
    row_log_loss,
    wape,
    wape_of,
)
from driftloop.statistics.accuracy import log_loss as mean_log_loss


def test_wape_skips_missing_labels_and_is_nan_without_label_mass() -> None:
    assert wape([10, 20, np.nan, 10], [12, 18, 99, 10]) == pytest.approx(4 / 40)
    assert math.isnan(wape([np.nan, np.nan], [1, 2]))
    assert math.isnan(wape([0.0, 0.0], [1, 2]))
    assert math.isnan(wape([], []))
    assert wape_of(5.0, 40.0) == pytest.approx(0.125) and math.isnan(wape_of(5.0, 0.0))


def test_log_loss_matches_scikit_learn_within_the_clip() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0.01, 0.99)
    assert mean_log_loss(y, p) == pytest.approx(log_loss(y, p))
    assert row_log_loss(y, p).mean() == pytest.approx(log_loss(y, p))
    assert log_loss_sum(y, p) == pytest.approx(log_loss(y, p) * y.size)
    positives, pos, neg = class_losses(y, p)
    assert positives == int(y.sum()) and pos + neg == pytest.approx(log_loss_sum(y, p))


def test_log_loss_clips_once_for_everyone_and_is_nan_without_labels() -> None:
    worst = -math.log(LOSS_CLIP)
    assert row_log_loss([1.0, 0.0], [0.0, 1.0]).tolist() == pytest.approx([worst, worst])
    assert mean_log_loss([1.0, np.nan], [0.0, 0.3]) == pytest.approx(worst)
    assert math.isnan(mean_log_loss([np.nan], [0.3]))


def test_aucs_match_scikit_learn_and_are_nan_with_one_class() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200).astype(float)
    s = 0.4 * y + rng.uniform(0, 0.6, 200)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert pr_auc(y, s) == pytest.approx(average_precision_score(y, s))
    assert math.isnan(roc_auc([1, 1, np.nan], [0.2, 0.4, 0.5]))
    assert math.isnan(pr_auc([0, 0], [0.2, 0.4]))
    assert roc_auc_from_counts([0, 1], [1, 0]) == 1.0
    assert roc_auc_from_counts([1, 1], [1, 1]) == pytest.approx(0.5)
    assert math.isnan(roc_auc_from_counts([0, 0], [1, 0]))


def test_or_none_is_the_json_edge() -> None:
    assert or_none(math.nan) is None and or_none(0.5) == 0.5


def test_degraded_ratio_at_worked_example() -> None:
    assert degraded_ratio_at(20, 1.2, 20) == 1.2
    assert degraded_ratio_at(200, 1.2, 20) == 1.2
    assert degraded_ratio_at(5, 1.2, 20) == pytest.approx(1.2 * (1 + 3 / 5**0.5))  # 2.81
    assert degraded_ratio_at(19, 1.2, 20) == pytest.approx(2.026, abs=1e-3)
    assert degraded_ratio_at(4, 1.2, 20) is None  # under a quarter of min_labels
    assert degraded_ratio_at(2, 1.2, 4) is None  # and never on fewer than 3
    assert degraded_ratio_at(3, 1.2, 4) == pytest.approx(1.2 * (1 + 3 / 3**0.5))
    with pytest.raises(ValueError, match="min_labels"):
        degraded_ratio_at(5, 1.2, 0)


def test_median_day_ratio_worked_example() -> None:
    # Five days at WAPE 0.30 and a holiday at 3.0, against a holdout WAPE of 0.30: the
    # pooled WAPE is 180 / 510 = 0.35, the median day 1.0x the holdout.
    errors = [30.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    labels = [100.0, 100.0, 100.0, 100.0, 100.0, 10.0]
    assert median_day_ratio(errors, labels, 0.3) == pytest.approx(1.0)
    assert median_day_ratio([40.0] * 5, [100.0] * 5, 0.2) == pytest.approx(2.0)
    # Days without label mass are skipped; fewer than five judged days: NaN.
    assert math.isnan(median_day_ratio([40.0] * 5, [100.0] * 4 + [0.0], 0.2))
    assert median_day_ratio([1.0, 2.0, 3.0], [10.0] * 3, 0.1, min_days=3) == pytest.approx(2.0)
    assert math.isnan(median_day_ratio([1.0] * 5, [1.0] * 5, math.nan))
    with pytest.raises(ValueError, match="shape"):
        median_day_ratio([1.0], [1.0, 2.0], 0.3)
