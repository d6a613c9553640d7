from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    roc_auc_score,
    root_mean_squared_error,
)

from driftloop.pipeline.metrics import classification_metrics, regression_metrics


def test_regression_worked_example() -> None:
    m = regression_metrics([10, 20, 0, 10], [12, 18, 1, 10])
    assert m.wape == pytest.approx(5 / 40)
    assert m.mape == pytest.approx((0.2 + 0.1 + 0.0) / 3)  # the zero label is left out
    assert m.rmse == pytest.approx(np.sqrt((4 + 4 + 1 + 0) / 4))
    assert m.bias == pytest.approx(1 / 40)
    assert m.rows == 4


def test_regression_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.poisson(20, 500).astype(float) + 1
    p = y + rng.normal(0, 3, 500)
    m = regression_metrics(y, p)
    assert m.rmse == pytest.approx(root_mean_squared_error(y, p))
    assert m.mape == pytest.approx(mean_absolute_percentage_error(y, p))


def test_classification_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 400), 0, 1)
    m = classification_metrics(y, p)
    assert m.roc_auc == pytest.approx(roc_auc_score(y, p))
    assert m.pr_auc == pytest.approx(average_precision_score(y, p))
    assert m.log_loss == pytest.approx(log_loss(y, p))
    # the error the loop tracks for either task: mean absolute error per positive
    assert m.wape == pytest.approx(mean_absolute_error(y, p) / y.mean())


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1, 2], [1], "differ in length"),
        ([], [], "no rows"),
        ([1, np.nan], [1, 2], "finite"),
    ],
)
def test_bad_inputs_are_refused(y: list[float], p: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        regression_metrics(y, p)


def test_single_class_holdout_is_refused() -> None:
    with pytest.raises(ValueError, match="only one class"):
        classification_metrics([1, 1, 1], [0.2, 0.5, 0.9])


def test_a_holdout_too_small_for_its_metric_is_named_not_evaluated() -> None:
    from driftloop.pipeline.metrics import too_few_to_evaluate

    assert too_few_to_evaluate("classification", [0, 1] * 10) is None
    assert too_few_to_evaluate("classification", [0] * 7, min_rows=5) == (
        "7 rows, all negative: ROC AUC and log loss need both classes"
    )
    assert too_few_to_evaluate("classification", [1] * 12) is not None
    assert too_few_to_evaluate("regression", [3.0] * 7) == "7 rows, fewer than 10"
    assert too_few_to_evaluate("regression", [3.0] * 10) is None
