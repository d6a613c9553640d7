"""A pinned server (one Deployment per version on a cluster) serves its version alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from driftloop.config import ServingConfig, load_config
from driftloop.errors import ModelLoadError


def _service(project: Any, tmp_path: Path, pin: str | None) -> Any:
    from driftloop.registry import open_registry
    from driftloop.serving.service import ModelService, RoutingStore

    registry = open_registry(project)
    return ModelService(registry, RoutingStore(tmp_path / "state.db", "m"), pin_version=pin)


def test_pinned_version_serves_alone(trained_project: Any, tmp_path: Path) -> None:
    state = _service(trained_project, tmp_path, "1").reload()
    assert state.routes.champion == "1"
    assert state.routes.challenger is None
    assert set(state.models) == {"1"}


def test_unknown_pinned_version_is_refused(trained_project: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="version 99 failed to load"):
        _service(trained_project, tmp_path, "99").reload()


def test_pin_from_environment_reads_a_number_as_a_version(
    trained_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP__SERVING__PIN_VERSION", "3")
    assert load_config(trained_project.root).serving.pin_version == "3"


def test_empty_pin_is_refused() -> None:
    with pytest.raises(ValueError, match="pin_version must name a registered version"):
        ServingConfig(pin_version=" ")
