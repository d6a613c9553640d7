"""Every name a module lists in ``__all__`` exists, and every public module has ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import driftloop

MODULES = sorted(m.name for m in pkgutil.walk_packages(driftloop.__path__, "driftloop."))


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []
