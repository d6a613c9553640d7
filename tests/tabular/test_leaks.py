"""init's "what to check" names exact parts of the target, split markers and ids, and
stays quiet on ordinary measurements."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.tabular.conftest import sensor_table

from driftloop.tabular import infer_schema
from driftloop.tabular.leaks import exact_relations, time_cut_agreement


def orders_table(rows: int = 1_200, seed: int = 4) -> pd.DataFrame:
    """Orders whose total is base + shipping (both columns), with a time-ordered split
    label, a 0/1 test flag from the last fifth, a row counter and a noisy real feature."""
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, 120 * 1440, rows))
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(minutes, unit="min")
    base = rng.uniform(10, 200, rows).round(2)
    shipping = rng.choice([0.0, 4.99, 9.99], rows)
    late = np.arange(rows) >= rows * 0.8
    return pd.DataFrame(
        {
            "customer": rng.integers(0, 300, rows),
            "ordered_at": stamps,
            "base": base,
            "shipping": shipping,
            "discount": rng.uniform(0, 1, rows).round(3),
            "sample": np.where(late, "test", "train"),
            "is_holdout": late.astype(int),
            "order_no": np.arange(rows) + 1000 - (np.arange(rows) % 50 == 0),
            "total": (base + shipping).round(2),
        }
    )


def test_parts_of_the_target_split_markers_and_ids_are_named() -> None:
    schema = infer_schema(orders_table(), ["customer"], "ordered_at", "total")
    text = "\n".join(schema.checks)
    assert "columns 'base' + 'shipping' equal the target 'total' exactly (100% of rows)" in text
    assert "column 'sample' holds split labels (test, train)" in text
    assert "column 'is_holdout' has two values that change once with time" in text
    assert "column 'order_no' holds" in text and "an id says which row" in text
    assert "'discount'" not in text


def test_an_ordinary_table_raises_none_of_them() -> None:
    schema = infer_schema(sensor_table(10, 120), ["sensor"], "day", "demand")
    flagged = [c for c in schema.checks if "exactly" in c or "split" in c or "an id says" in c]
    assert flagged == []


def test_a_difference_is_found_in_either_order_and_a_sum_once() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    assert exact_relations("y", a - b, {"a": a, "b": b, "c": rng.normal(size=200)}) == [
        ("a", "-", "b", 1.0)
    ]
    assert exact_relations("y", a + b, {"b": b, "a": a}) == [("b", "+", "a", 1.0)]


def test_time_cut_agreement_finds_the_switch() -> None:
    times = np.arange(100)
    flag = (times >= 70).astype(float)
    flag[[3, 90]] = 1 - flag[[3, 90]]
    assert time_cut_agreement(times[::-1], flag[::-1]) == (0.98, 70)
