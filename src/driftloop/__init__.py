"""driftloop: keep a model healthy in production without a human in the loop."""

import os
from importlib.metadata import PackageNotFoundError, version

# LightGBM's OpenMP threads wait passively (sleep) between parallel regions instead of
# spinning. The cores are shared here: a replay trains the fixed-schedule control in a
# thread beside the loop's own retrains and the server, tests run on every core. Spinning
# threads then hold the cores the others wait for: one retail fit took 146 s instead of
# 3.4 s on a loaded 2-core machine (the same trees either way; only the waiting changes).
# Set before LightGBM loads OpenMP; a user's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("driftloop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
