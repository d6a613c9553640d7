from __future__ import annotations

import driftloop.errors as errors


def test_every_error_descends_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.DriftloopError)


def test_exit_codes_follow_the_cli_contract() -> None:
    assert errors.ConfigError("x").exit_code == 2
    assert errors.DataError("x").exit_code == 2
    assert errors.FeatureStoreError("x").exit_code == 2
    assert errors.SkewDetected("x").exit_code == 1
