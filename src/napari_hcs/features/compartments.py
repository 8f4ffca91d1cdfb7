"""Intensity and texture columns of the compartments (nucleus, cell, crop) of an image.

Both entry points, :func:`~napari_hcs.features.measure_cells` for a site and
:func:`~napari_hcs.features.crop_features` for crops, describe their
compartments as :class:`~napari_hcs.features.regions.Regions` of one label
stack and get the same columns from :func:`measure_compartments`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .intensity import intensity_features
from .naming import GLCM_FEATURES, INTENSITY_FEATURES, SER_FEATURES
from .regions import Regions
from .texture import derivatives, glcm_features, ser_features

__all__ = ["MeasureOptions", "as_frame", "in_compartment", "measure_compartments"]


@dataclass(frozen=True)
class MeasureOptions:
    """Channels and texture settings of one measurement.

    Attributes
    ----------
    channel_names : tuple of str
        One name per channel, used in the column names.
    scales : tuple of int
        GLCM distances in pixels.
    levels : int
        GLCM grey levels.
    ser_sigma : float
        Gaussian scale (pixels) of the SER derivatives.
    """

    channel_names: tuple[str, ...]
    scales: tuple[int, ...]
    levels: int
    ser_sigma: float

    @classmethod
    def checked(
        cls, channel_names: Sequence[str], *, texture_scales: Sequence[int], glcm_levels: int, ser_sigma: float
    ) -> "MeasureOptions":
        """Options from the arguments of an entry point; ValueError names a bad one.

        Examples
        --------
        >>> MeasureOptions.checked(["DAPI"], texture_scales=(1, 2), glcm_levels=32, ser_sigma=2)
        MeasureOptions(channel_names=('DAPI',), scales=(1, 2), levels=32, ser_sigma=2.0)
        """
        scales = tuple(int(s) for s in texture_scales)
        if any(s < 1 for s in scales) or len(set(scales)) != len(scales):
            raise ValueError(f"texture_scales must be distinct distances >= 1 pixel; got {texture_scales}.")
        if not 2 <= int(glcm_levels) <= 256:
            raise ValueError(f"glcm_levels must be between 2 and 256; got {glcm_levels}.")
        return cls(tuple(str(c) for c in channel_names), scales, int(glcm_levels), float(ser_sigma))


def measure_compartments(
    image: np.ndarray, compartments: dict[str, Regions], options: MeasureOptions
) -> dict[str, np.ndarray]:
    """Intensity, GLCM and SER columns of compartments of a ``(C, B, H, W)`` image.

    Returns
    -------
    dict of str to ndarray
        ``feat_<compartment>_...`` column name -> ``(n,)`` values, per
        compartment in the order given, then per channel.
    """
    intensity, glcm = {}, {}
    for name, regions in compartments.items():
        values = regions.gather(image).astype(np.float32)
        intensity[name] = intensity_features(values, regions)
        low, high = intensity[name]["min"], intensity[name]["max"]
        glcm[name] = glcm_features(values, low, high, regions, scales=options.scales, levels=options.levels)
    ser: dict[str, list] = {name: [] for name in compartments}
    for c, channel_stack in enumerate(image):  # one channel's derivatives in memory at a time
        channel_derivatives = derivatives(channel_stack, options.ser_sigma)
        for name, regions in compartments.items():
            mean = intensity[name]["mean"][c]
            ser[name].append(ser_features(channel_derivatives, mean, regions, options.ser_sigma))
    columns: dict[str, np.ndarray] = {}
    for name in compartments:
        for c, channel in enumerate(options.channel_names):
            for stat in INTENSITY_FEATURES:
                columns[f"feat_{name}_{stat}_{channel}"] = intensity[name][stat][c]
            for d in options.scales:
                for prop in GLCM_FEATURES:
                    columns[f"feat_{name}_glcm_{prop}_s{d}_{channel}"] = glcm[name][(prop, d)][c]
            for kind in SER_FEATURES:
                columns[f"feat_{name}_ser_{kind}_{channel}"] = ser[name][c][kind]
    return columns


def in_compartment(columns: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """The columns of compartment ``name``."""
    return {k: v for k, v in columns.items() if k.startswith(f"feat_{name}_")}


def as_frame(columns: dict[str, np.ndarray], index_name: str | None = None, ids=None) -> pd.DataFrame:
    """A table of float32 feature columns, with the ids first when given."""
    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in columns.items()})
    if ids is not None:
        frame.insert(0, index_name, ids)
    return frame
