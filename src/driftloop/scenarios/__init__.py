"""Synthetic scenarios that exercise the whole loop (deterministic by seed)."""

from driftloop.scenarios.retail import RetailData, generate_retail, holiday_calendar

__all__ = ["RetailData", "generate_retail", "holiday_calendar"]
