"""Classical per-cell features: shape, intensity, texture and neighbourhood."""

from .measure import (
    FeatureName,
    crop_features,
    feature_groups,
    find_crop_nuclei,
    measure_cells,
    parse_feature_name,
)

__all__ = [
    "FeatureName",
    "crop_features",
    "feature_groups",
    "find_crop_nuclei",
    "measure_cells",
    "parse_feature_name",
]
