"""The report of a loop run: one self-contained HTML page (and a PNG summary) from a Timeline.

The page has no JavaScript and references nothing outside itself: the CSS is inline and
every plot is an SVG drawn by matplotlib and written into the page. Every string that
comes from the timeline goes through jinja2's autoescaping (and matplotlib's own escaping
inside the SVG), so a message holding markup shows as text.

matplotlib is used without pyplot: each figure gets its own canvas (SVG or Agg) and all
settings are scoped with ``rc_context``, so rendering changes no global state.

Modules: ``series`` (the days as arrays), ``draw`` (one function per panel), ``figures``
(SVG and PNG), ``evidence`` (an event's evidence as sentences), ``page`` (the HTML).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from driftloop.app.report.figures import render_png
from driftloop.app.report.page import render_html
from driftloop.app.report.series import SMOOTHING_DAYS
from driftloop.loop.timeline import Timeline

__all__ = ["SMOOTHING_DAYS", "render_html", "render_png", "write_report"]


def _replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temporary file over ``path``."""
    # not mkstemp: its files are private (0600); this one gets the umask's mode like any
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(timeline: Timeline, folder: Path, html_name: str = "report.html") -> Path:
    """Write ``report.html`` and ``report.png`` (same stem) into ``folder``; the html path."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / html_name
    text = render_html(timeline)
    _replace_atomically(html_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    _replace_atomically(html_path.with_suffix(".png"), lambda tmp: render_png(timeline, tmp))
    return html_path
