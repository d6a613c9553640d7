"""Alias reads are kept only while the SQLite registry is unchanged: any commit, from this
registry, another one in the process or another process, is seen at the next read."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from driftloop.registry import CHALLENGER, CHAMPION, aliases, open_registry
from driftloop.registry.alias_cache import AliasCache

REPO = Path(__file__).resolve().parents[2]


def _counting(answers: list[Any]) -> tuple[list[int], Any]:
    calls = [0]

    def read() -> Any:
        calls[0] += 1
        return answers[-1]

    return calls, read


def test_a_read_is_kept_until_a_commit_or_a_new_file(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x int)")
    cache = AliasCache(f"sqlite:///{db}")
    calls, read = _counting(["v1"])
    assert cache.get("champion", read) == "v1" and cache.get("champion", read) == "v1"
    assert calls[0] == 1
    with sqlite3.connect(db) as conn:
        conn.execute("insert into t values (1)")
    assert cache.get("champion", read) == "v1" and calls[0] == 2  # read again
    replaced = tmp_path / "new.db"
    with sqlite3.connect(replaced) as conn:
        conn.execute("create table t (x int)")
    replaced.replace(db)
    cache.get("champion", read)
    assert calls[0] == 3


def test_other_backends_are_read_every_time(tmp_path: Path) -> None:
    for uri in ("http://127.0.0.1:5000", "postgresql://u@h/db", f"sqlite:///{tmp_path}/x.db"):
        cache = AliasCache(uri)
        calls, read = _counting([None])
        cache.get("champion", read)
        cache.get("champion", read)
        assert calls[0] == 2, uri  # the last: no file yet, nothing kept


def test_a_move_by_another_registry_or_process_is_seen_at_the_next_read(
    canary_copy: Any,
) -> None:
    mine, other = open_registry(canary_copy), open_registry(canary_copy)
    assert mine.alias(CHAMPION).version == "1" and mine.alias(CHALLENGER).version == "2"
    aliases.promote(other, "2", actor="tests", reason="another registry object")
    assert mine.alias(CHAMPION).version == "2" and mine.alias(CHALLENGER) is None
    moved = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from driftloop.project import Project; "
            "from driftloop.registry import aliases, open_registry; "
            "r = open_registry(Project.load(sys.argv[1])); "
            "aliases.rollback(r, '1', actor='tests', reason='another process')",
            str(canary_copy.root),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert moved.returncode == 0, moved.stderr
    assert mine.alias(CHAMPION).version == "1"
