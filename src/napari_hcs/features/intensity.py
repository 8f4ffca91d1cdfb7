"""Intensity statistics of every region and channel.

``mean``, ``std`` (population), ``min``, ``max``, ``median`` and ``sum`` of the
pixel values, ``cv = std / |mean|`` and ``contrast = (max - min) / (max + min)``;
a ratio over 0 is 0.

Examples
--------
>>> from napari_hcs.features.regions import Regions
>>> regions = Regions(np.array([[[1, 1, 2]]]), np.array([1, 2]))
>>> stats = intensity_features(regions.gather(np.array([[[[2.0, 6.0, 5.0]]]])), regions)
>>> stats["mean"].tolist(), stats["contrast"].tolist()
([[4.0, 5.0]], [[0.5, 0.0]])
"""

from __future__ import annotations

import numpy as np

from .regions import Regions, safe_divide

__all__ = ["intensity_features"]


def intensity_features(values: np.ndarray, regions: Regions) -> dict[str, np.ndarray]:
    """Intensity statistics per channel and region.

    Parameters
    ----------
    values : ndarray, shape (C, m)
        Pixel values of the regions, as given by :meth:`Regions.gather`.
    regions : Regions
        The regions the pixels belong to.

    Returns
    -------
    dict of str to ndarray
        One ``(C, n)`` float64 array per statistic of
        :data:`~napari_hcs.features.naming.INTENSITY_FEATURES`; 0 for empty regions.
    """
    mean = regions.mean(values)
    centred = values - mean.astype(values.dtype)[:, regions.row]
    std = np.sqrt(regions.mean(centred * centred))
    low = regions.reduce(np.minimum, values)
    high = regions.reduce(np.maximum, values)
    return {
        "mean": mean,
        "std": std,
        "cv": safe_divide(std, np.abs(mean)),
        "min": low,
        "max": high,
        "median": _median(values, regions),
        "sum": regions.sum(values),
        "contrast": safe_divide(high - low, high + low),
    }


def _median(values: np.ndarray, regions: Regions) -> np.ndarray:
    median = np.zeros((len(values), regions.n), dtype=np.float64)
    sizes = np.unique(regions.counts)
    if len(sizes) == 1 and sizes[0] > 0:  # equal regions (whole crops): one call
        median[:] = np.median(values.reshape(len(values), regions.n, sizes[0]), axis=2)
    else:
        for k in np.flatnonzero(~regions.empty):
            median[:, k] = np.median(values[:, regions.starts[k] : regions.starts[k + 1]], axis=1)
    return median
