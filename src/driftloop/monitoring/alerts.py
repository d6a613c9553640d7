"""Prometheus alerting rules for driftloop's monitoring gauges, generated from thresholds.

``alert_rules`` is a pure function of ``AlertThresholds`` and the scrape job name; it returns
the rules document as plain dicts and lists, and ``render_rules`` turns it into YAML for
Prometheus (``rule_files``) and ``promtool check rules``.

Design choices:

- No data never raises a drift alarm: every drift rule is joined
  (``and on (model, version)``) with ``driftloop_window_rows >= min_window_rows``. A version
  whose window is too small, or which exports no window size at all, is silent.
- Because of that guard, traffic stopping would silence drift alerts without a word; so
  ``DriftloopNoPredictions`` fires when a model answered no predictions over
  ``no_data_window``, or exports window sizes but has no predictions counter at all (e.g.
  after a restart: the counter's labelled children appear only with the first prediction).
  It is judged per model: a retired version keeps a flat counter and must not alert forever.
- A stale or missing scrape target is covered by ``DriftloopTargetDown`` (``up == 0``) and
  ``DriftloopTargetAbsent`` (no ``up`` series for the job: not discovered or never scraped).
- Feature drift is alerted on PSI only; the JS and Wasserstein gauges are for dashboards.
  The warning fires for every PSI above ``psi_warning``, including the act band, so at PSI
  0.3 both the warning and the act alert fire and the warning never flaps when a feature
  moves across ``psi_act``. Silence the duplicate with an Alertmanager inhibit rule, e.g.
  ``source_matchers: [alertname="DriftloopFeatureDriftAct"]``,
  ``target_matchers: [alertname="DriftloopFeatureDriftWarning"]``,
  ``equal: [model, version, feature]``.
- Accuracy degradation has ``kind: accuracy``: a worse WAPE is a symptom; whether it is
  concept drift (no matching data drift) is decided elsewhere. The ratio's denominator keeps
  only positive references, so a zero reference gives no alert instead of ``+Inf``.
  Current and reference accuracy are matched on all their labels (same exporter).
- Only ``up`` is filtered by ``job``; the driftloop metric names are unique to driftloop.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, Literal

import yaml

from driftloop.config import MonitoringConfig
from driftloop.monitoring.drift import DEFAULT_MIN_ROWS, PSI_ACT, PSI_WARNING

__all__ = ["ALERT_NAMES", "AlertThresholds", "alert_rules", "render_rules"]

ALERT_NAMES = (
    "DriftloopFeatureDriftWarning",
    "DriftloopFeatureDriftAct",
    "DriftloopPredictionDrift",
    "DriftloopAccuracyDegraded",
    "DriftloopNoPredictions",
    "DriftloopTargetDown",
    "DriftloopTargetAbsent",
)
_GROUP_NAME = "driftloop"

_Severity = Literal["warning", "critical"]
_Kind = Literal["data_drift", "prediction_drift", "accuracy", "no_data", "target_down"]

_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1_000, 1)
_JOB = re.compile(r"^[^\"\\\n]+$")
_VALUE = '{{ $value | printf "%.3f" }}'
_MVF = "model {{ $labels.model }} version {{ $labels.version }}"


def _duration_ms(name: str, value: object) -> int:
    """A Prometheus duration ("90s", "1h30m", "0") in ms; ValueError naming ``name`` if bad."""
    match = _DURATION.match(value) if isinstance(value, str) and value else None
    if match is None:
        if value == "0":
            return 0
        raise ValueError(f"{name} must be a Prometheus duration like '10m', got {value!r}")
    return sum(int(g) * unit for g, unit in zip(match.groups(), _UNIT_MS, strict=True) if g)


def _num(value: float) -> str:
    """A PromQL number literal that round-trips ``value`` (shortest repr)."""
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class AlertThresholds:
    """Alert levels and ``for`` durations; defaults follow the monitoring spec."""

    psi_warning: float = PSI_WARNING
    psi_act: float = PSI_ACT
    prediction_psi_act: float = PSI_ACT
    prediction_kl: float = 0.1
    accuracy_ratio: float = 1.2
    min_label_coverage: float = 0.5
    min_window_rows: int = DEFAULT_MIN_ROWS
    drift_for: str = "15m"
    accuracy_for: str = "30m"
    no_data_window: str = "15m"
    no_data_for: str = "5m"
    target_down_for: str = "5m"
    accuracy_metric: str = "wape"  # the gauge's metric label: log_loss for classification

    def __post_init__(self) -> None:
        if self.accuracy_metric not in ("wape", "log_loss"):
            raise ValueError(
                f"accuracy_metric must be wape or log_loss, got {self.accuracy_metric!r}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "accuracy_metric":
                continue
            if isinstance(f.default, str):
                ms = _duration_ms(f.name, value)
                if f.name == "no_data_window" and ms == 0:
                    raise ValueError(f"no_data_window must be a positive duration, got {value!r}")
            elif isinstance(f.default, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{f.name} must be an integer >= 1, got {value!r}")
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{f.name} must be a finite number >= 0, got {value!r}")
        for name in ("psi_warning", "prediction_psi_act", "prediction_kl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)!r}")
        if self.psi_warning >= self.psi_act:
            raise ValueError(
                f"psi_warning must be below psi_act, got {self.psi_warning!r} >= {self.psi_act!r}"
            )
        if self.accuracy_ratio <= 1:
            raise ValueError(
                f"accuracy_ratio must be above 1 (current / reference), got {self.accuracy_ratio!r}"
            )
        if self.min_label_coverage > 1:
            raise ValueError(
                f"min_label_coverage must be in [0, 1], got {self.min_label_coverage!r}"
            )

    @classmethod
    def from_monitoring(cls, config: MonitoringConfig, **overrides: Any) -> AlertThresholds:
        """Thresholds from a project's ``monitoring`` section; keyword overrides win (a
        classification project passes ``accuracy_metric="log_loss"``)."""
        values: dict[str, Any] = {
            "psi_warning": config.psi_warning,
            "psi_act": config.psi_act,
            "prediction_psi_act": config.psi_act,
            "prediction_kl": config.prediction_kl,
            "accuracy_ratio": config.accuracy_ratio,
            "min_label_coverage": config.min_label_coverage,
            "min_window_rows": config.min_rows,
        }
        values.update(overrides)
        return cls(**values)


def _rule(
    name: str,
    expr: str,
    for_: str,
    severity: _Severity,
    kind: _Kind,
    summary: str,
    description: str,
) -> dict[str, Any]:
    """One alerting rule as the rules file spells it."""
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "kind": kind},
        "annotations": {"summary": summary, "description": description},
    }


def alert_rules(thresholds: AlertThresholds, job: str = "driftloop") -> dict[str, Any]:
    """The Prometheus rules document (one group) for ``thresholds`` and the scrape ``job``."""
    if not _JOB.match(job):
        raise ValueError(f"job must be a non-empty label value without quotes, got {job!r}")
    rules = [
        *_drift_rules(thresholds),
        *_accuracy_rules(thresholds),
        *_availability_rules(thresholds, job),
    ]
    return {"groups": [{"name": _GROUP_NAME, "rules": rules}]}


def _drift_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    """Feature drift at the warning and act levels, and prediction drift."""
    rows = _num(t.min_window_rows)
    enough_rows = f"and on (model, version)\n  (driftloop_window_rows >= {rows})"
    window_note = f"window of at least {rows} rows"
    feature = "feature {{ $labels.feature }} of " + _MVF

    def feature_psi(level: float) -> str:
        return f'(driftloop_feature_drift_score{{method="psi"}} > {_num(level)})\n{enough_rows}\n'

    return [
        _rule(
            "DriftloopFeatureDriftWarning",
            feature_psi(t.psi_warning),
            t.drift_for,
            "warning",
            "data_drift",
            "Feature drift (PSI) on " + feature,
            f"PSI of {feature} is {_VALUE}, above the warning level {_num(t.psi_warning)} "
            f"({window_note}).",
        ),
        _rule(
            "DriftloopFeatureDriftAct",
            feature_psi(t.psi_act),
            t.drift_for,
            "critical",
            "data_drift",
            "Feature drift (PSI) to act on: " + feature,
            f"PSI of {feature} is {_VALUE}, above the act level {_num(t.psi_act)} ({window_note}).",
        ),
        _rule(
            "DriftloopPredictionDrift",
            "(\n"
            f'  driftloop_prediction_drift_score{{method="psi"}} > {_num(t.prediction_psi_act)}\n'
            "  or\n"
            f'  driftloop_prediction_drift_score{{method="kl"}} > {_num(t.prediction_kl)}\n'
            f")\n{enough_rows}\n",
            t.drift_for,
            "critical",
            "prediction_drift",
            "Prediction drift on " + _MVF,
            "Prediction drift ({{ $labels.method }}) of " + _MVF + f" is {_VALUE}, above the "
            f"alarm level (PSI > {_num(t.prediction_psi_act)}, KL > {_num(t.prediction_kl)}; "
            f"{window_note}).",
        ),
    ]


def _accuracy_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    """Accuracy against the training holdout, judged once enough labels arrived."""
    return [
        _rule(
            "DriftloopAccuracyDegraded",
            "(\n"
            f'  driftloop_accuracy{{metric="{t.accuracy_metric}"}}\n'
            f'  / (driftloop_accuracy_reference{{metric="{t.accuracy_metric}"}} > 0)\n'
            f") > {_num(t.accuracy_ratio)}\n"
            "and on (model, version)\n"
            f"  (driftloop_label_coverage >= {_num(t.min_label_coverage)})\n",
            t.accuracy_for,
            "critical",
            "accuracy",
            "Accuracy degraded on " + _MVF,
            "{{ $labels.metric }} of " + _MVF + f" is {_VALUE} times its training-holdout "
            f"reference, above {_num(t.accuracy_ratio)} "
            f"(label coverage at least {_num(t.min_label_coverage)}).",
        ),
    ]


def _availability_rules(t: AlertThresholds, job: str) -> list[dict[str, Any]]:
    """No predictions served, and the scrape target down or absent."""
    return [
        _rule(
            "DriftloopNoPredictions",
            f"sum by (model) (rate(driftloop_predictions_total[{t.no_data_window}])) == 0\n"
            "or\n"
            "(\n"
            "  0 * count by (model) (driftloop_window_rows)\n"
            "  unless on (model) count by (model) (driftloop_predictions_total)\n"
            ")\n",
            t.no_data_for,
            "warning",
            "no_data",
            "No predictions served by model {{ $labels.model }}",
            "Model {{ $labels.model }} (all versions) answered no predictions in the last "
            f"{t.no_data_window}; its drift alerts cannot fire without traffic.",
        ),
        _rule(
            "DriftloopTargetDown",
            f'up{{job="{job}"}} == 0\n',
            t.target_down_for,
            "critical",
            "target_down",
            f"Scrape target {{{{ $labels.instance }}}} of job {job} is down",
            f"Prometheus cannot scrape {{{{ $labels.instance }}}} (job {job}) for "
            f"{t.target_down_for}; driftloop metrics from it are stale.",
        ),
        _rule(
            "DriftloopTargetAbsent",
            f'absent(up{{job="{job}"}})\n',
            t.target_down_for,
            "critical",
            "target_down",
            f"No scrape target for job {job}",
            f"No up series for job {job} for {t.target_down_for}: the target is not "
            "discovered or was never scraped, so every driftloop alert is blind.",
        ),
    ]


class _BlockDumper(yaml.SafeDumper):
    """A safe dumper writing multi-line strings (PromQL) as literal blocks."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Literal block style for multi-line strings, the default style otherwise."""
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str_presenter)


def render_rules(thresholds: AlertThresholds, job: str = "driftloop") -> str:
    """The rules document as YAML text with a comment header naming job and thresholds."""
    doc = alert_rules(thresholds, job)
    header = (
        "# Prometheus alerting rules generated by driftloop.monitoring.alerts; do not edit.\n"
        f"# job={job} {thresholds}\n"
    )
    body = yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=1_000_000)
    return header + body
