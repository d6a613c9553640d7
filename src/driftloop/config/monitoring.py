"""The ``monitoring`` section of ``driftloop.yaml``: windows, minimum sizes, thresholds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DEFAULT_LATE_LABEL_DAYS", "DEFAULT_MAX_WINDOW_DAYS", "MonitoringConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_MAX_WINDOW_DAYS = 91
DEFAULT_LATE_LABEL_DAYS = 28  # beyond labels.delay_days: a label later than this is not counted


class MonitoringConfig(_Strict):
    """Drift and accuracy monitoring: windows, minimum sizes, thresholds (from the spec)."""

    window_days: int = Field(7, ge=1, le=366, description="event-time window of one assessment")
    max_window_days: int = Field(
        DEFAULT_MAX_WINDOW_DAYS,
        ge=1,
        le=3660,
        description="a window with fewer than min_rows rows (or too few labels) reaches back "
        "day by day up to this many days, so sparse series are judged",
    )
    min_rows: int = Field(500, ge=1, description="fewer rows in a window: 'not enough data'")
    psi_notice: float = Field(0.10, gt=0.0)
    psi_warning: float = Field(0.15, gt=0.0)
    psi_act: float = Field(0.25, gt=0.0)
    prediction_kl: float = Field(0.1, gt=0.0, description="KL(current || reference) alarm")
    accuracy_ratio: float = Field(
        1.2, gt=1.0, description="window WAPE / holdout WAPE above this is degradation"
    )
    min_label_coverage: float = Field(0.5, ge=0.0, le=1.0)
    min_labels: int = Field(200, ge=1, description="labels to judge accuracy (fewer: big drops)")
    late_label_days: int = Field(
        DEFAULT_LATE_LABEL_DAYS,
        ge=0,
        le=3650,
        description="a label arriving more than labels.delay_days plus this many days after "
        "its prediction's day is not counted: the monitoring store keeps its index of served "
        "predictions that long (the per-day aggregates stay for ever)",
    )
    day_min_labels: int = Field(
        10,
        ge=0,
        description="a window whose accuracy looks degraded is also judged by its median day "
        "(each day with this many labels, at least 5 such days): when the median day is "
        "within accuracy_ratio, one or two days (a holiday, a closure, a storm) carry the "
        "error, not a changed world (0: off)",
    )
    persistence_windows: int = Field(1, ge=1, description="windows in a row before an alert")
    exclude_features: tuple[str, ...] = Field(
        ("day_of_week", "day_of_month", "month", "day_of_year", "is_holiday"),
        description="not judged for drift: they move with the calendar by construction "
        "(a window shorter than a week, or one holding a holiday, is not a changed world)",
    )
    calendar_by_name: bool = Field(
        True,
        description="also leave out features recognised as calendar positions by name and "
        "range (hour, day of week, day of year, week, month, quarter, weekend, holiday)",
    )
    calibrate_thresholds: bool = Field(
        True,
        description="record at training how far windows of window_days from the reference's "
        "own days sit from it, and raise each feature's PSI levels to that variation",
    )
    calibration_sd: float = Field(
        4.0,
        ge=0.0,
        le=10.0,
        description="a feature's levels are at least mean + calibration_sd * sd of its "
        "reference windows' PSI (4, not NannyML's 3: window PSI is right-skewed and a "
        "window judges every feature; docs/drift.md has the measurement)",
    )
    calibration_min_windows: int = Field(
        4, ge=2, description="fewer full reference windows: no calibration, fixed levels"
    )

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringConfig:
        if not self.psi_notice <= self.psi_warning <= self.psi_act:
            raise ValueError(
                f"PSI levels must rise: psi_notice {self.psi_notice} <= psi_warning "
                f"{self.psi_warning} <= psi_act {self.psi_act}"
            )
        return self
