"""A user's table the project never saw: sensor demand with a known shift."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

SHIFT_DAY = date(2023, 6, 30)


def sensor_table(n_entities: int = 40, days: int = 240, seed: int = 7) -> pd.DataFrame:
    """Daily demand per sensor: a level per sensor, temperature, load and zone effects;
    from SHIFT_DAY the response to load reverses and half the sensors' level x1.8."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01")
    stamps = start + pd.to_timedelta(np.arange(days), unit="D")
    level = rng.uniform(20, 60, n_entities)
    zones = np.array(["east", "north", "south"])[rng.integers(0, 3, n_entities)]
    rows = []
    for e in range(n_entities):
        temp = 15 + rng.normal(0, 5, days)  # no season: the shift is the only change
        load = rng.uniform(0, 1, days)
        after = stamps >= pd.Timestamp(SHIFT_DAY)
        slope = np.where(after, -0.6, 0.8)
        lvl = level[e] * np.where(after & (e % 2 == 0), 1.8, 1.0)
        mean = lvl * (1 + slope * load) + 0.8 * temp + (5 if zones[e] == "north" else 0)
        demand = np.maximum(mean + rng.normal(0, 3, days), 0).round(1)
        for i in range(days):
            rows.append(
                (
                    f"s{e:02d}",
                    stamps[i].strftime("%Y-%m-%d"),
                    temp[i].round(2),
                    load[i].round(3),
                    zones[e],
                    demand[i],
                )
            )
    return pd.DataFrame(rows, columns=["sensor", "day", "temp", "load", "zone", "demand"])


@pytest.fixture(scope="session")
def shift_day() -> date:
    """The day the sensor table's world changes."""
    return SHIFT_DAY


@pytest.fixture(scope="session")
def sensor_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user_table") / "sensors.csv"
    sensor_table().to_csv(path, index=False)
    return path


def init_sensors(root: Path, source: Path, *extra: str) -> Result:
    """``driftloop init ROOT --data SOURCE`` for the sensor table (its entity, timestamp
    and target), with ``extra`` options."""
    from driftloop.cli.main import app

    args = ["--entity", "sensor", "--timestamp", "day", "--target", "demand", *extra]
    return CliRunner().invoke(app, ["init", str(root), "--data", str(source), *args])
