"""Names of the feature columns, and how to read them back.

Every feature column starts with ``feat_`` and reads as
``feat_<compartment>_<feature>[_s<distance>][_<channel>]``:

==============================================  ==========================================
``feat_{c}_{shape}``                            shape of compartment ``c``: ``area``,
                                                ``perimeter``, ``eccentricity``, ``solidity``,
                                                ``roundness``, ``width``, ``length``,
                                                ``width_length_ratio``
``feat_{c}_{stat}_{channel}``                   intensity: ``mean``, ``std``, ``cv``, ``min``,
                                                ``max``, ``median``, ``sum``, ``contrast``
``feat_{c}_glcm_{prop}_s{d}_{channel}``         Haralick texture at distance ``d``:
                                                ``contrast``, ``homogeneity``, ``energy``,
                                                ``correlation``, ``asm``, ``dissimilarity``
``feat_{c}_ser_{kind}_{channel}``               Hessian (SER) texture: ``spot``, ``hole``,
                                                ``edge``, ``ridge``, ``valley``, ``saddle``
``feat_neighbourhood_count``                    nuclei centroids within the density radius
``feat_neighbourhood_nearest_distance``         distance to the nearest nucleus centroid
``feat_cell_touching_fraction``                 fraction of the cell border touching cells
==============================================  ==========================================

Compartments are ``nucleus`` and ``cell`` for segmented sites, ``nucleus`` and
``crop`` for crops. :func:`parse_feature_name` and :func:`feature_groups` split
columns by kind, compartment or channel; a channel name may contain underscores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..vocabulary import FEATURE_PREFIX

__all__ = [
    "COMPARTMENTS",
    "FEATURE_PREFIX",
    "GLCM_FEATURES",
    "INTENSITY_FEATURES",
    "NEIGHBOURHOOD_FEATURES",
    "SER_FEATURES",
    "SHAPE_FEATURES",
    "FeatureName",
    "feature_groups",
    "parse_feature_name",
]

SHAPE_FEATURES = (
    "area",
    "perimeter",
    "eccentricity",
    "solidity",
    "roundness",
    "width",
    "length",
    "width_length_ratio",
)
INTENSITY_FEATURES = ("mean", "std", "cv", "min", "max", "median", "sum", "contrast")
GLCM_FEATURES = ("contrast", "homogeneity", "energy", "correlation", "asm", "dissimilarity")
SER_FEATURES = ("spot", "hole", "edge", "ridge", "valley", "saddle")
NEIGHBOURHOOD_FEATURES = (
    "feat_neighbourhood_count",
    "feat_neighbourhood_nearest_distance",
    "feat_cell_touching_fraction",
)
COMPARTMENTS = ("nucleus", "cell", "crop")
GROUP_BY = ("kind", "compartment", "channel", "feature")


@dataclass(frozen=True)
class FeatureName:
    """The parts of a feature column name.

    Attributes
    ----------
    column : str
        The full column name.
    kind : str
        ``shape``, ``intensity``, ``texture`` (GLCM), ``ser`` or ``neighbourhood``.
    compartment : str
        ``nucleus``, ``cell``, ``crop`` or ``neighbourhood``.
    feature : str
        The measurement, e.g. ``area``, ``mean``, ``contrast``, ``spot``.
    channel : str or None
        Channel name for per-channel features.
    scale : int or None
        GLCM distance in pixels for texture features.
    """

    column: str
    kind: str
    compartment: str
    feature: str
    channel: str | None = None
    scale: int | None = None


def _alternatives(names: Iterable[str]) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


_COMPARTMENT = f"(?P<compartment>{_alternatives(COMPARTMENTS)})"
_NAME_PATTERNS = (
    ("shape", re.compile(rf"^feat_{_COMPARTMENT}_(?P<feature>{_alternatives(SHAPE_FEATURES)})$")),
    (
        "texture",
        re.compile(
            rf"^feat_{_COMPARTMENT}_glcm_(?P<feature>{_alternatives(GLCM_FEATURES)})"
            r"_s(?P<scale>\d+)_(?P<channel>.+)$"
        ),
    ),
    (
        "ser",
        re.compile(rf"^feat_{_COMPARTMENT}_ser_(?P<feature>{_alternatives(SER_FEATURES)})_(?P<channel>.+)$"),
    ),
    (
        "intensity",
        re.compile(
            rf"^feat_{_COMPARTMENT}_(?P<feature>{_alternatives(INTENSITY_FEATURES)})_(?P<channel>.+)$"
        ),
    ),
)


def parse_feature_name(column: str) -> FeatureName:
    """Split a feature column name into kind, compartment, feature, channel, scale.

    Parameters
    ----------
    column : str
        A column made by :func:`~napari_hcs.features.measure_cells` or
        :func:`~napari_hcs.features.crop_features`.

    Returns
    -------
    FeatureName
        Its parts; ``channel`` and ``scale`` are None where the feature has none.

    Raises
    ------
    ValueError
        If the column is not a feature column of this package.

    Examples
    --------
    >>> parse_feature_name("feat_nucleus_glcm_contrast_s1_DAPI")
    FeatureName(column='feat_nucleus_glcm_contrast_s1_DAPI', kind='texture', compartment='nucleus', feature='contrast', channel='DAPI', scale=1)
    >>> name = parse_feature_name("feat_cell_mean_GFP_488")
    >>> name.kind, name.compartment, name.feature, name.channel
    ('intensity', 'cell', 'mean', 'GFP_488')
    >>> parse_feature_name("feat_cell_touching_fraction").kind
    'neighbourhood'
    """
    if column in NEIGHBOURHOOD_FEATURES:
        compartment = "cell" if column.startswith("feat_cell_") else "neighbourhood"
        feature = column.removeprefix(f"feat_{compartment}_")
        return FeatureName(column, "neighbourhood", compartment, feature)
    for kind, pattern in _NAME_PATTERNS:
        match = pattern.match(column)
        if match:
            parts = match.groupdict()
            scale = parts.get("scale")
            return FeatureName(
                column,
                kind,
                parts["compartment"],
                parts["feature"],
                parts.get("channel"),
                int(scale) if scale is not None else None,
            )
    raise ValueError(
        f"{column!r} is not a feature column: expected 'feat_<compartment>_<feature>[_<channel>]' "
        f"with compartment one of {', '.join(COMPARTMENTS)}."
    )


def feature_groups(columns: Iterable[str], *, by: str = "kind") -> dict[str, list[str]]:
    """Group feature columns by kind, compartment, channel or feature.

    Columns that are not features of this package (identity columns, embeddings,
    predictions) are left out, so a whole cell table can be passed.

    Parameters
    ----------
    columns : iterable of str
        Column names, e.g. ``table.columns``.
    by : {"kind", "compartment", "channel", "feature"}
        What to group by. Features without a channel (shape, neighbourhood) go to
        the group ``"none"`` when grouping by channel.

    Returns
    -------
    dict of str to list of str
        Group name -> columns, in the order given.

    Examples
    --------
    >>> feature_groups(["feat_nucleus_area", "feat_cell_mean_DAPI", "crop_index"])
    {'shape': ['feat_nucleus_area'], 'intensity': ['feat_cell_mean_DAPI']}
    >>> feature_groups(["feat_nucleus_area", "feat_cell_mean_DAPI"], by="channel")
    {'none': ['feat_nucleus_area'], 'DAPI': ['feat_cell_mean_DAPI']}
    """
    if by not in GROUP_BY:
        raise ValueError(f"Cannot group features by {by!r}; use kind, compartment, channel or feature.")
    groups: dict[str, list[str]] = {}
    for column in columns:
        if not str(column).startswith(FEATURE_PREFIX):
            continue
        try:
            name = parse_feature_name(str(column))
        except ValueError:
            continue
        key = getattr(name, by) or "none"
        groups.setdefault(key, []).append(str(column))
    return groups
