"""Features: one layout Protocol per project, one definition for training (offline store)
and serving (online store)."""

from driftloop.features.engineering import (
    ENTITY_KEYS,
    TIMESTAMP_COLUMN,
    FeatureLayout,
    compute_features,
)
from driftloop.features.layout import ProjectLayout, project_layout

__all__ = [
    "ENTITY_KEYS",
    "TIMESTAMP_COLUMN",
    "FeatureLayout",
    "ProjectLayout",
    "compute_features",
    "project_layout",
]
