"""Schema inference and table preparation on a large seeded table, against a bare pandas load.

    .venv/bin/python benchmarks/infer.py [--rows N] [--seed N] [--repeat N]

The table: ``--rows`` events of 20,000 entities over 180 days, with a 0/1 target, three float
features (10% missing), a 0/1 flag, a 12-value category, an id column and a constant. Two
forms: timestamps as datetime64 (as Parquet gives them) and as ISO text (as CSV gives them).

Baseline ("bare pandas"): what a hand-written loader does at least: parse the timestamp,
cast the columns and sort by (timestamp, entity), with no validation or classification.
Times are the best of ``--repeat`` runs, in seconds, on this machine; "ratio" is both / bare.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from driftloop.tabular import infer_schema, prepare_table

ENTITIES = 20_000
DAYS = 180


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """A seeded table with unique (entity, timestamp) keys and naive datetimes."""
    rng = np.random.default_rng(seed)
    entity = rng.integers(0, ENTITIES, rows)
    seconds = rng.choice(DAYS * 86_400, size=rows, replace=False)
    amount = rng.gamma(2.0, 30.0, rows)
    frame = pd.DataFrame(
        {
            "customer_id": entity,
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"),
            "amount": amount,
            "age": rng.normal(40, 12, rows),
            "tenure": rng.exponential(300, rows),
            "promo": rng.random(rows) < 0.2,
            "plan": rng.choice([f"plan_{i}" for i in range(12)], rows),
            "row_id": np.arange(rows),
            "region": "eu",
            "churned": (rng.random(rows) < 0.1).astype(int),
        }
    )
    for name in ("amount", "age", "tenure"):
        frame.loc[rng.random(rows) < 0.1, name] = np.nan
    return frame


def bare_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    """The baseline: parse, cast and sort, nothing checked."""
    out = frame.drop(columns=["row_id", "region"])
    out["ts"] = pd.to_datetime(out["ts"], utc=True, format="ISO8601")
    for name in ("amount", "age", "tenure", "promo", "churned"):
        out[name] = out[name].astype("float64")
    return out.sort_values(["ts", "customer_id"]).reset_index(drop=True)


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = make_frame(args.rows, args.seed)
    text = base.assign(ts=base["ts"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    table = Table(title=f"infer_schema + prepare_table, {args.rows:,} rows (best of {args.repeat})")
    for column in (
        "timestamps",
        "infer_schema s",
        "prepare_table s",
        "both s",
        "bare pandas s",
        "ratio",
    ):
        table.add_column(column, justify="right")
    keys = (["customer_id"], "ts", "churned")
    for label, frame in (("datetime64", base), ("ISO text", text)):
        schema = infer_schema(frame, *keys)
        infer_s = best_of(args.repeat, lambda f=frame: infer_schema(f, *keys))
        prepare_s = best_of(args.repeat, lambda f=frame, s=schema: prepare_table(f, s))
        bare_s = best_of(args.repeat, lambda f=frame: bare_pandas(f))
        both_s = infer_s + prepare_s
        cells = (infer_s, prepare_s, both_s, bare_s, both_s / bare_s)
        table.add_row(label, *(f"{v:.2f}" for v in cells))
    Console().print(table)


if __name__ == "__main__":
    main()
