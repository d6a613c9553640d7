"""Alerting rules: pure checks of the document, then ``promtool check rules`` and unit tests.

The promtool unit tests evaluate every minute (``interval: 1m``) with ``THRESHOLDS``, whose
``for`` durations the ``eval_time``s below are derived from. promtool compares labels and
annotations exactly; expected annotations are the rule's own templates expanded in Python,
so a template Prometheus renders differently fails the test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.config import MonitoringConfig
from driftloop.monitoring.alerts import ALERT_NAMES, AlertThresholds, alert_rules, render_rules

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Prometheus) is not installed; CI installs it"
)

# Spec levels (the defaults); durations stated here because the eval_times depend on them.
THRESHOLDS = AlertThresholds(
    drift_for="10m",
    accuracy_for="30m",
    no_data_window="15m",
    no_data_for="5m",
    target_down_for="5m",
)
SERVER = {"job": "driftloop", "instance": "srv:8000"}
WARN, ACT = "DriftloopFeatureDriftWarning", "DriftloopFeatureDriftAct"


def rules_by_name(thresholds: AlertThresholds = THRESHOLDS, job: str = "driftloop") -> Any:
    """The generated rules keyed by alert name."""
    return {r["alert"]: r for r in alert_rules(thresholds, job)["groups"][0]["rules"]}


RULES = rules_by_name()


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    """One promtool input series from the model server (job and instance labels added)."""
    all_labels = {**SERVER, **labels}
    selector = ",".join(f'{k}="{v}"' for k, v in all_labels.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


def expand(text: str, labels: dict[str, str], value: float) -> str:
    """The annotation template ``text`` expanded as Prometheus does for one alert."""
    out = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
    out = out.replace('{{ $value | printf "%.3f" }}', f"{value:.3f}")
    assert "{{" not in out, f"unexpected template construct in {text!r}"
    return out


def alert(name: str, value: float, **labels: str) -> dict[str, Any]:
    """An expected firing alert: its series labels plus the rule's labels and annotations."""
    rule = RULES[name]
    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": {k: expand(v, labels, value) for k, v in rule["annotations"].items()},
    }


