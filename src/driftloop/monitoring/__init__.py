"""Monitoring: reference profiles now; drift and accuracy tracking build on them."""

from driftloop.monitoring.profile import ColumnProfile, ReferenceProfile, build_profile

__all__ = ["ColumnProfile", "ReferenceProfile", "build_profile"]
