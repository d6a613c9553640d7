from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from driftloop.config import (
    CONFIG_FILENAME,
    ProjectConfig,
    RetailScenarioConfig,
    dump_config,
    load_config,
)
from driftloop.errors import ConfigError


def write(tmp_path: Path, data: object) -> Path:
    (tmp_path / CONFIG_FILENAME).write_text(yaml.safe_dump(data), encoding="utf-8")
    return tmp_path


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = ProjectConfig(project="shop")
    (tmp_path / CONFIG_FILENAME).write_text(dump_config(cfg), encoding="utf-8")
    assert load_config(tmp_path) == cfg


def test_defaults_follow_the_spec() -> None:
    cfg = ProjectConfig(project="shop")
    assert cfg.features.lags_days == (1, 7, 14, 28)
    assert cfg.labels.delay_days == 1
    assert cfg.features.offline_store.type == "duckdb"
    assert cfg.features.online_store.type == "sqlite"


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"project": "shop", "features": {"lags_dayz": [1]}})
    with pytest.raises(ConfigError, match=r"(?s)driftloop.yaml.*features\.lags_dayz: unknown key"):
        load_config(tmp_path)


def test_wrong_type_names_field_and_value(tmp_path: Path) -> None:
    write(tmp_path, {"project": "shop", "labels": {"delay_days": "soon"}})
    with pytest.raises(ConfigError, match=r"labels\.delay_days: .*integer.*'soon'"):
        load_config(tmp_path)


def test_unknown_backend_type_lists_the_valid_ones(tmp_path: Path) -> None:
    write(tmp_path, {"project": "shop", "features": {"online_store": {"type": "cassandra"}}})
    with pytest.raises(ConfigError, match=r"features\.online_store.*'sqlite'.*'redis'"):
        load_config(tmp_path)


def test_redis_online_store_takes_feasts_connection_string(tmp_path: Path) -> None:
    secret = "s3cr3t-pw"
    online = {"type": "redis", "connection_string": f"10.0.0.5:6380,db=2,password={secret}"}
    write(tmp_path, {"project": "shop", "features": {"online_store": online}})
    store = load_config(tmp_path).features.online_store
    assert store.type == "redis" and store.connection_string.endswith(secret)
    assert store.redacted() == "10.0.0.5:6380,db=2,password=***"
    assert secret not in repr(store)


def test_a_bad_redis_address_is_refused_without_echoing_it(tmp_path: Path) -> None:
    online = {"type": "redis", "connection_string": "password=s3cr3t-pw"}
    write(tmp_path, {"project": "shop", "features": {"online_store": online}})
    with pytest.raises(
        ConfigError, match=r"online_store\.redis\.connection_string.*host:port"
    ) as e:
        load_config(tmp_path)
    assert "s3cr3t" not in str(e.value)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no driftloop.yaml in .*driftloop init"):
        load_config(tmp_path)


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILENAME).write_text("project: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILENAME).write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path)


def test_lag_shorter_than_label_delay_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"project": "shop", "labels": {"delay_days": 3}})
    with pytest.raises(ConfigError, match=r"lags_days \[1\] are shorter than labels.delay_days 3"):
        load_config(tmp_path)


def test_shift_outside_the_data_is_refused() -> None:
    with pytest.raises(ValueError, match=r"shift\.date 2030-01-01 must fall after"):
        RetailScenarioConfig.model_validate({"shift": {"date": date(2030, 1, 1)}})


def test_duplicate_lags_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"project": "shop", "features": {"lags_days": [7, 7]}})
    with pytest.raises(ConfigError, match="distinct whole days"):
        load_config(tmp_path)


def test_environment_overrides_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"project": "shop"})
    monkeypatch.setenv("DRIFTLOOP__FEATURES__SKEW__SAMPLE_SIZE", "17")
    assert load_config(tmp_path).features.skew.sample_size == 17


def test_an_unknown_key_gets_the_closest_documented_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "project": "shop",
            "features": {"lags_dayz": [1]},
            "monitoring": {"windw_days": 7},
            "rollout": {"outcomes": {"business_metrc": "x"}},
            "zzz": 1,
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    text = str(caught.value)
    assert "features.lags_dayz: unknown key (did you mean 'lags_days'?)" in text
    assert "monitoring.windw_days: unknown key (did you mean 'window_days'?)" in text
    assert "rollout.outcomes.business_metrc: unknown key (did you mean 'business_metric'?)" in text
    assert "zzz: unknown key; remove it" in text


def test_a_bad_environment_value_names_the_variable_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"project": "shop"})
    monkeypatch.setenv("DRIFTLOOP__SERVING__PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    text = str(caught.value)
    assert text.startswith("invalid configuration from the environment (1 problem(s))")
    assert (
        "serving.port (set by the environment variable DRIFTLOOP__SERVING__PORT, not "
        "driftloop.yaml)" in text
    )
    monkeypatch.setenv("DRIFTLOOP__SERVING__PORT", "[unclosed")
    with pytest.raises(ConfigError, match="environment variable DRIFTLOOP__SERVING__PORT is not"):
        load_config(tmp_path)


def test_config_is_immutable() -> None:
    cfg = ProjectConfig(project="shop")
    with pytest.raises(ValueError, match="frozen"):
        cfg.project = "other"  # type: ignore[misc]


def test_model_params_take_lists_for_an_mlp(tmp_path: Path) -> None:
    model = {
        "type": "sklearn",
        "estimator": "sklearn.neural_network.MLPRegressor",
        "params": {"hidden_layer_sizes": [256, 256]},
        "scale_features": True,
    }
    write(tmp_path, {"project": "shop", "training": {"model": model}})
    assert load_config(tmp_path).training.model.params["hidden_layer_sizes"] == [256, 256]


def test_optimize_tolerances_default_to_one_percent_and_are_bounded(tmp_path: Path) -> None:
    cfg = ProjectConfig(project="shop")
    assert cfg.optimize.max_relative_metric_loss == 0.01
    assert cfg.optimize.max_disagreement == 0.02
    write(tmp_path, {"project": "shop", "optimize": {"prune_fraction": 1.5}})
    with pytest.raises(ConfigError, match=r"optimize\.prune_fraction"):
        load_config(tmp_path)
