"""driftloop: keep a model healthy in production without a human in the loop."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftloop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
