"""Objects that are not nuclei: fibres, hairs, large blobs and bright debris."""

from __future__ import annotations

import numpy as np

from ._labels import drop_labels

#: Objects more elongated than this (major / minor axis) and either thinner than
#: half the expected diameter or larger than the largest nucleus are treated as
#: fibres or hairs.
MAX_ELONGATION = 5.0


def remove_artefacts(
    labels: np.ndarray,
    pixels: np.ndarray,
    *,
    diameter: float,
    max_area: float,
    max_intensity_quantile: float | None,
) -> np.ndarray:
    """Drop very large, very elongated (fibres, hairs) or, on request, very bright objects.

    Parameters
    ----------
    labels : ndarray of int
        Instance labels.
    pixels : ndarray
        The image the labels were found on.
    diameter : float
        Expected nucleus diameter in pixels.
    max_area : float
        Largest nucleus area in pixels.
    max_intensity_quantile : float, optional
        Objects whose mean intensity is above twice this quantile (0 to 1) of
        the objects' mean intensities are dropped too.
    """
    if labels.max() == 0:
        return labels
    area, major, minor, mean_intensity = object_shapes(labels, pixels)
    present = area > 0
    drop = (area > max_area) | is_fibre(area, major, minor, diameter=diameter, max_area=max_area)
    if max_intensity_quantile is not None:
        limit = 2.0 * np.quantile(mean_intensity[present], max_intensity_quantile)
        drop |= mean_intensity > limit
    drop &= present
    return drop_labels(labels, drop)


def fibre_lookup(
    components: np.ndarray, pixels: np.ndarray, *, diameter: float, max_area: float
) -> np.ndarray:
    """Per label id (index): is the object a fibre or a hair?"""
    area, major, minor, _ = object_shapes(components, pixels)
    fibre = is_fibre(area, major, minor, diameter=diameter, max_area=max_area)
    fibre[0] = False
    return fibre


def is_fibre(
    area: np.ndarray, major: np.ndarray, minor: np.ndarray, *, diameter: float, max_area: float
) -> np.ndarray:
    """Very elongated objects that are thin (fibres) or very large (hairs)."""
    elongated = major / np.maximum(minor, 1.0) > MAX_ELONGATION
    return elongated & ((minor < 0.5 * diameter) | (area > max_area))


def object_shapes(labels: np.ndarray, pixels: np.ndarray):
    """Area, major and minor axis lengths and mean intensity of every label id (index = id).

    The axes are those of the ellipse with the same second moments (as in
    ``skimage.measure.regionprops``), computed for all objects at once with
    ``np.bincount`` rather than one region at a time.

    Examples
    --------
    >>> labels = np.zeros((5, 12), int)
    >>> labels[2, 1:11] = 1
    >>> area, major, minor, mean = object_shapes(labels, np.ones(labels.shape))
    >>> int(area[1]), round(float(major[1]), 2), float(minor[1]), float(mean[1])
    (10, 11.49, 0.0, 1.0)
    """
    inside = labels > 0
    ids = labels[inside]
    rows, cols = np.nonzero(inside)
    n = int(labels.max()) + 1
    area = np.bincount(ids, minlength=n).astype(np.float64)
    count = np.maximum(area, 1.0)

    def mean(values):
        return np.bincount(ids, weights=values, minlength=n) / count

    mean_row, mean_col = mean(rows), mean(cols)
    var_row = mean(rows.astype(np.float64) ** 2) - mean_row**2
    var_col = mean(cols.astype(np.float64) ** 2) - mean_col**2
    covariance = mean(rows.astype(np.float64) * cols) - mean_row * mean_col
    half_spread = np.sqrt(((var_row - var_col) / 2.0) ** 2 + covariance**2)
    centre = (var_row + var_col) / 2.0
    major = 4.0 * np.sqrt(np.maximum(centre + half_spread, 0.0))
    minor = 4.0 * np.sqrt(np.maximum(centre - half_spread, 0.0))
    return area, major, minor, mean(pixels[inside])
