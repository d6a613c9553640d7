"""A project with a champion and a challenger, and helpers to serve it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TOKEN = "test-admin-token"


@pytest.fixture
def served(canary_project: Any, tmp_path: Path) -> Iterator[Any]:
    """A private copy of the canary project's folder with its registry, served for real."""
    from driftloop.serving.server import BackgroundServer, build_context

    ctx = build_context(canary_project, admin_token=TOKEN)
    server = BackgroundServer(ctx).start()
    try:
        yield server
    finally:
        server.stop()


class FailingModel:
    """A LoadedModel that raises on every prediction (a broken challenger)."""

    format = "broken"

    def __init__(self, feature_names: tuple[str, ...]) -> None:
        self.feature_names = feature_names

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("segfault-free but broken")

    def predict(self, frame: Any) -> np.ndarray:
        raise RuntimeError("segfault-free but broken")


class RegistryWithBrokenVersion:
    """The real registry, except that one version loads as FailingModel (or not at all)."""

    def __init__(self, inner: Any, version: str, unloadable: bool = False) -> None:
        self._inner = inner
        self._version = version
        self._unloadable = unloadable
        self.challenger_as: str | None = None  # pretend the challenger alias names this

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def alias(self, alias: str) -> Any:
        found = self._inner.alias(alias)
        if alias == "challenger" and self.challenger_as and found is not None:
            return dataclasses.replace(found, version=self.challenger_as)
        return found

    def load_model(self, version: str) -> Any:
        model = self._inner.load_model(version)
        if version != self._version:
            return model
        if self._unloadable:
            raise OSError(f"artifact of version {version} is unreadable")
        return FailingModel(model.feature_names)
