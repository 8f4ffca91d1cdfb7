"""Classical per-cell features: shape, intensity, texture and neighbourhood.

:func:`measure_cells` measures every nucleus (and its cell) of a segmented site;
:func:`crop_features` measures single-cell crops, with the nucleus that
:func:`find_crop_nuclei` finds in each. Column names (``feat_...``) are read back
by :func:`parse_feature_name` and :func:`feature_groups`; every one starts with
:data:`FEATURE_PREFIX`.

Undefined values are 0, never NaN: a ratio whose denominator is 0 (the CV of a
zero-mean object, the contrast of an all-zero object, the roundness of an
object without perimeter, the GLCM correlation of a flat object) is 0, and an
empty object (a crop where no nucleus was found) has 0 for every feature.
"""

from .crop_measure import crop_features, find_crop_nuclei
from .naming import FEATURE_PREFIX, FeatureName, feature_groups, parse_feature_name
from .site import measure_cells

__all__ = [
    "FEATURE_PREFIX",
    "FeatureName",
    "crop_features",
    "feature_groups",
    "find_crop_nuclei",
    "measure_cells",
    "parse_feature_name",
]
