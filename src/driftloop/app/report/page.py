"""The report page: one self-contained HTML document (jinja2, autoescaped)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from driftloop import __version__
from driftloop.app.report.draw import ratio_reference
from driftloop.app.report.evidence import evidence_sentences
from driftloop.app.report.figures import plots
from driftloop.app.report.series import SMOOTHING_DAYS, events_of, series_of, version_order
from driftloop.loop.timeline import Timeline

__all__ = ["render_html"]


def _text(value: Any) -> str:
    """A value for people: short floats, no JSON quoting, lists and dicts one level deep."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _compact(value: Any, limit: int = 160) -> str:
    """At most ``limit`` characters, cut at a word boundary."""
    text = _text(value)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;") + " …"


def _when(at: datetime) -> str:
    """Minutes are enough; an aware time is shown in UTC and says so."""
    if at.tzinfo is not None:
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M")


def _met(met: bool | None) -> tuple[str, str, str]:
    """(mark, css class, words) of a key number's verdict."""
    if met is None:
        return "—", "na", "no target"
    return ("✓", "met", "met") if met else ("✗", "missed", "not met")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="driftloop {{ version }}">
<title>{{ t.title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #222; margin: 0 auto; max-width: 1150px; padding: 1rem 1.5rem 3rem;
  line-height: 1.45; }
h1 { margin-bottom: .2rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; margin-top: 0; }
.scenario { white-space: pre-line; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .3rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f6f6f6; }
td.num { font-variant-numeric: tabular-nums; }
.met { color: #1a7f37; font-weight: bold; }
.missed { color: #cf222e; font-weight: bold; }
.na { color: #888; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.wide { overflow-x: auto; }
figure { margin: 1rem 0; }
figcaption { color: #555; font-size: .9rem; }
svg.plot { width: 100%; height: auto; }
svg.plot * { stroke-linejoin: round; stroke-linecap: butt; }
.nodata { color: #777; font-style: italic; }
ul.ev { margin: 0; padding-left: 1rem; font-size: .82rem; color: #333; }
ul.ev li { margin: 0 0 .15rem; }
tr.kind-rolled_back td, tr.kind-rollback td, tr.kind-aborted td { background: #fff4f4; }
tr.kind-promoted td { background: #f3fbf4; }
footer { margin-top: 3rem; color: #888; font-size: .8rem; }
</style>
</head>
<body>
<h1>{{ t.title }}</h1>
<p class="sub">project {{ t.project }}
{%- if first %} · {{ first }} to {{ last }} ({{ n_days }} days){% endif %}
{%- if t.shift_date %} · shift on {{ t.shift_date }}{% endif %}
 · {{ versions|length }} version{{ "" if versions|length == 1 else "s" }}
 · {{ events|length }} event{{ "" if events|length == 1 else "s" }}</p>
<p class="scenario">{{ t.scenario }}</p>

<h2>Key numbers</h2>
{% if key_numbers %}
<table>
<thead><tr><th>what</th><th>measured</th><th>target</th><th>met</th></tr></thead>
<tbody>
{% for k, mark, cls, words in key_numbers %}
<tr><td>{{ k.name }}</td><td class="num">{{ k.value }}</td>
<td class="num">{{ k.target if k.target is not none else "—" }}</td>
<td class="{{ cls }}" title="{{ words }}">{{ mark }}<span class="sr"> {{ words }}</span></td></tr>
{% endfor %}
</tbody>
</table>
{% else %}<p class="nodata">No key numbers were recorded.</p>{% endif %}

<h2>Accuracy over time</h2>
{% if plots.accuracy %}
<figure>{{ plots.accuracy|safe }}
<figcaption>The thick dark line is what the loop served (the traffic-weighted mix of
versions), as a {{ smoothing }}-day trailing mean of the daily {{ metric }}; the faint dark
line is the same day by day, unsmoothed. The thin coloured lines are each version on the
days it served; the dashed line is the first champion scored offline on the same rows as
if it had never been replaced (the control), and the dotted blue line a model retrained on
a fixed schedule (a replay's second baseline). The green line is the reference
{{ metric }} (before the shift in the demo; the first version's holdout in a replay), the
band reaches 10 % above it; the red dotted line marks the shift. Gaps are days without a
value.</figcaption>
</figure>
{% else %}<p class="nodata">No data: the timeline has no days.</p>{% endif %}

<h2>Drift against thresholds</h2>
{% if plots.drift %}
<figure>{{ plots.drift|safe }}
<figcaption>The controller's check at the end of each day over its trailing window:
the largest PSI of any feature with the warning and act levels, the KL divergence of
the predictions from the reference with its alarm level, and the accuracy ratio: the
window's {{ metric }} over one fixed reference, {{ ratio_reference }}, so a new champion
with a worse holdout does not read as a recovery (the dotted line, where shown, is the
ratio the loop acted on: each champion against its own holdout). Grey bands are days the
monitor did not judge (too few rows for drift, too few labels for accuracy); nothing is
drawn there.</figcaption>
</figure>
{% else %}<p class="nodata">No data: the timeline has no days.</p>{% endif %}

<h2>Traffic</h2>
{% if plots.weights %}
<figure>{{ plots.weights|safe }}
<figcaption>Each version's share of the day's served predictions (stacked, 0 to 100 %).
</figcaption>
</figure>
{% else %}<p class="nodata">No data: the timeline has no days.</p>{% endif %}

<h2>Events</h2>
{% if plots.events %}
<figure>{{ plots.events|safe }}
<figcaption>Every decision and happening of the run by kind; the table below holds the
evidence each was taken on.</figcaption>
</figure>
<div class="wide"><table class="events">
<thead><tr><th>time</th><th>kind</th><th>version</th><th>message</th><th>evidence</th></tr>
</thead>
<tbody>
{% for e, when, evidence in events %}
<tr class="kind-{{ e.kind }}"><td>{{ when }}</td><td>{{ e.kind }}</td>
<td>{{ e.version if e.version is not none else "" }}</td><td>{{ e.message }}</td>
<td>{% if evidence %}<ul class="ev">
{%- for sentence in evidence %}<li>{{ sentence }}</li>{% endfor -%}
</ul>{% endif %}</td></tr>
{% endfor %}
</tbody>
</table></div>
{% else %}<p class="nodata">No data: the timeline has no events.</p>{% endif %}

<h2>Versions</h2>
{% if versions %}
<div class="wide"><table class="versions">
<thead><tr><th>version</th>{% for c in version_columns %}<th>{{ c }}</th>{% endfor %}</tr>
</thead>
<tbody>
{% for name, facts in versions %}
<tr><td>{{ name }}</td>{% for c in version_columns %}<td>{{ facts.get(c, "") }}</td>
{%- endfor %}</tr>
{% endfor %}
</tbody>
</table></div>
{% else %}<p class="nodata">No versions were recorded.</p>{% endif %}

<footer>Rendered by driftloop {{ version }} from the run's timeline; self-contained:
no scripts, nothing loaded from elsewhere.</footer>
</body>
</html>
"""


def render_html(timeline: Timeline) -> str:
    """The whole report as one self-contained HTML page."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    days = sorted(timeline.days, key=lambda d: d.day)
    version_names = version_order(days, timeline.versions)
    versions = [
        (v, {str(k): _compact(x) for k, x in timeline.versions.get(v, {}).items()})
        for v in version_names
    ]
    columns = list(dict.fromkeys(k for _, facts in versions for k in facts))
    return env.from_string(_PAGE).render(
        t=timeline,
        version=__version__,
        first=days[0].day if days else None,
        last=days[-1].day if days else None,
        n_days=len(days),
        smoothing=SMOOTHING_DAYS,
        metric=timeline.accuracy_metric,
        key_numbers=[(k, *_met(k.met)) for k in timeline.key_numbers],
        plots=plots(timeline),
        events=[(e, _when(e.at), evidence_sentences(e.evidence)) for e in events_of(timeline)],
        ratio_reference=ratio_reference(timeline, series_of(timeline)),
        versions=versions,
        version_columns=columns,
    )
