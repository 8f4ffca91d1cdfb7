"""Where a cell sits among the others: local density, nearest neighbour, touching border.

Examples
--------
>>> features = neighbourhood_features(np.array([[0.0, 0.0], [0.0, 3.0], [40.0, 0.0]]), np.full(3, 12.0), 10)
>>> features["feat_neighbourhood_count"].tolist(), features["feat_neighbourhood_nearest_distance"].tolist()
([1.0, 1.0, 0.0], [3.0, 3.0, 40.0])
"""

from __future__ import annotations

import numpy as np

from .regions import DIAGONAL_STEPS, FOUR_STEPS, count_per_id, neighbour, safe_divide

__all__ = ["neighbourhood_features", "touching_fraction"]


def touching_fraction(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Fraction of each object's border pixels that touch another object (8-neighbourhood).

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Object labels, 0 = background.
    ids : ndarray of int
        Sorted ids of the objects to measure (0 for an absent id).
    """
    stack = labels[np.newaxis]
    padded = np.pad(stack, ((0, 0), (1, 1), (1, 1)))
    border = np.zeros(stack.shape, dtype=bool)
    touching = np.zeros(stack.shape, dtype=bool)
    for dy, dx in FOUR_STEPS + DIAGONAL_STEPS:
        other = neighbour(padded, dy, dx)
        differs = other != stack
        border |= differs
        touching |= differs & (other > 0)
    inside = stack > 0
    border_counts = count_per_id(ids, stack[inside & border])
    touching_counts = count_per_id(ids, stack[inside & touching])
    return safe_divide(touching_counts, border_counts)


def neighbourhood_features(
    centroids: np.ndarray, area: np.ndarray, radius: float | None
) -> dict[str, np.ndarray]:
    """Number of other centroids within ``radius``, and distance to the nearest one.

    Parameters
    ----------
    centroids : ndarray, shape (n, 2)
        (y, x) centroid of every nucleus.
    area : ndarray, shape (n,)
        Area of every nucleus; sets the default radius.
    radius : float or None
        Density radius in pixels; None means 5 x the median equivalent-circle
        diameter of the nuclei.

    Returns
    -------
    dict of str to ndarray
        ``feat_neighbourhood_count`` and ``feat_neighbourhood_nearest_distance``
        (0 for a lone nucleus).
    """
    from scipy.spatial import cKDTree

    n = len(centroids)
    if n == 0:
        return {"feat_neighbourhood_count": np.zeros(0), "feat_neighbourhood_nearest_distance": np.zeros(0)}
    if radius is None:
        diameter = np.median(np.sqrt(4 * area / np.pi))
        radius = 5.0 * diameter
    tree = cKDTree(centroids)
    count = tree.query_ball_point(centroids, r=radius, return_length=True) - 1
    nearest = np.zeros(n)
    if n > 1:
        distances, _ = tree.query(centroids, k=2)
        nearest = distances[:, 1]
    return {
        "feat_neighbourhood_count": count.astype(np.float64),
        "feat_neighbourhood_nearest_distance": nearest,
    }
