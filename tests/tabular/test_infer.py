"""Schema inference on a user's table: every role, the readers, durations, and each bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import DataError
from driftloop.tabular import infer_schema, parse_duration, prepare_table, read_table

CUSTOMERS = 40
EVENTS = 30  # per customer, every 3 days: 1,200 rows over 87 days


def make_frame(seed: int = 7) -> pd.DataFrame:
    """A seeded table with one column of every role (naive timestamps)."""
    rng = np.random.default_rng(seed)
    rows = CUSTOMERS * EVENTS
    customer = np.repeat(np.arange(100, 100 + CUSTOMERS), EVENTS)
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(customer - 100, unit="h")
    ts = start + pd.to_timedelta(np.tile(np.arange(EVENTS) * 3, CUSTOMERS), unit="D")
    amount = rng.gamma(2.0, 30.0, rows).round(2)
    amount[rng.random(rows) < 0.3] = np.nan
    frame = pd.DataFrame(
        {
            "customer_id": customer,
            "ts": ts,
            "amount": amount,
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "visits": [str(v) for v in rng.integers(0, 20, rows)],
            "promo": rng.random(rows) < 0.2,
            "row_id": np.arange(rows),
            "note": [f"called about order {i}" for i in range(rows)],
            "region": "eu",
            "signup": pd.Timestamp("2023-06-01"),
            "blank": np.nan,
            "churned": (rng.random(rows) < 0.3).astype(int),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


def test_infer_schema_gives_every_column_its_role(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame, ["customer_id"], "ts", "churned")
    assert schema.entity == ("customer_id",)
    assert schema.entity_types == {"customer_id": "int64"}
    assert schema.task == "classification"
    assert schema.numeric == ("amount", "visits", "promo")
    assert schema.categorical == {"plan": ("basic", "pro", "team")}
    assert set(schema.ignored) == {"row_id", "note", "region", "signup", "blank"}
    assert schema.ignored["row_id"].startswith("an id")
    assert schema.ignored["note"].startswith("an id or free text")
    assert schema.ignored["region"].startswith("constant")
    assert "second time column" in schema.ignored["signup"]
    assert schema.ignored["blank"].startswith("empty")
    assert (schema.rows, schema.entities) == (1200, CUSTOMERS)
    assert schema.first == datetime(2024, 1, 1, tzinfo=UTC)
    assert schema.last == datetime(2024, 3, 29, 15, tzinfo=UTC)
    assert schema.spacing == timedelta(days=3)
    assert schema.label_delay == timedelta(days=3)
    assert [c.name for c in schema.columns] == list(frame.columns)
    roles = {c.name: c.role for c in schema.columns}
    assert roles["customer_id"] == "entity" and roles["ts"] == "timestamp"
    assert roles["churned"] == "target" and roles["note"] == "ignored"
    amount = next(c for c in schema.columns if c.name == "amount")
    assert (amount.dtype, amount.detail) == ("float64", "float64, 29% missing")
    checks = "\n".join(schema.checks)
    assert "task: classification, inferred" in checks
    assert "carry no time zone: taken as UTC" in checks
    assert "label delay assumed 3 days" in checks and "--label-delay" in checks
    assert "column 'amount' is 29% missing" in checks
    assert "positive rate 28.9% (347 of 1,200 rows)" in checks
    assert "follows the target" not in checks


def test_prepare_table_types_sorts_and_drops_ignored(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame, ["customer_id"], "ts", "churned")
    table = prepare_table(frame, schema)
    assert list(table.columns) == [
        "customer_id",
        "ts",
        "amount",
        "plan",
        "visits",
        "promo",
        "churned",
    ]
    assert str(table["ts"].dtype) == "datetime64[ns, UTC]"
    assert table["customer_id"].dtype == "int64"
    for name in ("amount", "visits", "promo", "churned"):
        assert table[name].dtype == "float64"
    assert table["plan"].dropna().map(type).eq(str).all()
    assert table["amount"].isna().sum() == frame["amount"].isna().sum()
    keys = list(zip(table["ts"], table["customer_id"], strict=True))
    assert keys == sorted(keys) and table.index.tolist() == list(range(1200))
    assert table["promo"].sum() == frame["promo"].sum()
    again = prepare_table(frame.sample(frac=1.0, random_state=1), schema)
    pd.testing.assert_frame_equal(table, again)


def test_regression_inferred_with_string_keys_aware_times_and_a_leak() -> None:
    rng = np.random.default_rng(3)
    rows = 1500
    times = pd.date_range("2023-01-01", periods=rows, freq="2h", tz="Europe/Berlin")
    frame = pd.DataFrame(
        {
            "store": rng.choice(["s1", "s2", "s3"], rows),
            "sku": rng.integers(1, 6, rows).astype(float),
            "at": times.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "price": rng.normal(10, 2, rows),
        }
    )
    frame["sales"] = 3 * frame["price"] + rng.normal(0, 0.1, rows)
    schema = infer_schema(frame, ["store", "sku"], "at", "sales", label_delay=timedelta(hours=36))
    assert schema.task == "regression"
    assert schema.entity_types == {"store": "string", "sku": "int64"}
    assert schema.first == times[0].to_pydatetime().astimezone(UTC)
    assert schema.label_delay == timedelta(hours=36)
    assert schema.entities == 15
    checks = "\n".join(schema.checks)
    assert "task: regression, inferred" in checks
    assert "no time zone" not in checks and "label delay assumed" not in checks
    assert "column 'price' follows the target 'sales' closely" in checks
    assert "known at prediction time" in checks
    table = prepare_table(frame, schema)
    assert table["sku"].dtype == "int64" and table["store"].map(type).eq(str).all()
    assert table["at"].iloc[0] == pd.Timestamp(times[0]).tz_convert("UTC")


def test_epoch_seconds_are_read_as_times_and_said_in_checks(frame: pd.DataFrame) -> None:
    frame["ts"] = frame["ts"].astype("datetime64[s]").astype("int64")
    schema = infer_schema(frame, ["customer_id"], "ts", "churned")
    assert schema.first == datetime(2024, 1, 1, tzinfo=UTC)
    assert any("read as seconds since 1970-01-01 UTC" in c for c in schema.checks)


def test_spacing_rounds_up_to_whole_days_for_the_default_delay(frame: pd.DataFrame) -> None:
    frame["ts"] = pd.Timestamp("2024-01-01") + (frame["ts"] - pd.Timestamp("2024-01-01")) * 0.5
    schema = infer_schema(frame, ["customer_id"], "ts", "churned", min_days=40)
    assert schema.spacing == timedelta(days=1, hours=12)
    assert schema.label_delay == timedelta(days=2)
    assert any("(1 day 12 h) rounded up" in c for c in schema.checks)


def test_pandas_extension_dtypes_read_like_their_numpy_forms(frame: pd.DataFrame) -> None:
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    frame["amount"] = frame["amount"].round().astype("Int64")
    frame["plan"] = frame["plan"].astype("string")
    frame["promo"] = frame["promo"].astype("boolean")
    frame.loc[3, "promo"] = pd.NA
    frame["tier"] = pd.Categorical(np.where(frame.index % 3 == 0, "gold", "silver"))
    frame["churned"] = frame["churned"].astype(bool)
    schema = infer_schema(frame, ["customer_id"], "ts", "churned")
    assert (schema.task, schema.entity_types) == ("classification", {"customer_id": "int64"})
    assert schema.numeric == ("amount", "visits", "promo")
    assert schema.categorical["tier"] == ("gold", "silver")
    table = prepare_table(frame, schema)
    assert table["promo"].isna().sum() == 1 and table["promo"].dtype == "float64"
    assert table["plan"].map(type).eq(str).all() and table["tier"].map(type).eq(str).all()
    assert set(table["churned"]) == {0.0, 1.0}


def test_unknown_task_and_negative_delay_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"--task 'ranking' is not a task: use regression or"):
        infer_schema(frame, ["customer_id"], "ts", "churned", task="ranking")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"--label-delay -1 day, 0:00:00 is negative"):
        infer_schema(frame, ["customer_id"], "ts", "churned", label_delay=timedelta(days=-1))


# -- reading tables ---------------------------------------------------------------------------


def test_read_table_reads_csv_parquet_and_a_duckdb_query(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    small = frame[["customer_id", "ts", "plan", "churned"]]
    small.to_csv(tmp_path / "t.csv", index=False)
    small.to_csv(tmp_path / "t.csv.gz", index=False)
    small.to_parquet(tmp_path / "t.parquet")
    from_csv = read_table("t.csv", base=tmp_path)
    assert list(from_csv.columns) == list(small.columns) and len(from_csv) == 1200
    pd.testing.assert_frame_equal(read_table(str(tmp_path / "t.csv.gz")), from_csv)
    from_parquet = read_table(str(tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(from_parquet, small)
    queried = read_table(
        "select customer_id, count(*) as n from 't.parquet' group by 1 order by 1", base=tmp_path
    )
    assert queried["n"].tolist() == [EVENTS] * CUSTOMERS
    # a CSV's text timestamps parse to the same schema as the Parquet's datetimes
    a = infer_schema(from_csv, ["customer_id"], "ts", "churned")
    b = infer_schema(from_parquet, ["customer_id"], "ts", "churned")
    assert (a.first, a.last, a.categorical) == (b.first, b.last, b.categorical)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("absent.csv", None, r"absent\.csv does not exist: check the --data path"),
        ("t.json", b"{}", r"extension driftloop cannot read: use a \.parquet"),
        ("t.parquet", b"not parquet", r"not readable as Parquet .*: check the file is complete"),
        ("t.csv", b"", r"t\.csv is empty: write a header row"),
        ("h.csv", b"a,b\n", r"h\.csv has no rows"),
    ],
)
def test_read_table_refuses_bad_files(
    tmp_path: Path, name: str, content: bytes | None, match: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_table(name, base=tmp_path)


def test_read_table_refuses_a_failing_query(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"the --data query failed \(.*\): fix the SQL"):
        read_table("SELECT * FROM 'missing.parquet'", base=tmp_path)
    with pytest.raises(DataError, match="the --data query has no rows"):
        read_table("WITH t AS (SELECT 1 AS a) SELECT * FROM t WHERE a > 1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("36h", timedelta(hours=36)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 1W2D ", timedelta(days=9)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "--label-delay") == expected


@pytest.mark.parametrize("text", ["", "1", "d", "1.5d", "12h1d", "-1d", "1 day"])
def test_parse_duration_refuses_bad_text_naming_the_field(text: str) -> None:
    with pytest.raises(DataError, match=r"--label-delay .* is not a duration: write .* e\.g\. 1d"):
        parse_duration(text, "--label-delay")


# -- bad input: one clear message naming the column and the fix -------------------------------


def test_missing_column_is_named_with_close_matches(frame: pd.DataFrame) -> None:
    with pytest.raises(
        DataError, match=r"--target 'churn' is not a column .*did you mean 'churned'\?"
    ):
        infer_schema(frame, ["customer_id"], "ts", "churn")
    with pytest.raises(
        DataError,
        match=r"--entity 'Customer_ID' .*did you mean 'customer_id'.*Its columns: customer_id, ts",
    ):
        infer_schema(frame, ["Customer_ID"], "ts", "churned")


def test_entity_that_is_also_the_target_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column 'churned' is both --entity and --target: .*pick"):
        infer_schema(frame, ["customer_id", "churned"], "ts", "churned")
    with pytest.raises(DataError, match=r"column 'ts' is both --timestamp and --target"):
        infer_schema(frame, ["customer_id"], "ts", "ts")


def test_timestamp_that_does_not_parse_names_count_and_first_value(frame: pd.DataFrame) -> None:
    text = frame["ts"].dt.strftime("%Y-%m-%d %H:%M").astype(object)
    text[[5, 9]] = ["yesterday", "2024-13-45"]
    frame["ts"] = text
    with pytest.raises(
        DataError,
        match=r"timestamp column 'ts' has 2 values that are not times \(the first: 'yesterday' "
        r"in row 6\): fix or drop those rows; write times as ISO 8601",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_missing_timestamps_are_counted(frame: pd.DataFrame) -> None:
    frame.loc[[3, 4, 8], "ts"] = pd.NaT
    with pytest.raises(
        DataError, match=r"timestamp column 'ts' is empty in 3 rows \(the first is row 4\)"
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_integer_timestamps_outside_epoch_ranges_are_refused(frame: pd.DataFrame) -> None:
    frame["ts"] = frame["ts"].dt.strftime("%Y%m%d").astype(int)
    with pytest.raises(DataError, match=r"timestamp column 'ts' holds numbers .*not times: write"):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_duplicate_keys_name_count_first_key_and_fix(frame: pd.DataFrame) -> None:
    repeat = frame[frame["customer_id"] == 101].iloc[:2]
    frame = pd.concat([frame, repeat], ignore_index=True)
    with pytest.raises(
        DataError,
        match=r"2 rows repeat an \(entity, timestamp\) key, e\.g\. customer_id=101, "
        r"ts=2024-01-13 01:00:00: keep one row per key: aggregate the repeats .* or add the "
        r"column that tells them apart to --entity",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_mixed_numbers_and_text_in_one_column_are_refused(frame: pd.DataFrame) -> None:
    values = frame["amount"].astype(object)
    values[10] = "unknown"
    frame["amount"] = values
    with pytest.raises(
        DataError,
        match=r"column 'amount' mixes numbers and text \(e\.g\. .* and 'unknown'\): make it one "
        r"kind: if 'unknown' means missing, leave those cells empty",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_mixed_types_from_a_csv_are_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame["visits"] = frame["visits"].where(frame.index != 7, "n.a.")
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(
        DataError, match=r"column 'visits' mixes numbers and text \(e\.g\. '\d+' and 'n\.a\.'\)"
    ):
        infer_schema(read_table(str(tmp_path / "t.csv")), ["customer_id"], "ts", "churned")


def test_target_with_missing_values_is_refused(frame: pd.DataFrame) -> None:
    frame["churned"] = frame["churned"].astype(float)
    frame.loc[[1, 2], "churned"] = np.nan
    with pytest.raises(
        DataError,
        match=r"target 'churned' is empty in 2 rows: .*drop them "
        r"\(e\.g\. WHERE churned IS NOT NULL\) or fill",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_text_target_with_two_values_asks_to_recode(frame: pd.DataFrame) -> None:
    frame["churned"] = frame["churned"].map({0: "no", 1: "yes"})
    with pytest.raises(
        DataError,
        match=r"target 'churned' holds text \('no', 'yes'\): recode it to 0/1 "
        r"\(e\.g\. CASE WHEN churned = 'yes' THEN 1",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_classification_target_must_be_0_1_with_both_classes(frame: pd.DataFrame) -> None:
    frame["churned"] = frame["churned"] + 1
    with pytest.raises(
        DataError,
        match=r"--task classification needs a 0/1 target, but 'churned' holds 1, 2: recode",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned", task="classification")
    frame["churned"] = 0
    with pytest.raises(
        DataError, match=r"target 'churned' is constant \(0\): .*both classes 0 and 1"
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned", task="classification")


def test_constant_regression_target_is_refused(frame: pd.DataFrame) -> None:
    frame["churned"] = 2.5
    with pytest.raises(DataError, match=r"target 'churned' is constant \(2\.5\): nothing to learn"):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_too_few_rows_says_how_many_and_how_many_needed(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"the table has 999 rows; driftloop needs at least 1,000"):
        infer_schema(frame.iloc[:999], ["customer_id"], "ts", "churned")


def test_too_short_a_period_says_how_long_and_how_long_needed(frame: pd.DataFrame) -> None:
    with pytest.raises(
        DataError,
        match=r"the table spans 88\.6 days by 'ts' \(2024-01-01 to 2024-03-29\); driftloop needs "
        r"at least 120 days",
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned", min_days=120)


def test_entity_with_missing_or_fractional_values_is_refused(frame: pd.DataFrame) -> None:
    frame["customer_id"] = frame["customer_id"].astype(float)
    frame.loc[0, "customer_id"] = 100.5
    with pytest.raises(
        DataError, match=r"entity column 'customer_id' holds fractional numbers such as 100\.5"
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")
    frame.loc[0, "customer_id"] = np.nan
    with pytest.raises(
        DataError, match=r"entity column 'customer_id' is empty in 1 rows .*drop or fill"
    ):
        infer_schema(frame, ["customer_id"], "ts", "churned")


def test_the_table_s_own_calendar_positions_are_recognised(frame: pd.DataFrame) -> None:
    ts = pd.to_datetime(frame["ts"])
    table = frame.assign(
        mnth=ts.dt.month,
        hr=ts.dt.hour,
        weekday=ts.dt.dayofweek,
        doy=ts.dt.dayofyear,
        month_sales=np.arange(len(frame)) % 97 + 0.5,  # a month's sales, not a position
        hour_count=np.arange(len(frame)) % 300,  # whole numbers beyond any hour
    )
    schema = infer_schema(table, ["customer_id"], "ts", "churned")
    assert schema.calendar == ("mnth", "hr", "weekday", "doy")
    assert {"mnth", "hr", "weekday", "doy", "month_sales", "hour_count"} <= set(schema.numeric)
    roles = {c.name: c.detail for c in schema.columns}
    assert "calendar position (month): not judged for drift" in roles["mnth"]
    assert "calendar" not in roles["hour_count"]


def test_init_leaves_the_table_s_calendar_positions_out_of_drift(frame: pd.DataFrame) -> None:
    from driftloop.app.fitting import table_settings

    table = frame.assign(mnth=pd.to_datetime(frame["ts"]).dt.month)
    schema = infer_schema(table, ["customer_id"], "ts", "churned")
    excluded = table_settings(schema)["monitoring"]["exclude_features"]
    assert excluded == ["hour", "day_of_week", "month", "day_of_year", "mnth"]
