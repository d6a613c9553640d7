"""The sections of ``driftloop.yaml``: one pydantic model each, defaults as named constants."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftloop.config.features import (
    DuckDBOfflineStoreConfig,
    FeaturesConfig,
    OfflineStoreConfig,
    OnlineStoreConfig,
    RedisOnlineStoreConfig,
    SkewConfig,
    SqliteOnlineStoreConfig,
)
from driftloop.config.monitoring import MonitoringConfig
from driftloop.config.serving import ServingConfig

__all__ = [
    "SECRET_FIELDS",
    "DuckDBOfflineStoreConfig",
    "FeaturesConfig",
    "GateConfig",
    "GateMetric",
    "LabelsConfig",
    "LightGBMModelConfig",
    "ModelConfig",
    "MonitoringConfig",
    "OfflineStoreConfig",
    "OnlineStoreConfig",
    "OptimizeConfig",
    "ParamValue",
    "RedisOnlineStoreConfig",
    "RegistryConfig",
    "RetailScenarioConfig",
    "ServingConfig",
    "ShiftConfig",
    "SkewConfig",
    "SklearnModelConfig",
    "SqliteOnlineStoreConfig",
    "TableConfig",
    "TrainingConfig",
]


DEFAULT_SEED = 1
DEFAULT_START_DATE = dt.date(2018, 7, 2)
DEFAULT_DAYS = 913  # about 2.5 years
DEFAULT_N_STORES = 10
DEFAULT_N_PRODUCTS = 12
DEFAULT_SHIFT_DATE = dt.date(2020, 3, 16)
DEFAULT_LABEL_DELAY_DAYS = 1
DEFAULT_LIGHTGBM_PARAMS: dict[str, bool | int | float | str | None] = {
    "objective": "poisson",  # unit sales are counts
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
}
DEFAULT_NUM_BOOST_ROUND = 600
DEFAULT_EARLY_STOPPING_ROUNDS = 40
DEFAULT_GATE_RELATIVE_TOLERANCE = 0.02
DEFAULT_GATE_MAX_WAPE = 0.6
DEFAULT_GATE_MAX_ABS_BIAS = 0.25
DEFAULT_GATE_MAX_PREDICTION_FACTOR = 10.0
DEFAULT_WINDOW_DAYS = 365
DEFAULT_VALIDATION_DAYS = 28
DEFAULT_HOLDOUT_DAYS = 28
DEFAULT_MIN_TRAIN_ROWS = 500
DEFAULT_PROFILE_BINS = 10
DEFAULT_OPTIMIZE_MAX_METRIC_LOSS = 0.01
DEFAULT_OPTIMIZE_MAX_DISAGREEMENT = 0.02
DEFAULT_CALIBRATION_ROWS = 2000
DEFAULT_PRUNE_FRACTION = 0.5
DEFAULT_FINETUNE_EPOCHS = 10
DEFAULT_STUDENT_FRACTION = 0.25


SECRET_FIELDS = frozenset({"admin_token"})  # never echoed, even in validation errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShiftConfig(_Strict):
    """A regime shift (the pandemic): level, product mix and price elasticity change."""

    enabled: bool = True
    date: dt.date = DEFAULT_SHIFT_DATE
    store_share: float = Field(0.8, ge=0.0, le=1.0, description="share of stores affected")
    product_share: float = Field(0.75, ge=0.0, le=1.0, description="share of products affected")
    demand_up_multiplier: float = Field(2.2, gt=0.0, description="level for products that gain")
    demand_down_multiplier: float = Field(0.4, gt=0.0, description="level for products that lose")
    # The relationships change too, not only levels: a model can follow a level shift
    # through its lag features, but it must be retrained to learn that shoppers stopped
    # responding to price and promotions (panic buying, stock-outs).
    elasticity_multiplier: float = Field(
        0.0, ge=0.0, description="price elasticity is scaled by this after the shift"
    )
    promo_lift_multiplier: float = Field(
        0.74, ge=0.0, description="the promotion lift (display, feature) is scaled by this after"
    )
    ramp_days: int = Field(10, ge=1, le=120, description="days over which the shift phases in")


class RetailScenarioConfig(_Strict):
    """The retail demand scenario: daily unit sales for stores x products."""

    type: Literal["retail"] = "retail"
    seed: int = Field(DEFAULT_SEED, ge=0)
    start_date: dt.date = DEFAULT_START_DATE
    days: int = Field(DEFAULT_DAYS, ge=120, le=3660)
    n_stores: int = Field(DEFAULT_N_STORES, ge=1, le=500)
    n_products: int = Field(DEFAULT_N_PRODUCTS, ge=1, le=500)
    promo_start_rate: float = Field(
        0.06, ge=0.0, le=0.5, description="daily chance that a promotion starts"
    )
    dispersion: float = Field(8.0, gt=0.0, description="negative-binomial shape; lower is noisier")
    shift: ShiftConfig = ShiftConfig()

    @property
    def end_date(self) -> dt.date:
        """Last day of generated data (inclusive)."""
        return self.start_date + dt.timedelta(days=self.days - 1)

    @model_validator(mode="after")
    def _shift_inside_data(self) -> RetailScenarioConfig:
        if self.shift.enabled and not (self.start_date < self.shift.date <= self.end_date):
            raise ValueError(
                f"shift.date {self.shift.date} must fall after start_date {self.start_date} "
                f"and on or before the last day {self.end_date}; move it or set "
                "shift.enabled: false"
            )
        return self


class TableConfig(_Strict):
    """A project made from the user's own table (``driftloop init --data``).

    The table, as imported, is ``data/raw/events.parquet``; its features are defined in
    the project's Feast repository, ``feature_repo/features.py``.
    """

    type: Literal["table"] = "table"
    source: str = Field(description="where the table was read from (for people)")
    entity: tuple[str, ...] = Field(min_length=1)
    timestamp: str = Field(description="the table's timestamp column (stored as event_timestamp)")
    target: str


class LabelsConfig(_Strict):
    """When outcomes become known: the sales of day d are known at d + delay_days."""

    delay_days: int = Field(DEFAULT_LABEL_DELAY_DAYS, ge=1, le=90)


ScalarParam = bool | int | float | str | None
# Lists for parameters such as an MLP's hidden_layer_sizes: [256, 256].
ParamValue = ScalarParam | list[bool | int | float | str]


def _lightgbm_defaults() -> dict[str, ParamValue]:
    return {k: v for k, v in DEFAULT_LIGHTGBM_PARAMS.items()}


class LightGBMModelConfig(_Strict):
    """A LightGBM booster (saved in LightGBM's own text format, never pickled)."""

    type: Literal["lightgbm"] = "lightgbm"
    params: dict[str, ParamValue] = Field(default_factory=_lightgbm_defaults)
    num_boost_round: int = Field(DEFAULT_NUM_BOOST_ROUND, ge=1, le=100_000)
    early_stopping_rounds: int = Field(DEFAULT_EARLY_STOPPING_ROUNDS, ge=1)


class SklearnModelConfig(_Strict):
    """Any scikit-learn-compatible estimator, named by its import path (saved with skops)."""

    type: Literal["sklearn"] = "sklearn"
    estimator: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    scale_features: bool = Field(
        False, description="standardize inputs first (MLPs and linear models need it)"
    )


ModelConfig = Annotated[LightGBMModelConfig | SklearnModelConfig, Field(discriminator="type")]
GateMetric = Literal["wape", "mape", "rmse", "roc_auc", "pr_auc", "log_loss"]


class GateConfig(_Strict):
    """Quality gate of a candidate against the champion on the same holdout."""

    metric: GateMetric = "wape"
    relative_tolerance: float = Field(
        DEFAULT_GATE_RELATIVE_TOLERANCE,
        ge=0.0,
        le=1.0,
        description="candidate may be this much worse than the champion (0.02 = 2 %)",
    )
    max_metric: float | None = Field(
        DEFAULT_GATE_MAX_WAPE, description="absolute bound for a lower-is-better metric"
    )
    min_metric: float | None = Field(None, description="absolute bound for higher-is-better")
    max_abs_bias: float | None = Field(
        DEFAULT_GATE_MAX_ABS_BIAS, ge=0.0, description="|mean error| / mean label (regression)"
    )
    significance: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="the candidate must also beat the champion on the holdout by a one-sided "
        "paired test over its days at this level (null: off; the loop's retrains set "
        "loop.deploy_significance)",
    )
    significance_waived_at: float = Field(
        2.0,
        gt=1.0,
        description="a champion whose error on the holdout (1 - AUC for AUCs) is this many "
        "times its own holdout error at registration is broken: a candidate no worse than it "
        "needs no paired test (refitted, it learns the days the champion never saw)",
    )
    min_prediction: float | None = Field(0.0, description="smallest plausible prediction")
    max_prediction_factor: float = Field(
        DEFAULT_GATE_MAX_PREDICTION_FACTOR,
        gt=0.0,
        description="largest plausible prediction, as a multiple of the largest training label",
    )


