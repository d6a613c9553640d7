"""Monitoring: reference profiles, drift and accuracy per window, the log's reads, alerts."""

from driftloop.statistics.profile import ColumnProfile, ReferenceProfile, build_profile

__all__ = ["ColumnProfile", "ReferenceProfile", "build_profile"]
