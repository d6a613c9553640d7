"""Features: one definition for training (offline store) and serving (online store)."""

from driftloop.features.engineering import (
    ENTITY_KEYS,
    TIMESTAMP_COLUMN,
    FeatureLayout,
    compute_features,
)

__all__ = ["ENTITY_KEYS", "TIMESTAMP_COLUMN", "FeatureLayout", "compute_features"]
