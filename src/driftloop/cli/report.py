"""``driftloop report``: re-render the HTML report of a loop run from its saved timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import JsonOption, ProjectOption, console, emit_json, handle_errors
from driftloop.errors import DataError, UsageError

__all__ = ["TIMELINE_FILENAME", "report"]

TIMELINE_FILENAME = "timeline.json"


def report(
    project: ProjectOption = Path("."),
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file to write (default: <project>/report.html)."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """The loop run's report (HTML with plots, and a PNG summary) from .driftloop/timeline.json."""
    from driftloop.app.report import write_report
    from driftloop.loop.timeline import Timeline
    from driftloop.project import Project

    with handle_errors():
        proj = Project.load(project)
        source = proj.state_dir / TIMELINE_FILENAME
        if not source.is_file():
            raise DataError(
                f"no loop run to report on: {source} does not exist; `driftloop replay` "
                "(your project's history) or `driftloop demo` writes it (`driftloop loop run` "
                "acts on live traffic and keeps its decisions in `driftloop events`)"
            )
        try:
            timeline = Timeline.load(source)
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise DataError(
                f"{source} is not a readable timeline ({type(exc).__name__}: {exc}); "
                "run `driftloop replay` or `driftloop demo` again to rewrite it"
            ) from None
        target = (out if out is not None else proj.root / "report.html").expanduser().resolve()
        if target.suffix.lower() not in (".html", ".htm"):
            raise UsageError(f"--out {out} must name an .html file (the PNG goes beside it)")
        html = write_report(timeline, target.parent, target.name)
        png = html.with_suffix(".png")
        summary = {
            "html": html,
            "png": png,
            "days": len(timeline.days),
            "events": len(timeline.events),
            "versions": len(timeline.versions),
        }
        if json_out:
            emit_json(summary)
            return
        console.print(
            f"wrote {html} ({len(timeline.days)} days, {len(timeline.events)} events) "
            f"and the summary picture {png}"
        )
