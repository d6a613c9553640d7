"""The ``rollout:`` section: strategy, canary steps, gates (the spec's defaults), test budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "IstioConfig",
    "OutcomeGateConfig",
    "PairedConfig",
    "RolloutConfig",
    "ShadowConfig",
    "validate_steps",
]

Strategy = Literal["canary", "blue-green", "ab"]


def validate_steps(steps: Sequence[float]) -> tuple[float, ...]:
    """Return the steps as a tuple, or raise ValueError naming the first problem."""
    weights = tuple(float(s) for s in steps)
    if not weights:
        raise ValueError("steps must not be empty")
    for i, w in enumerate(weights):
        if not math.isfinite(w) or not 0.0 < w <= 100.0:
            raise ValueError(f"steps[{i}] must be within (0, 100], got {w!r}")
        if i > 0 and w <= weights[i - 1]:
            raise ValueError(
                f"steps must be strictly increasing, got steps[{i - 1}]={weights[i - 1]!r} "
                f"then steps[{i}]={w!r}"
            )
    if weights[-1] != 100.0:
        raise ValueError(f"the last step must be 100, got steps[-1]={weights[-1]!r}")
    return weights


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShadowConfig(_Strict):
    """Optional phase before the first step: the challenger answers in shadow only."""

    enabled: bool = False
    min_answers: int = Field(500, ge=1, description="shadow answers needed to judge")
    agreement_tolerance: float = Field(
        0.10, gt=0.0, description="an answer agrees when |s - c| / max(|c|, 1) <= this"
    )
    min_agreement: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="share of agreeing answers needed to go on (0: agreement is only reported)",
    )
    max_error_rate: float = Field(0.02, ge=0.0, le=1.0, description="failed shadow answers")


class OutcomeGateConfig(_Strict):
    """Outcomes sent to ``/v1/feedback``, joined to the version that answered."""

    business_metric: str = Field(
        "revenue", min_length=1, description="feedback name of the business outcome"
    )
    higher_is_better: bool = True
    business_tolerance: float = Field(
        0.02, ge=0.0, le=1.0, description="canary mean may be this much worse (relative)"
    )
    accuracy_tolerance: float = Field(
        0.05, ge=0.0, le=1.0, description="canary WAPE may be this much worse (relative)"
    )
    min_outcomes: int = Field(200, ge=2, description="per version, before a gate is judged")


class PairedConfig(_Strict):
    """Paired evidence for slow labels: during canary steps the challenger also scores the
    champion's requests in shadow, and each label judges both versions on the same request
    (an always-valid test on per-request loss differences). Costs one challenger prediction
    per champion request while a rollout runs."""

    enabled: bool = True
    min_pairs: int = Field(100, ge=2, description="labelled pairs before the test judges")
    alpha: float = Field(
        0.01,
        gt=0.0,
        lt=1.0,
        description="two-sided level: significantly lower loss counts as the accuracy gate "
        "passing, significantly higher rolls back",
    )
    mixture_sd: float = Field(
        0.2, gt=0.0, description="mixture prior scale of the effect, in standard deviations"
    )
    count_shadow: bool = Field(
        False,
        description="count the challenger's answers computed in shadow toward a step's "
        "min_requests and its error gates (latency and the prediction histogram stay the "
        "served slice's): for traffic too sparse for the canary slice alone to reach "
        "min_requests before max_duration_s; `init --data` turns it on for such tables",
    )


class IstioConfig(_Strict):
    """The VirtualService an ``istio`` router edits (``networking.istio.io/v1``)."""

    namespace: str | None = Field(
        None, min_length=1, description="default: deploy.namespace (where `deploy k8s` puts it)"
    )
    virtualservice: str | None = Field(
        None,
        min_length=1,
        description="its metadata.name; default: the name `driftloop deploy k8s` gives it",
    )
    route: str | None = Field(
        None, description="name of the HTTP route to edit; default: the first HTTP route"
    )
    host: str | None = Field(
        None, description="destination host (the Service); default: the route's current host"
    )
    subset_template: str = Field(
        "v{version}", description="DestinationRule subset of a registry version"
    )
    conflict_retries: int = Field(
        5, ge=0, le=100, description="re-reads after HTTP 409 (a concurrent edit) before failing"
    )
    kube_context: str | None = Field(
        None, description="kubeconfig context; default: in-cluster config, else the current one"
    )

    @field_validator("subset_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value.count("{version}") != 1 or value.replace("{version}", "").count("{") > 0:
            raise ValueError(f"subset_template must hold {{version}} once, got {value!r}")
        return value


class RolloutConfig(_Strict):
    """Canary / blue-green / A-B rollouts: the specification's steps and gates by default."""

    strategy: Strategy = "canary"
    steps: tuple[float, ...] = Field(
        (10.0, 50.0, 100.0), description="canary weights in percent; reaching 100 promotes"
    )
    check_interval_s: float = Field(10.0, gt=0.0, le=86400.0)
    min_requests: int = Field(2000, ge=1, description="canary requests a step needs")
    guard_min_requests: int = Field(
        1000, ge=1, description="canary requests before the fixed thresholds can roll back"
    )
    min_duration_s: float = Field(300.0, ge=0.0, description="shortest step")
    max_duration_s: float = Field(1800.0, gt=0.0, description="step deadline: rolled back")
    promote_error_rate: float = Field(0.01, gt=0.0, lt=1.0)
    rollback_error_rate: float = Field(0.02, gt=0.0, lt=1.0)
    promote_p99_ratio: float = Field(1.10, ge=1.0)
    rollback_p99_ratio: float = Field(1.20, ge=1.0)
    p99_slack_ms: float = Field(
        2.0,
        ge=0.0,
        description="latency differences up to this many ms pass the p99 gates and the latency "
        "test: a model answering in ~1 ms varies more than that with CPU caches and scheduling",
    )
    kl_max: float = Field(0.1, gt=0.0, description="KL(canary || stable) of predictions")
    kl_action: Literal["rollback", "hold"] = "rollback"
    alpha: float = Field(
        0.01,
        gt=0.0,
        lt=1.0,
        description="false-rollback budget of a whole rollout on identical versions, split "
        "evenly over its judged steps (always-valid tests)",
    )
    shadow: ShadowConfig = ShadowConfig()
    outcomes: OutcomeGateConfig = OutcomeGateConfig()
    paired: PairedConfig = PairedConfig()
    ab_split: float = Field(50.0, gt=0.0, lt=100.0, description="A/B: challenger percent")
    ab_alpha: float = Field(0.05, gt=0.0, lt=1.0, description="A/B: always-valid test level")
    ab_max_duration_s: float = Field(
        7 * 86400.0, gt=0.0, description="A/B: no significant difference by then keeps champion"
    )
    server_url: str | None = Field(
        None, description="the server the rollout drives; default http://serving.host:port"
    )
    prometheus_url: str | None = Field(
        None, description="read canary metrics by PromQL here instead of the server's /metrics"
    )
    prometheus_selector: str = Field("", description='extra PromQL matchers, e.g. job="x"')
    router: Literal["server", "istio"] = Field(
        "server",
        description="who moves traffic: the server's admin API, or an Istio VirtualService",
    )
    istio: IstioConfig = IstioConfig()

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return validate_steps(value)

    @model_validator(mode="after")
    def _ordered(self) -> RolloutConfig:
        if self.rollback_error_rate < self.promote_error_rate:
            raise ValueError(
                f"rollback_error_rate {self.rollback_error_rate} must be >= promote_error_rate "
                f"{self.promote_error_rate}"
            )
        if self.rollback_p99_ratio < self.promote_p99_ratio:
            raise ValueError(
                f"rollback_p99_ratio {self.rollback_p99_ratio} must be >= promote_p99_ratio "
                f"{self.promote_p99_ratio}"
            )
        if self.max_duration_s <= self.min_duration_s:
            raise ValueError(
                f"max_duration_s {self.max_duration_s} must be > min_duration_s "
                f"{self.min_duration_s}"
            )
        return self
