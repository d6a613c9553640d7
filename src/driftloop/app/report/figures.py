"""The report's figures: inline SVG panels for the page and one PNG summary."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.app.report.draw import (
    RC,
    date_axis,
    draw_accuracy,
    draw_events,
    draw_kl,
    draw_psi,
    draw_ratio,
    draw_weights,
    mpl_text,
    no_data,
)
from driftloop.app.report.series import events_of, series_of
from driftloop.loop.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plots", "render_png"]

_SVG_METADATA: dict[str, Any] = {"Creator": None, "Date": None, "Format": None, "Type": None}


def new_figure(
    width: float,
    height: float,
    rows: int = 1,
    left: float = 0.7,
    top: float = 0.35,
    ratios: Sequence[float] | None = None,
) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` stacked axes sharing x, with margins given in inches.

    Fixed margins instead of constrained layout: the labels here are short and known, and
    constrained layout would double the drawing time.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    gap = 0.5  # room for each panel's title and the x tick labels of a shared axis
    bottom, right = 0.45, 0.2
    panel = (height - top - bottom - gap * (rows - 1)) / rows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / panel,
    )
    if rows == 1:
        return fig, [fig.add_subplot()]
    axes = fig.subplots(rows, 1, sharex=True, height_ratios=ratios)
    return fig, list(axes)


_SVG_ATTR_DROP = re.compile(r'\s(?:xmlns(?::\w+)?|version)="[^"]*"')


def svg(fig: Figure, name: str, label: str) -> str:
    """The figure as an inline ``<svg>`` element: no prolog, namespaces or global style."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"driftloop-{name}"}):
        fig.savefig(buf, format="svg", metadata=_SVG_METADATA)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    head_end = text.index(">")
    head = _SVG_ATTR_DROP.sub("", text[:head_end])
    head += f' role="img" aria-label="{label}" class="plot"'
    text = head + text[head_end:]
    text = re.sub(r'<style type="text/css">.*?</style>', "", text, count=1, flags=re.S)
    # ids unique across the page: every SVG defines its own clip paths and markers
    text = text.replace(' id="', f' id="{name}-').replace("url(#", f"url(#{name}-")
    text = text.replace('href="#', f'href="#{name}-')
    return text.strip()


def plots(timeline: Timeline) -> dict[str, str | None]:
    """The four plots as SVG text (None: nothing to plot)."""
    import matplotlib

    s = series_of(timeline)
    events = events_of(timeline)
    plots: dict[str, str | None] = {
        "accuracy": None,
        "drift": None,
        "weights": None,
        "events": None,
    }
    with matplotlib.rc_context(RC):
        if len(s.x):
            fig, (ax,) = new_figure(11, 4.6)
            draw_accuracy(ax, timeline, s)
            date_axis(fig)
            plots["accuracy"] = svg(fig, "accuracy", "accuracy over time")

            fig, axes = new_figure(11, 6.4, rows=3)
            draw_psi(axes[0], timeline, s)
            draw_kl(axes[1], timeline, s)
            draw_ratio(axes[2], timeline, s)
            date_axis(fig)
            plots["drift"] = svg(fig, "drift", "drift scores against thresholds")

            fig, (ax,) = new_figure(11, 2.8)
            draw_weights(ax, timeline, s)
            date_axis(fig)
            plots["weights"] = svg(fig, "weights", "traffic weights per version")
        if events:
            kinds = {e.kind for e in events}
            longest = max(len(k) for k in kinds)  # the kinds label the y axis
            fig, (ax,) = new_figure(
                11, 1.3 + 0.3 * len(kinds), left=min(0.3 + 0.075 * longest, 3.5)
            )
            draw_events(ax, timeline, events, s)
            date_axis(fig)
            plots["events"] = svg(fig, "events", "events on a time axis")
    return plots


def summary_figure(timeline: Timeline) -> Figure:
    import matplotlib

    s = series_of(timeline)
    with matplotlib.rc_context(RC):
        if not len(s.x):
            fig, (ax,) = new_figure(14, 10, top=0.6)
            ax.set_axis_off()
            no_data(ax, "the timeline has no days")
            fig.suptitle(mpl_text(timeline.title), x=0.01, ha="left", fontsize=13)
            return fig
        fig, axes = new_figure(14, 10, rows=4, top=0.6, ratios=[3.0, 1.3, 1.3, 1.3])
        draw_accuracy(axes[0], timeline, s)
        draw_weights(axes[1], timeline, s)
        draw_psi(axes[2], timeline, s)
        draw_ratio(axes[3], timeline, s)
        date_axis(fig)
        fig.suptitle(mpl_text(timeline.title), x=0.01, ha="left", fontsize=13)
    return fig


def render_png(timeline: Timeline, path: Path) -> None:
    """One summary figure (accuracy, traffic, feature drift, accuracy ratio), 1400x1000 px."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = summary_figure(timeline)
    FigureCanvasAgg(fig)
    with matplotlib.rc_context(RC):
        fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