class TrainingConfig(_Strict):
    """The training pipeline: window, time split, model and gate."""

    task: Literal["regression", "classification"] = "regression"
    window_days: int = Field(DEFAULT_WINDOW_DAYS, ge=14, le=3660)
    validation_days: int = Field(DEFAULT_VALIDATION_DAYS, ge=1)
    holdout_days: int = Field(DEFAULT_HOLDOUT_DAYS, ge=1)
    min_train_rows: int = Field(DEFAULT_MIN_TRAIN_ROWS, ge=10)
    model: ModelConfig = LightGBMModelConfig()
    gate: GateConfig = GateConfig()
    on_pass: Literal["champion", "challenger"] = Field(
        "champion",
        description="alias a passing candidate gets when a champion exists; the controller "
        "uses challenger and lets the canary decide",
    )
    profile_bins: int = Field(DEFAULT_PROFILE_BINS, ge=2, le=100)
    seed: int = Field(0, ge=0)
    # Refit a version the gate passed with its holdout days too (see loop.refit_holdout).
    refit_holdout: bool = False

    @model_validator(mode="after")
    def _split_fits(self) -> TrainingConfig:
        if self.validation_days + self.holdout_days >= self.window_days:
            raise ValueError(
                f"validation_days {self.validation_days} + holdout_days {self.holdout_days} "
                f"leave no training days in window_days {self.window_days}; widen the window"
            )
        if self.task == "classification" and self.gate.metric in ("wape", "mape", "rmse"):
            raise ValueError(
                f"gate.metric {self.gate.metric!r} is a regression metric; a classification "
                "task gates on roc_auc, pr_auc or log_loss"
            )
        if self.task == "regression" and self.gate.metric in ("roc_auc", "pr_auc", "log_loss"):
            raise ValueError(
                f"gate.metric {self.gate.metric!r} is a classification metric; a regression "
                "task gates on wape, mape or rmse"
            )
        return self


