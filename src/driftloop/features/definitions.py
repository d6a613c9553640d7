"""Feast definitions built from the project's feature layout: declared here, once.

Training reads these views through the offline store; serving reads the same views
from the online store.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from driftloop.features.engineering import ENTITY_KEYS, TIMESTAMP_COLUMN, FeatureLayout

__all__ = ["FEATURE_SERVICE", "build_definitions", "feature_refs"]

FEATURE_SERVICE = "demand_features"
SOURCE_NAME = "store_product_daily"


def feature_refs(layout: FeatureLayout) -> list[str]:
    """``view:feature`` references for every feature, in model column order."""
    return [f"{view}:{name}" for view, names in layout.views().items() for name in names]


def build_definitions(layout: FeatureLayout, offline_path: Path, ttl_days: int) -> list[Any]:
    """Entities, source, feature views and the feature service, as Feast objects."""
    from driftloop.features.feast_import import import_feast

    import_feast()
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    store = Entity(name="store", join_keys=[ENTITY_KEYS[0]], value_type=ValueType.INT64)
    product = Entity(name="product", join_keys=[ENTITY_KEYS[1]], value_type=ValueType.INT64)
    source = FileSource(
        name=SOURCE_NAME,
        # DuckDB resolves relative paths from the working folder, so the path is absolute.
        path=str(offline_path.resolve()),
        timestamp_field=TIMESTAMP_COLUMN,
    )
    views = [
        FeatureView(
            name=view,
            entities=[store, product],
            ttl=timedelta(days=ttl_days),
            schema=[
                Field(name=name, dtype=Int64 if name in layout.integer_features else Float64)
                for name in names
            ],
            source=source,
            online=True,
        )
        for view, names in layout.views().items()
    ]
    service = FeatureService(name=FEATURE_SERVICE, features=list[Any](views))
    return [store, product, source, *views, service]
