"""Importing Feast through import_feast: its import-time side effects are undone, also when
the server's first entity requests import it from several threads at once."""

from __future__ import annotations

import os
import subprocess
import sys

# A fresh interpreter (this one imported Feast long ago): 16 threads call import_feast at
# once, as the server's worker threads did on its first concurrent entity requests; one of
# them failed with KeyError('PROMETHEUS_MULTIPROCESS_DIR') and typeguard stayed patched.
RACE = """
import os, sys, threading
sys.setswitchinterval(1e-6)
from driftloop.features.feast_import import import_feast
import typeguard
original = typeguard.typechecked
barrier, errors = threading.Barrier(16), []
def first_use():
    barrier.wait()
    try:
        import_feast()
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_use) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(errors, typeguard.typechecked is original,
      [os.environ.get(n) for n in ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")])
"""


def test_concurrent_first_imports_fail_nothing_and_undo_the_side_effects() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    done = subprocess.run(
        [sys.executable, "-c", RACE],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[] True [None, None]"