def check(name: str, at: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    """An ``alert_rule_test`` entry: exactly ``alerts`` of ``name`` fire at ``at``."""
    return {"eval_time": at, "alertname": name, "exp_alerts": list(alerts)}


def run_promtool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; its stdout and stderr are in the assertion message of the caller."""
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )


def promtool_test(
    tmp_path: Path,
    input_series: list[dict[str, str]],
    checks: list[dict[str, Any]],
    thresholds: AlertThresholds = THRESHOLDS,
) -> None:
    """Write rules and a promtool unit-test file into ``tmp_path`` and assert they pass."""
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(render_rules(thresholds), encoding="utf-8")
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": checks}],
    }
    tests_file = tmp_path / "rules_test.yml"
    tests_file.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    proc = run_promtool(tmp_path, "test", "rules", str(tests_file))
    assert proc.returncode == 0, f"promtool test rules failed:\n{proc.stdout}\n{proc.stderr}"


# Pure: the document


def test_default_thresholds_are_the_spec_levels() -> None:
    t = AlertThresholds()
    assert (t.psi_warning, t.psi_act, t.prediction_psi_act, t.prediction_kl) == (
        0.15,
        0.25,
        0.25,
        0.1,
    )
    assert (t.accuracy_ratio, t.min_label_coverage, t.min_window_rows) == (1.2, 0.5, 500)
    assert t.no_data_window == "15m"


def test_rules_are_the_seven_named_alerts_in_one_group() -> None:
    doc = alert_rules(AlertThresholds())
    assert [g["name"] for g in doc["groups"]] == ["driftloop"]
    assert tuple(r["alert"] for r in doc["groups"][0]["rules"]) == ALERT_NAMES


def test_every_rule_has_severity_kind_and_annotations_naming_model() -> None:
    kinds = {"data_drift", "prediction_drift", "accuracy", "no_data", "target_down"}
    for name, rule in RULES.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["labels"]["kind"] in kinds, name
        assert set(rule["annotations"]) == {"summary", "description"}, name
    per_version = [WARN, ACT, "DriftloopPredictionDrift", "DriftloopAccuracyDegraded"]
    for name in per_version:
        text = " ".join(RULES[name]["annotations"].values())
        assert "$labels.model" in text and "$labels.version" in text, name
        assert "$value" in text, name
    for name in (WARN, ACT):
        assert "$labels.feature" in RULES[name]["annotations"]["summary"], name
    assert "$labels.model" in RULES["DriftloopNoPredictions"]["annotations"]["summary"]


def test_custom_thresholds_appear_in_rule_expressions_and_durations() -> None:
    t = AlertThresholds(
        psi_warning=0.2,
        psi_act=0.3,
        prediction_psi_act=0.4,
        prediction_kl=0.05,
        accuracy_ratio=1.3,
        min_label_coverage=0.6,
        min_window_rows=1000,
        drift_for="20m",
        accuracy_for="1h",
        no_data_window="30m",
        no_data_for="2m",
        target_down_for="3m",
    )
    rules = rules_by_name(t)
    warning = rules["DriftloopFeatureDriftWarning"]["expr"]
    assert '{method="psi"} > 0.2)' in warning and "driftloop_window_rows >= 1000" in warning
    assert '{method="psi"} > 0.3)' in rules["DriftloopFeatureDriftAct"]["expr"]
    prediction = rules["DriftloopPredictionDrift"]["expr"]
    assert '{method="psi"} > 0.4' in prediction and '{method="kl"} > 0.05' in prediction
    assert "driftloop_window_rows >= 1000" in prediction
    accuracy = rules["DriftloopAccuracyDegraded"]["expr"]
    assert ") > 1.3" in accuracy and "driftloop_label_coverage >= 0.6" in accuracy
    assert "[30m]" in rules["DriftloopNoPredictions"]["expr"]
    durations = {name: rule["for"] for name, rule in rules.items()}
    assert durations == {
        "DriftloopFeatureDriftWarning": "20m",
        "DriftloopFeatureDriftAct": "20m",
        "DriftloopPredictionDrift": "20m",
        "DriftloopAccuracyDegraded": "1h",
        "DriftloopNoPredictions": "2m",
        "DriftloopTargetDown": "3m",
        "DriftloopTargetAbsent": "3m",
    }


def test_job_argument_selects_the_up_series() -> None:
    rules = rules_by_name(job="shop-serving")
    assert rules["DriftloopTargetDown"]["expr"].strip() == 'up{job="shop-serving"} == 0'
    assert rules["DriftloopTargetAbsent"]["expr"].strip() == 'absent(up{job="shop-serving"})'
    assert "driftloop" not in rules["DriftloopTargetAbsent"]["annotations"]["summary"]


def test_job_with_a_quote_raises_value_error() -> None:
    with pytest.raises(ValueError, match="job"):
        alert_rules(AlertThresholds(), job='a"b')


def test_render_rules_has_comment_header_and_loads_back_to_the_document() -> None:
    text = render_rules(THRESHOLDS, "shop")
    assert text.startswith("# ")
    assert "job=shop" in text.splitlines()[1]
    assert yaml.safe_load(text) == alert_rules(THRESHOLDS, "shop")


def test_alert_rules_document_survives_safe_dump() -> None:
    doc = alert_rules(AlertThresholds())
    assert yaml.safe_load(yaml.safe_dump(doc)) == doc


def test_from_monitoring_takes_levels_from_config_and_overrides() -> None:
    config = MonitoringConfig(psi_warning=0.12, psi_act=0.3, min_rows=800, prediction_kl=0.2)
    t = AlertThresholds.from_monitoring(config, drift_for="5m")
    assert (t.psi_warning, t.psi_act, t.prediction_psi_act) == (0.12, 0.3, 0.3)
    assert (t.prediction_kl, t.min_window_rows, t.drift_for) == (0.2, 800, "5m")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"psi_warning": 0.3}, "psi_warning must be below psi_act"),
        ({"psi_warning": 0.0}, "psi_warning must be above 0"),
        ({"psi_act": float("nan")}, "psi_act"),
        ({"prediction_kl": 0.0}, "prediction_kl"),
        ({"prediction_psi_act": -1.0}, "prediction_psi_act"),
        ({"accuracy_ratio": 1.0}, "accuracy_ratio"),
        ({"min_label_coverage": 1.5}, "min_label_coverage"),
        ({"min_label_coverage": -0.1}, "min_label_coverage"),
        ({"min_window_rows": 0}, "min_window_rows"),
        ({"min_window_rows": True}, "min_window_rows"),
        ({"drift_for": "10 minutes"}, "drift_for"),
        ({"accuracy_for": ""}, "accuracy_for"),
        ({"no_data_window": "0s"}, "no_data_window"),
        ({"target_down_for": 5}, "target_down_for"),
    ],
)
def test_invalid_thresholds_raise_value_error_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        AlertThresholds(**kwargs)


def test_compound_and_zero_durations_are_accepted() -> None:
    t = AlertThresholds(drift_for="0s", accuracy_for="1h30m", target_down_for="0")
    assert rules_by_name(t)["DriftloopAccuracyDegraded"]["for"] == "1h30m"


# promtool


@needs_promtool
@pytest.mark.parametrize("job", ["driftloop", "shop-serving"])
def test_promtool_check_rules_passes_on_rendered_file(tmp_path: Path, job: str) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(render_rules(AlertThresholds(), job), encoding="utf-8")
    proc = run_promtool(tmp_path, "check", "rules", str(rules_file))
    assert proc.returncode == 0, f"promtool check rules failed:\n{proc.stdout}\n{proc.stderr}"
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in proc.stdout


FEATURE = {"model": "demand", "version": "3", "feature": "price", "method": "psi"}
WINDOW_3 = series("driftloop_window_rows", "1000x30", model="demand", version="3")


@needs_promtool
def test_feature_psi_0_2_fires_warning_only_after_drift_for(tmp_path: Path) -> None:
    promtool_test(
        tmp_path,
        [series("driftloop_feature_drift_score", "0.2x30", **FEATURE), WINDOW_3],
        [
            check(WARN, "9m"),  # pending since 0m, drift_for is 10m
            check(WARN, "15m", alert(WARN, 0.2, **SERVER, **FEATURE)),
            check(ACT, "15m"),
        ],
    )


@needs_promtool
def test_feature_psi_0_3_fires_warning_and_act(tmp_path: Path) -> None:
    promtool_test(
        tmp_path,
        [series("driftloop_feature_drift_score", "0.3x30", **FEATURE), WINDOW_3],
        [
            check(WARN, "15m", alert(WARN, 0.3, **SERVER, **FEATURE)),
            check(ACT, "9m"),
            check(ACT, "15m", alert(ACT, 0.3, **SERVER, **FEATURE)),
        ],
    )


@needs_promtool
def test_feature_drift_fires_only_where_the_version_window_has_min_rows(tmp_path: Path) -> None:
    v4 = {**FEATURE, "version": "4"}
    unsized = {**FEATURE, "model": "stock"}
    promtool_test(
        tmp_path,
        [
            series("driftloop_feature_drift_score", "0.3x30", **FEATURE),
            series("driftloop_window_rows", "499x30", model="demand", version="3"),
            series("driftloop_feature_drift_score", "0.3x30", **v4),
            series("driftloop_window_rows", "500x30", model="demand", version="4"),
            series("driftloop_feature_drift_score", "0.3x30", **unsized),  # no window rows
        ],
        [
            check(WARN, "20m", alert(WARN, 0.3, **SERVER, **v4)),
            check(ACT, "20m", alert(ACT, 0.3, **SERVER, **v4)),
        ],
    )


@needs_promtool
def test_feature_js_and_wasserstein_scores_fire_nothing(tmp_path: Path) -> None:
    promtool_test(
        tmp_path,
        [
            series("driftloop_feature_drift_score", "0.9x30", **{**FEATURE, "method": "js"}),
            series("driftloop_feature_drift_score", "5x30", **{**FEATURE, "method": "wasserstein"}),
            WINDOW_3,
        ],
        [check(WARN, "20m"), check(ACT, "20m")],
    )


@needs_promtool
def test_prediction_kl_0_2_fires_prediction_drift_where_window_is_large(tmp_path: Path) -> None:
    kl = {"model": "demand", "version": "3", "method": "kl"}
    promtool_test(
        tmp_path,
        [
            series("driftloop_prediction_drift_score", "0.2x30", **kl),
            series("driftloop_prediction_drift_score", "0.05x30", **{**kl, "method": "psi"}),
            WINDOW_3,
            series("driftloop_prediction_drift_score", "0.2x30", **{**kl, "version": "2"}),
            series("driftloop_window_rows", "100x30", model="demand", version="2"),
        ],
        [
            check("DriftloopPredictionDrift", "9m"),
            check(
                "DriftloopPredictionDrift",
                "15m",
                alert("DriftloopPredictionDrift", 0.2, **SERVER, **kl),
            ),
        ],
    )


@needs_promtool
def test_prediction_psi_above_act_fires_prediction_drift(tmp_path: Path) -> None:
    psi = {"model": "demand", "version": "3", "method": "psi"}
    promtool_test(
        tmp_path,
        [
            series("driftloop_prediction_drift_score", "0.3x30", **psi),
            series("driftloop_prediction_drift_score", "0.01x30", **{**psi, "method": "kl"}),
            WINDOW_3,
        ],
        [
            check(
                "DriftloopPredictionDrift",
                "15m",
                alert("DriftloopPredictionDrift", 0.3, **SERVER, **psi),
            )
        ],
    )


ACCURACY = "DriftloopAccuracyDegraded"
WAPE = {"model": "demand", "version": "3", "metric": "wape"}


def accuracy_series(current: str, reference: str, coverage: str) -> list[dict[str, str]]:
    """WAPE now and on the holdout, label coverage, and a far-off MAPE that must not count."""
    mape = {**WAPE, "metric": "mape"}
    cov = {"model": "demand", "version": "3"}
    return [
        series("driftloop_accuracy", f"{current}x60", **WAPE),
        series("driftloop_accuracy_reference", f"{reference}x60", **WAPE),
        series("driftloop_accuracy", "0.5x60", **mape),
        series("driftloop_accuracy_reference", "0.1x60", **mape),
        series("driftloop_label_coverage", f"{coverage}x60", **cov),
    ]


@needs_promtool
def test_accuracy_ratio_1_5_with_coverage_0_8_fires_degraded(tmp_path: Path) -> None:
    promtool_test(
        tmp_path,
        accuracy_series("0.15", "0.1", "0.8"),
        [
            check(ACCURACY, "29m"),  # pending since 0m, accuracy_for is 30m
            check(ACCURACY, "35m", alert(ACCURACY, 0.15 / 0.1, **SERVER, **WAPE)),
        ],
    )


@needs_promtool
def test_accuracy_ratio_1_5_with_coverage_0_1_fires_nothing(tmp_path: Path) -> None:
    promtool_test(tmp_path, accuracy_series("0.15", "0.1", "0.1"), [check(ACCURACY, "45m")])


@needs_promtool
def test_accuracy_with_zero_reference_fires_nothing(tmp_path: Path) -> None:
    promtool_test(tmp_path, accuracy_series("0.15", "0", "0.8"), [check(ACCURACY, "45m")])


NO_PREDICTIONS = "DriftloopNoPredictions"


@needs_promtool
def test_predictions_counter_that_stops_increasing_fires_no_predictions_after_window(
    tmp_path: Path,
) -> None:
    # demand v3 answers 100 predictions a minute until 30m, then none; its retired v2 has been
    # flat all along and model "stock" keeps serving. The 15m rate of demand reaches 0 at
    # 44m-45m (range ends inclusive up to Prometheus 2.x, left-open from 3.0), so with
    # no_data_for 5m it is pending at 48m in either case and fires from 50m.
    promtool_test(
        tmp_path,
        [
            series(
                "driftloop_predictions_total",
                "0+100x30 3000x60",
                model="demand",
                version="3",
                route="champion",
            ),
            series(
                "driftloop_predictions_total",
                "500x90",
                model="demand",
                version="2",
                route="champion",
            ),
            series(
                "driftloop_predictions_total",
                "0+50x90",
                model="stock",
                version="1",
                route="champion",
            ),
        ],
        [
            check(NO_PREDICTIONS, "30m"),
            check(NO_PREDICTIONS, "48m"),
            check(NO_PREDICTIONS, "50m", alert(NO_PREDICTIONS, 0.0, model="demand")),
            check(NO_PREDICTIONS, "80m", alert(NO_PREDICTIONS, 0.0, model="demand")),
        ],
    )


@needs_promtool
def test_model_with_window_but_no_predictions_counter_fires_no_predictions(
    tmp_path: Path,
) -> None:
    promtool_test(
        tmp_path,
        [WINDOW_3],
        [
            check(NO_PREDICTIONS, "4m"),  # pending since 0m, no_data_for is 5m
            check(NO_PREDICTIONS, "10m", alert(NO_PREDICTIONS, 0.0, model="demand")),
            check(WARN, "10m"),
        ],
    )


@needs_promtool
def test_up_0_for_target_down_for_fires_target_down(tmp_path: Path) -> None:
    promtool_test(
        tmp_path,
        [
            {"series": 'up{job="driftloop",instance="srv:8000"}', "values": "1x5 0x20"},
            {"series": 'up{job="driftloop",instance="srv:8001"}', "values": "1x25"},  # healthy
        ],
        [
            check("DriftloopTargetDown", "5m"),
            check("DriftloopTargetDown", "10m"),  # down since 6m, target_down_for is 5m
            check("DriftloopTargetDown", "15m", alert("DriftloopTargetDown", 0.0, **SERVER)),
            check("DriftloopTargetAbsent", "15m"),
        ],
    )


@needs_promtool
def test_no_up_series_for_the_job_fires_target_absent(tmp_path: Path) -> None:
    promtool_test(
        tmp_path,
        [{"series": 'up{job="other",instance="x:1"}', "values": "1x20"}],
        [
            check("DriftloopTargetAbsent", "4m"),  # pending since 0m, target_down_for is 5m
            check(
                "DriftloopTargetAbsent", "10m", alert("DriftloopTargetAbsent", 1.0, job="driftloop")
            ),
            check("DriftloopTargetDown", "10m"),
        ],
    )


@needs_promtool
def test_a_classifiers_rule_follows_log_loss_not_wape(tmp_path: Path) -> None:
    from dataclasses import replace

    classifier = replace(THRESHOLDS, accuracy_metric="log_loss")
    loss = {**WAPE, "metric": "log_loss"}
    cov = {"model": "demand", "version": "3"}
    promtool_test(
        tmp_path,
        [
            series("driftloop_accuracy", "0.15x60", **loss),
            series("driftloop_accuracy_reference", "0.1x60", **loss),
            series("driftloop_accuracy", "0.9x60", **WAPE),  # WAPE alone moved: not judged
            series("driftloop_accuracy_reference", "0.1x60", **WAPE),
            series("driftloop_label_coverage", "0.8x60", **cov),
        ],
        [check(ACCURACY, "35m", alert(ACCURACY, 0.15 / 0.1, **SERVER, **loss))],
        classifier,
    )
    with pytest.raises(ValueError, match="accuracy_metric"):
        AlertThresholds(accuracy_metric="auc")
