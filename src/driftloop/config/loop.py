"""The ``loop:`` section: when the controller retrains, how often, and on which data."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LoopConfig", "Trigger"]

Trigger = Literal["feature_drift", "prediction_drift", "accuracy"]
# Issue 18's budget: at most a quarter of a weekly schedule's deployments, one per 28
# days; a challenger every 56 days uses at most half of it, the rest is left to drift.
DEFAULT_CHALLENGER_EVERY_DAYS = 56.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoopConfig(_Strict):
    """The controller's policy (``driftloop loop run``); thresholds come from ``monitoring``."""

    enabled: bool = Field(
        True, description="false: the controller assesses and records, but never retrains"
    )
    check_every_hours: float = Field(
        24.0, gt=0.0, le=24.0 * 31, description="how often the controller assesses the log"
    )
    triggers: tuple[Trigger, ...] = Field(
        ("feature_drift", "prediction_drift", "accuracy"),
        description="signals that may start a retrain",
    )
    sustained_checks: int = Field(
        2, ge=1, le=60, description="checks in a row a drift signal must hold before it counts"
    )
    accuracy_sustained_checks: int = Field(
        1,
        ge=1,
        le=60,
        description="checks in a row degraded accuracy must hold (a window's "
        "WAPE is already an aggregate of many labels)",
    )
    recovery_tolerance: float = Field(
        0.10,
        ge=0.0,
        le=1.0,
        description="an episode stays open (and retrains go on, within cool-down and cap) "
        "until the window's WAPE is within this of the level before it began",
    )
    min_drifted_features: int = Field(
        2, ge=1, description="features at PSI >= monitoring.psi_act for feature drift to count"
    )
    cooldown_days: float = Field(
        7.0, ge=0.0, description="no retrain sooner than this after the last one started"
    )
    max_retrains: int = Field(3, ge=1, description="at most this many retrains per period")
    period_days: int = Field(30, ge=1, description="the period of max_retrains")
    recent_weight: float = Field(
        20.0,
        ge=1.0,
        le=1000.0,
        description="a retrain weights rows since the signal began this much more than older "
        "rows (1: no weighting), so the model learns the new regime from a few weeks",
    )
    lookback_days: int = Field(
        6,
        ge=0,
        le=90,
        description="the first signalling check saw the change somewhere in its window: rows "
        "this many days before that check count as the new regime",
    )
    min_recent_days: int = Field(
        7,
        ge=1,
        le=90,
        description="a retrain waits until the new regime has this many labelled days",
    )

    lease_s: float = Field(
        30.0,
        ge=1.0,
        le=3600.0,
        description="one controller per project: the active one renews its lease every third "
        "of this; a waiting one takes over this long after the holder stops renewing",
    )
    lease_backend: Literal["state", "kubernetes"] = Field(
        "state",
        description="where the lease is kept: state (the state database, shared by every "
        "controller that sees this project's .driftloop/) or kubernetes (a coordination.k8s.io"
        "/v1 Lease, the one `driftloop deploy k8s` renders; needs driftloop[cluster])",
    )
    kube_context: str | None = Field(
        None,
        min_length=1,
        description="lease_backend kubernetes: kubeconfig context; default: in-cluster config "
        "(the pod's ServiceAccount), else the current one",
    )

    challenger_every_days: float | None = Field(
        DEFAULT_CHALLENGER_EVERY_DAYS,
        ge=0.0,
        le=3660.0,
        description="a scheduled challenger: retrain when the champion's data and the last "
        "retrain are this many days old, deployed only if it beats the champion at the gate "
        "(by challenger_min_gain) and through the canary (0 or null: off)",
    )
    challenger_min_gain: float = Field(
        0.02,
        ge=0.0,
        le=0.5,
        description="how much better than the champion on the gate's holdout a scheduled "
        "challenger must be (0.02: a 2 % lower error, or a 2 % higher ROC AUC)",
    )
    drift_min_gain: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="how much better than the champion on the gate's holdout a retrain on a "
        "drift or accuracy signal must be (0: no worse); init sets challenger_min_gain for a "
        "table that gets a weekly challenger: there a version that only ties the champion "
        "on a 10-row holdout is a coin flip, and the next challenger comes within a week",
    )

    deploy_significance: float | None = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="a retrain is deployed only when it beats the champion on the gate's "
        "holdout by a one-sided paired t-test over the holdout's days at this level "
        "(training.gate.significance): a lower error the week's luck could explain is not "
        "worth a deployment (null: any gain)",
    )

    retrain_validation_days: int = Field(
        7,
        ge=1,
        le=90,
        description="a retrain's early-stopping days (then refit with them); more when these "
        "hold too few rows, as for the holdout",
    )
    retrain_holdout_days: int = Field(
        7,
        ge=1,
        le=90,
        description="a retrain's gate days: the newest, judged against the champion; when they "
        "hold too few labelled rows for the metric (or one class), the holdout reaches back "
        "over more days, up to a third of the window's rows with the validation, else the "
        "retrain waits (a retrain_waiting event)",
    )

    refit_holdout: bool = Field(
        True,
        description="a retrain that passes its gate is refitted with its holdout days before "
        "it is registered (training.refit_holdout): the holdout judges the recipe, then the "
        "newest week is learned instead of left out; on a one-event-a-day series, leaving "
        "it out cost 4 % in error (Puerto Rico's deaths, weekly retrains)",
    )

    @model_validator(mode="after")
    def _known_triggers(self) -> LoopConfig:
        if len(set(self.triggers)) != len(self.triggers):
            raise ValueError(f"triggers lists a signal twice: {list(self.triggers)}")
        return self
