"""An event's evidence as short sentences with units, for the report's event table.

Evidence is whatever the loop recorded (JSON): rollout gate checks (``{value, threshold,
passed, detail}``), the monitor's signals, a gate's metrics. Known keys get a name and a
unit; anything else is written as ``name: value``. Nothing is cut mid-word.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["evidence_sentences", "number"]


def number(value: Any, digits: int = 4) -> str:
    """A number for people: up to ``digits`` significant digits, no exponent for the usual."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    if not math.isfinite(value):
        return "not known"
    return f"{value:.{digits}g}"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "not known"
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds:.0f} s"


def _percent(share: Any) -> str:
    return f"{share * 100:.1f} %" if isinstance(share, int | float) else str(share)


def _times(ratio: Any) -> str:
    return f"{number(ratio, 3)}x" if isinstance(ratio, int | float) else str(ratio)


# key -> (what it is, how its value reads)
_KNOWN: dict[str, tuple[str, Callable[[Any], str]]] = {
    "canary_requests": ("canary requests this step", number),
    "elapsed_s": ("time in this step", _duration),
    "error_rate": ("canary error rate", _percent),
    "p99_ratio": ("canary p99 latency / stable", _times),
    "kl": ("KL of the canary's predictions from the stable's", number),
    "error_rate_test": ("sequential error-rate test (mSPRT) statistic", number),
    "latency_test": ("sequential latency test (mSPRT) statistic", number),
    "business_ratio": ("business outcome canary / stable", _times),
    "wape_ratio": ("labelled WAPE canary / stable", _times),
    "log_loss_ratio": ("labelled log loss canary / stable", _times),
    "weight": ("canary traffic", lambda w: f"{number(w)} %"),
    "rollout": ("rollout", lambda r: f"#{r}"),
    "stable": ("stable version", lambda v: f"v{v}"),
    "champion": ("champion", lambda v: f"v{v}"),
    "rows": ("rows", number),
    "max_feature_psi": ("largest feature PSI", number),
    "prediction_kl": ("prediction KL", number),
    "accuracy_ratio": ("window error / holdout", _times),
    "accuracy_day_ratio": ("median day error / holdout", _times),
    "label_coverage": ("rows with a label", _percent),
    "wape": ("window WAPE", number),
    "baseline_wape": ("WAPE before the episode", number),
    "since": ("since", str),
    "recent_from": ("recent rows from", str),
    "drifted_features": ("features at the act level", lambda f: ", ".join(f) or "none"),
    "triggers": ("triggers", lambda t: ", ".join(t) or "none"),
    "blocker": ("waiting on", str),
    "summary": ("gate", str),
    "window": ("window", lambda w: " to ".join(str(d) for d in w)),
}
_SKIP = frozenset({"at", "enough_data", "prediction_drift", "accuracy_window"})


def _check(name: str, check: Mapping[str, Any]) -> str:
    """One rollout gate check as a sentence."""
    what, fmt = _KNOWN.get(name, (name.replace("_", " "), number))
    value, threshold = check.get("value"), check.get("threshold")
    passed = check.get("passed")
    verdict = "holds" if passed else ("not judged" if passed is None else "fails")
    shown = fmt(value) if value is not None else "no value yet"
    limit = f" (threshold {fmt(threshold)})" if threshold is not None else ""
    said = str(check.get("detail") or "").strip()
    detail = f": {said}" if said and said != what else ""
    return f"{what} {shown}{limit}, {verdict}{detail}."


def _metrics(name: str, metrics: Mapping[str, Any]) -> str:
    who = "the champion's" if name == "champion_metrics" else "the candidate's"
    parts = [f"{k} {number(v)}" for k, v in metrics.items() if k != "rows"]
    rows = f" on {number(metrics['rows'])} holdout rows" if "rows" in metrics else ""
    return f"{who} holdout metrics{rows}: {', '.join(parts)}."


def evidence_sentences(evidence: Mapping[str, Any]) -> list[str]:
    """Each evidence item as one sentence with its unit."""
    out: list[str] = []
    for key, value in evidence.items():
        name = str(key)
        if name in _SKIP:
            continue
        if isinstance(value, Mapping) and "passed" in value and "value" in value:
            out.append(_check(name, value))
        elif name in ("metrics", "champion_metrics") and isinstance(value, Mapping):
            out.append(_metrics(name, value))
        elif name in _KNOWN:
            what, fmt = _KNOWN[name]
            out.append(f"{what}: {fmt(value) if value is not None else 'not known'}.")
        elif isinstance(value, Mapping):
            inner = ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
            out.append(f"{name.replace('_', ' ')}: {inner}.")
        else:
            out.append(f"{name.replace('_', ' ')}: {_plain(value)}.")
    return out


def _plain(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    return number(value)
