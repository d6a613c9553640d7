"""``driftloop features``: apply, materialize, dataset, skew."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from driftloop.cli.common import (
    JsonOption,
    ProjectOption,
    console,
    emit_json,
    handle_errors,
    parse_day,
    working,
)

__all__ = ["app"]

if TYPE_CHECKING:
    from driftloop.features.store import FeatureStore

app = typer.Typer(help="Feature store: apply definitions, materialize, build datasets, check skew.")


def _store(project_dir: Path) -> FeatureStore:
    from driftloop.features.store import FeatureStore
    from driftloop.project import Project

    return FeatureStore(Project.load(project_dir))


@app.command()
def apply(project: ProjectOption = Path("."), json_out: JsonOption = False) -> None:
    """Compute features from the raw events and register the definitions with Feast."""
    with handle_errors():
        store = _store(project)
        with working("computing features and applying definitions", json_out):
            result = store.apply()
        if json_out:
            emit_json(result)
            return
        console.print(
            f"applied views {', '.join(result.views)}: {result.rows:,} rows for "
            f"{result.entities} entities, {result.first_day.date()} to {result.last_day.date()}"
        )


@app.command()
def materialize(
    project: ProjectOption = Path("."),
    until: Annotated[
        str | None, typer.Option(help="Load rows valid at this day (default: the last day).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Load the feature rows valid at a day into the online store."""
    from driftloop.errors import DataError
    from driftloop.features.store import utc_midnight

    with handle_errors():
        store = _store(project)
        scenario = store.project.config.scenario
        day = parse_day(until, "--until") or scenario.end_date
        if not scenario.start_date <= day <= scenario.end_date + timedelta(days=1):
            raise DataError(
                f"--until {day} is outside the data ({scenario.start_date} to "
                f"{scenario.end_date}): choose a day inside it"
            )
        moment = utc_midnight(day)
        with working(f"materializing rows valid at {day}", json_out):
            store.materialize(moment)
        if json_out:
            emit_json({"materialized_at": day, "online_store": store.project.online_store_label})
            return
        where = store.project.online_store_label
        console.print(f"online store holds the rows valid at {day}: {where}")


@app.command()
def dataset(
    start: Annotated[str, typer.Option(help="First label day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last label day, YYYY-MM-DD (inclusive).")],
    project: ProjectOption = Path("."),
    store_id: Annotated[int | None, typer.Option("--store", help="Only this store.")] = None,
    product_id: Annotated[int | None, typer.Option("--product", help="Only this product.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the rows to this Parquet file.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Build a point-in-time correct training set (labels joined with features)."""
    from driftloop.errors import UsageError
    from driftloop.features.training_set import build_training_set
    from driftloop.project import atomic_write_parquet

    with handle_errors():
        first, last = parse_day(start, "--start"), parse_day(end, "--end")
        if first is None or last is None:
            raise UsageError("--start and --end are both required (YYYY-MM-DD)")
        if (store_id is None) != (product_id is None):
            raise UsageError("give --store and --product together to select one entity")
        entities = None if store_id is None else [(store_id, product_id or 0)]
        store = _store(project)
        with console.status("joining features point-in-time"):
            frame = build_training_set(store, first, last, entities)
        if out is not None:
            atomic_write_parquet(frame, out.expanduser().resolve())
        features = list(store.layout.all_features)
        summary = {
            "rows": len(frame),
            "start": first,
            "end": last,
            "features": len(features),
            "complete_rows": int(frame[features].notna().all(axis=1).sum()),
            "label_mean": float(frame["units"].mean()),
            "out": out,
        }
        if json_out:
            emit_json(summary)
            return
        console.print(
            f"{summary['rows']:,} rows x {len(features)} features from {first} to {last}; "
            f"{summary['complete_rows']:,} rows have every feature"
            + (f"; written to {out}" if out else "")
        )


@app.command()
def skew(
    project: ProjectOption = Path("."),
    sample: Annotated[
        int | None, typer.Option(min=1, help="Entities to sample (default from config).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the entity sample.")] = 0,
    source_name: Annotated[
        str,
        typer.Option(
            "--source",
            help="log: rows the server served; online: a sample of online lookups; "
            "auto: the log when it has rows.",
        ),
    ] = "auto",
    json_out: JsonOption = False,
) -> None:
    """Compare served feature values with their offline recomputation; exit 1 on skew."""
    from driftloop.errors import SkewDetected, UsageError
    from driftloop.features.skew import (
        OnlineSampleSource,
        PredictionLogSource,
        ServedFeatureSource,
        check_skew,
        has_logged_predictions,
    )

    with handle_errors():
        if source_name not in ("auto", "log", "online"):
            raise UsageError(f"--source {source_name!r}: choose auto, log or online")
        store = _store(project)
        cfg = store.project.config.features.skew
        size = sample or cfg.sample_size
        use_log = source_name == "log" or (source_name == "auto" and has_logged_predictions(store))
        source: ServedFeatureSource = (
            PredictionLogSource(store, size) if use_log else OnlineSampleSource(store, size, seed)
        )
        with console.status("recomputing served features offline"):
            report = check_skew(store, source, cfg)
        if json_out:
            emit_json(report)
        else:
            table = Table(title=f"training-serving skew ({report.source}, {report.rows} rows)")
            for column in ("feature", "compared", "mismatches", "rate", "max |diff|"):
                table.add_column(column, justify="left" if column == "feature" else "right")
            for f in report.features:
                style = "red" if f.mismatch_rate > cfg.max_mismatch_rate else None
                table.add_row(
                    f.feature,
                    str(f.compared),
                    str(f.mismatches),
                    f"{f.mismatch_rate:.2%}",
                    f"{f.max_abs_diff:.3g}",
                    style=style,
                )
            console.print(table)
            if report.unmatched_rows:
                console.print(f"{report.unmatched_rows} served rows have no offline twin")
            verdict = "[green]no skew[/]" if report.passed else "[red]skew detected[/]"
            console.print(
                f"{verdict}: worst mismatch rate {report.worst_rate:.2%} "
                f"(tolerance {cfg.max_mismatch_rate:.2%})"
            )
        if not report.passed:
            raise SkewDetected(
                f"worst mismatch rate {report.worst_rate:.2%} exceeds "
                f"features.skew.max_mismatch_rate {cfg.max_mismatch_rate:.2%}"
            )
