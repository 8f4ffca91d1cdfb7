"""Cells grown from their nuclei: on a cytoplasm or membrane channel, or by a distance."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._images import as_float_image, background_level, is_flat, smooth, threshold_of
from ._labels import checked_labels

__all__ = ["expand_nuclei", "segment_cells"]


def segment_cells(
    cell_image: np.ndarray,
    nuclei: np.ndarray,
    *,
    threshold: str = "otsu",
    threshold_value: float | None = None,
    smoothing: float = 1.0,
    max_distance: float | None = None,
    threshold_correction: float = 1.0,
) -> np.ndarray:
    """Grow every nucleus into its cell on a cytoplasm or membrane channel.

    Like CellProfiler's IdentifySecondaryObjects "propagation": a watershed
    seeded with the nuclei floods the intensity gradient of the smoothed cell
    channel, restricted to that channel's foreground, so neighbouring cells
    meet at edges, and in the absence of edges halfway between their nuclei.

    Parameters
    ----------
    cell_image : ndarray
        2D cytoplasm or membrane image, same shape as ``nuclei``.
    nuclei : ndarray of int
        Nuclei instance labels (0 background).
    threshold : {'otsu', 'li', 'triangle', 'manual'}
        Foreground threshold method of the cell channel.
    threshold_value : float, optional
        Intensity threshold for ``threshold='manual'``.
    smoothing : float
        Sigma (pixels) of the Gaussian smoothing of the cell channel.
    max_distance : float, optional
        Largest distance (pixels) of a cell pixel from its nucleus; no limit
        when not given.
    threshold_correction : float
        Factor applied to the automatic threshold's height above background
        (below 1 takes in dimmer cytoplasm).

    Returns
    -------
    ndarray of int32
        Cell labels: a cell has the id of its nucleus, and every nucleus keeps
        at least its own pixels. Foreground not reachable from a nucleus stays 0.

    Examples
    --------
    >>> from napari_hcs.segmentation import segment_nuclei
    >>> site = plate.read_site(plate.site("B02"))
    >>> nuclei = segment_nuclei(site[plate.channel_index("DAPI")])
    >>> cells = segment_cells(site[plate.channel_index("mCherry")], nuclei)
    >>> bool(np.all(cells[nuclei > 0] == nuclei[nuclei > 0]))
    True
    >>> bool((cells > 0).sum() > (nuclei > 0).sum())
    True
    """
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    nuclei = checked_labels(nuclei, "nuclei")
    if np.shape(cell_image) != nuclei.shape:
        raise ValueError(
            f"The cell image has shape {np.shape(cell_image)} but the nuclei labels have shape "
            f"{nuclei.shape}; they must be the same."
        )
    if nuclei.max() == 0:
        return nuclei.copy()
    pixels = as_float_image(cell_image, "cell image")
    seeds = nuclei > 0
    if is_flat(pixels):
        return nuclei.copy()
    smoothed = smooth(pixels, smoothing)
    level = threshold_of(smoothed, threshold, threshold_value)
    if threshold != "manual":
        background = background_level(smoothed, level)
        level = background + threshold_correction * (level - background)
    foreground = (smoothed > level) | seeds
    if max_distance is not None:
        foreground &= ndi.distance_transform_edt(~seeds) <= max_distance
    cells = watershed(sobel(smoothed), nuclei, mask=foreground)
    return cells.astype(np.int32, copy=False)


def expand_nuclei(nuclei: np.ndarray, distance: float) -> np.ndarray:
    """Grow nuclei by ``distance`` pixels into cells, without overlap.

    The fallback when there is no cytoplasm or membrane channel; a pixel
    goes to the nearest nucleus within ``distance``
    (``skimage.segmentation.expand_labels``).

    Parameters
    ----------
    nuclei : ndarray of int
        Nuclei instance labels (0 background).
    distance : float
        Expansion in pixels (0 returns a copy of the nuclei).

    Returns
    -------
    ndarray of int32
        Cell labels with the ids of their nuclei.

    Examples
    --------
    >>> nuclei = np.zeros((1, 9), int)
    >>> nuclei[0, 2], nuclei[0, 5] = 1, 2
    >>> expand_nuclei(nuclei, 2).tolist()
    [[1, 1, 1, 1, 2, 2, 2, 2, 0]]
    """
    from skimage.segmentation import expand_labels

    nuclei = checked_labels(nuclei, "nuclei")
    if distance < 0:
        raise ValueError(f"The expansion distance must be >= 0 pixels; got {distance}.")
    return expand_labels(nuclei, distance=distance).astype(np.int32, copy=False)
