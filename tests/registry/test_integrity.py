"""What the registry refuses to load: altered files, foreign roots, pickles, unsealed versions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from driftloop.errors import ModelLoadError
from driftloop.registry.integrity import (
    CHECKSUM_TAG,
    LoadPolicy,
    check_inside_root,
    digest_dir,
    model_format,
    recorded_digests,
    verify_files,
)

STRICT = LoadPolicy()


def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.lgb").write_text("tree\n")
    (folder / "MLmodel").write_text(
        "flavors:\n  lightgbm:\n    data: model.lgb\n    model_class: lightgbm.basic.Booster\n"
    )
    return folder


def test_untouched_files_pass_and_every_kind_of_change_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = model_dir(tmp_path)
    sealed = digest_dir(folder, "model")
    assert sorted(sealed) == ["model/MLmodel", "model/model.lgb"]
    verify_files("4", folder, "model", sealed, STRICT)
    (folder / "model.lgb").write_text("tree, tampered\n")
    changed = r"version 4: artifact model/model.lgb has checksum"
    with (
        caplog.at_level(logging.ERROR, "driftloop.registry"),
        pytest.raises(ModelLoadError, match=changed),
    ):
        verify_files("4", folder, "model", sealed, STRICT)
    assert "model/model.lgb" in caplog.text and "refusing to load it" in caplog.text
    (folder / "model.lgb").unlink()
    with pytest.raises(ModelLoadError, match=r"artifact model/model.lgb is missing"):
        verify_files("4", folder, "model", sealed, STRICT)
    (folder / "model.lgb").write_text("tree\n")
    (folder / "extra.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ModelLoadError, match=r"artifact model/extra.pkl was added after"):
        verify_files("4", folder, "model", sealed, STRICT)


def test_a_version_without_checksums_is_refused_unless_the_config_allows_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"version 2 has no artifact checksums.*"
        r"registry.allow_unverified: true",
    ):
        recorded_digests("2", {}, STRICT)
    lenient = LoadPolicy(allow_unverified=True)
    assert recorded_digests("2", {}, lenient) == {}
    with caplog.at_level(logging.WARNING, "driftloop.registry"):
        verify_files("2", model_dir(tmp_path), "model", {}, lenient)
    assert "no recorded checksum; loading it unchecked" in caplog.text


def test_an_older_version_keeps_its_onnx_checksum() -> None:
    digests = recorded_digests("1", {"driftloop.onnx_sha256": "ab" * 32}, STRICT)
    assert digests == {"onnx/model.onnx": "ab" * 32}


def test_a_mangled_checksum_tag_is_refused() -> None:
    with pytest.raises(ModelLoadError, match=f"tag {CHECKSUM_TAG} is not a JSON object"):
        recorded_digests("3", {CHECKSUM_TAG: json.dumps(["x"])}, STRICT)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///srv/other/mlartifacts/1/artifacts",
        "file:///srv/shop/.driftloop/mlartifacts/../../elsewhere/artifacts",
        "file:///srv/shop/.driftloop/mlartifacts-evil/1/artifacts",
        "s3://bucket/models/1",
    ],
)
def test_artifacts_outside_the_configured_root_are_refused(uri: str) -> None:
    root = "file:///srv/shop/.driftloop/mlartifacts"
    check_inside_root("5", f"{root}/models/m-1/artifacts", root)
    with pytest.raises(
        ModelLoadError,
        match=r"version 5: its artifacts live at .*outside the "
        r"configured artifact root.*registry.artifact_location",
    ):
        check_inside_root("5", uri, root)


@pytest.mark.parametrize("serialization", ["pickle", "cloudpickle"])
def test_pickle_formats_are_refused_unless_allowed(tmp_path: Path, serialization: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"
        f"  sklearn:\n    pickled_model: model.pkl\n    serialization_format: {serialization}\n"
    )
    with pytest.raises(
        ModelLoadError,
        match=r"version 6 is stored in a pickle-based format.*"
        r"registry.allow_pickle: true",
    ):
        model_format("6", folder, STRICT)
    assert model_format("6", folder, LoadPolicy(allow_pickle=True)).serializer == "pickle"


def test_text_and_skops_formats_need_no_permission(tmp_path: Path) -> None:
    assert model_format("1", model_dir(tmp_path), STRICT).serializer == "lightgbm-text"
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n"
    )
    found = model_format("1", folder, STRICT)
    assert (found.serializer, found.payload) == ("skops", "model.skops")
