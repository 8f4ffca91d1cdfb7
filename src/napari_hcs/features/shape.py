"""Shape of every region: area, perimeter, ellipse axes, eccentricity, solidity, roundness.

Area, perimeter (4-connected border, skimage's weights of straight and diagonal
steps), eccentricity and axis lengths equal :func:`skimage.measure.regionprops`;
they are computed here for all regions of a label stack at once, where
regionprops loops over regions. Solidity is the area over the number of pixel
centres in the convex hull of the region's pixel centres (1 for every digitally
convex region, straight lines included), where skimage counts the hull of the
pixel corners.

Examples
--------
>>> from napari_hcs.features.regions import Regions
>>> labels = np.zeros((1, 9, 9), np.int32)
>>> labels[0, 2:5, 2:7] = 1
>>> shape, centroids = shape_features(Regions(labels, np.array([1])))
>>> shape["area"].tolist(), shape["solidity"].tolist(), centroids.tolist()
([15.0], [1.0], [[3.0, 4.0]])
"""

from __future__ import annotations

import numpy as np

from .naming import SHAPE_FEATURES
from .regions import DIAGONAL_STEPS, FOUR_STEPS, Regions, id_slots, neighbour, safe_divide

__all__ = ["shape_features"]

#: skimage's perimeter weights, indexed by 1 + 2 * (4-neighbours on the border)
#: + 10 * (diagonal neighbours on the border) of a border pixel.
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2)) / 2


def _border_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Border pixels (a 4-neighbour outside the object) and their perimeter weights."""
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)))
    interior = labels > 0
    for dy, dx in FOUR_STEPS:
        interior &= neighbour(padded, dy, dx) == labels
    border = (labels > 0) & ~interior
    padded_border = np.pad(np.where(border, labels, 0), ((0, 0), (1, 1), (1, 1)))
    code = np.ones(labels.shape, dtype=np.int16)
    for steps, weight in ((FOUR_STEPS, 2), (DIAGONAL_STEPS, 10)):
        for dy, dx in steps:
            code += weight * (neighbour(padded_border, dy, dx) == labels)
    where = np.flatnonzero(border)
    return where, _PERIMETER_WEIGHTS[code.ravel()[where]]


def _digital_hull_size(points: np.ndarray) -> float:
    """Number of pixel centres in the convex hull of integer points (Pick's theorem)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):
        # Fewer than three points, or all on one line: the hull is a segment.
        ends = points[np.lexsort(points.T[::-1])[[0, -1]]]
        return float(np.gcd.reduce(np.abs(ends[1] - ends[0])) + 1)
    corners = points[hull.vertices]
    steps = np.abs(np.diff(np.vstack([corners, corners[:1]]), axis=0))
    on_edges = np.gcd(steps[:, 0], steps[:, 1]).sum()
    return float(hull.volume + on_edges / 2 + 1)


def _perimeter_and_hull(regions: Regions) -> tuple[np.ndarray, np.ndarray]:
    """Perimeter of every region, and the number of pixel centres in its convex hull."""
    _, height, width = regions.shape
    where, weights = _border_pixels(regions.labels)
    slot, known = id_slots(regions.ids, regions.labels.ravel()[where])
    where, weights, slot = where[known], weights[known], slot[known]
    perimeter = np.bincount(slot, weights=weights, minlength=regions.n)
    # The hull of a region is the hull of its border pixels.
    order = np.argsort(slot, kind="stable")
    border_points = np.stack([(where // width) % height, where % width], axis=1)[order]
    border_starts = np.concatenate([[0], np.cumsum(np.bincount(slot, minlength=regions.n))])
    hull_size = np.zeros(regions.n)
    for k in np.flatnonzero(~regions.empty):
        hull_size[k] = _digital_hull_size(border_points[border_starts[k] : border_starts[k + 1]])
    return perimeter, hull_size


def shape_features(regions: Regions) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Shape features of every region, and centroids; 0 for empty regions.

    Parameters
    ----------
    regions : Regions
        The regions of a ``(B, H, W)`` label stack.

    Returns
    -------
    shape : dict of str to ndarray
        One ``(n,)`` float64 array per feature of
        :data:`~napari_hcs.features.naming.SHAPE_FEATURES`.
    centroids : ndarray, shape (n, 2)
        Mean (y, x) of each region's pixels.
    """
    if regions.n == 0:
        return {name: np.zeros(0) for name in SHAPE_FEATURES}, np.zeros((0, 2))
    _, height, width = regions.shape
    y = ((regions.flat // width) % height).astype(np.float64)
    x = (regions.flat % width).astype(np.float64)
    area = regions.counts.astype(np.float64)
    cy, cx = regions.mean(y[None])[0], regions.mean(x[None])[0]
    dy, dx = y - cy[regions.row], x - cx[regions.row]
    var_y, var_x, cov = regions.mean(np.stack([dy * dy, dx * dx, dy * dx]))
    half_trace = (var_y + var_x) / 2
    radius = np.sqrt(((var_y - var_x) / 2) ** 2 + cov**2)
    major, minor = half_trace + radius, np.maximum(half_trace - radius, 0.0)
    perimeter, hull_size = _perimeter_and_hull(regions)
    width_, length = 4 * np.sqrt(minor), 4 * np.sqrt(major)
    shape = {
        "area": area,
        "perimeter": perimeter,
        "eccentricity": np.sqrt(np.clip(1 - safe_divide(minor, major), 0, 1)) * (major > 0),
        "solidity": safe_divide(area, hull_size),
        "roundness": safe_divide(4 * np.pi * area, perimeter**2),
        "width": width_,
        "length": length,
        "width_length_ratio": safe_divide(width_, length),
    }
    return shape, np.stack([cy, cx], axis=1)
