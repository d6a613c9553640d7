"""Moved to :mod:`driftloop.statistics.profile` (a layer below the registry, which stores
each version's profile). Kept only for ``loop/assessor.py``, which another branch is
editing; import from ``driftloop.statistics.profile``."""

from driftloop.statistics.profile import (
    PROFILE_FORMAT,
    ColumnProfile,
    DriftCalibration,
    ReferenceProfile,
    bin_counts,
    build_profile,
    profile_column,
)

__all__ = [
    "PROFILE_FORMAT",
    "ColumnProfile",
    "DriftCalibration",
    "ReferenceProfile",
    "bin_counts",
    "build_profile",
    "profile_column",
]