class RegistryConfig(_Strict):
    """Where models and runs live (MLflow); defaults keep everything under the project."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking/registry URI; default sqlite under .driftloop/. A "
        "database URI such as postgresql://user:pass@host:5432/db works (psycopg2); "
        "driftloop prints it with the password masked",
    )
    artifact_location: str | None = Field(
        None,
        description="artifact root for new experiments, and the only place models are loaded "
        "from; default .driftloop/mlartifacts",
    )
    model_name: str | None = Field(None, description="registered model name; default the project")
    experiment: str | None = Field(None, description="MLflow experiment; default the project")
    request_timeout_s: int = Field(10, ge=1, le=600)
    allow_pickle: bool = Field(
        False,
        description="load models stored with pickle or cloudpickle (registered outside "
        "driftloop); unpickling runs code from the file, so only for models you trust",
    )
    allow_unverified: bool = Field(
        False,
        description="load versions registered without artifact checksums (before driftloop "
        "recorded them) with a warning, instead of refusing them",
    )
    skops_trusted_types: tuple[str, ...] = Field(
        (),
        description="extra types to trust when loading skops files, beyond the list each "
        "version recorded at registration",
    )


class OptimizeConfig(_Strict):
    """``driftloop optimize``: how far an optimized variant may stray from its FP32 parent."""

    max_relative_metric_loss: float = Field(
        DEFAULT_OPTIMIZE_MAX_METRIC_LOSS,
        ge=0.0,
        le=1.0,
        description="holdout gate metric may get this much worse than the parent (0.01 = 1 %)",
    )
    max_disagreement: float = Field(
        DEFAULT_OPTIMIZE_MAX_DISAGREEMENT,
        ge=0.0,
        le=1.0,
        description="regression: sum |variant - fp32| / sum |fp32| on the holdout; "
        "classification: share of holdout rows whose class at 0.5 flips",
    )
    calibration_rows: int = Field(
        DEFAULT_CALIBRATION_ROWS,
        ge=10,
        description="feature-store rows of the parent's training part for INT8 calibration",
    )
    prune_fraction: float = Field(
        DEFAULT_PRUNE_FRACTION,
        gt=0.0,
        lt=1.0,
        description="share of hidden units (MLP) or trees (LightGBM) that pruning removes",
    )
    finetune_epochs: int = Field(
        DEFAULT_FINETUNE_EPOCHS, ge=0, le=1000, description="epochs of retraining after pruning"
    )
    student_fraction: float = Field(
        DEFAULT_STUDENT_FRACTION,
        gt=0.0,
        lt=1.0,
        description="distilled student size as a share of the teacher's hidden units or leaves",
    )
    latency_repeats: int = Field(200, ge=5, le=100_000, description="timed runs per batch size")
