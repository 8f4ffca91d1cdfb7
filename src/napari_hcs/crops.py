"""Single-cell crops: fixed-size windows of a site centred on each cell.

:func:`cell_centroids` finds the centre of every labelled object, and
:func:`extract_crops` cuts one ``(C, size, size)`` window per centre in a single
vectorised indexing step (the image is padded once, so cells at the edge get
zero padding). Crops can keep only the pixels of their own cell, and can be
rescaled so that crops of images taken at different magnifications match.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_centroids", "extract_crops"]


def cell_centroids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the ids and (row, column) centroids of the objects of a label image.

    Parameters
    ----------
    labels : ndarray of int
        2D instance labels, 0 for background.

    Returns
    -------
    label_ids : ndarray of int64
        Ids of the objects present, ascending.
    centroids : ndarray of float64, shape (N, 2)
        Mean (row, column) of each object's pixels, in the order of ``label_ids``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Labels must be a 2D integer image; got shape {labels.shape}, dtype {labels.dtype}."
        )
    flat = labels.ravel()
    if flat.size and flat.min() < 0:
        raise ValueError("Labels must not be negative.")
    counts = np.bincount(flat)
    label_ids = np.nonzero(counts)[0]
    label_ids = label_ids[label_ids != 0].astype(np.int64)
    if label_ids.size == 0:
        return label_ids, np.zeros((0, 2), dtype=np.float64)
    rows, cols = np.indices(labels.shape, sparse=True)
    row_sums = np.bincount(flat, weights=np.broadcast_to(rows, labels.shape).ravel())
    col_sums = np.bincount(flat, weights=np.broadcast_to(cols, labels.shape).ravel())
    centroids = np.stack([row_sums[label_ids], col_sums[label_ids]], axis=1) / counts[label_ids, None]
    return label_ids, centroids


def extract_crops(
    image_cyx: np.ndarray,
    centroids: np.ndarray,
    size: int = 32,
    *,
    labels: np.ndarray | None = None,
    label_ids: np.ndarray | None = None,
    mask_outside: bool = False,
    scale: float = 1.0,
    dtype=np.float32,
) -> np.ndarray:
    """Cut one square crop per cell, centred on its centroid.

    Parameters
    ----------
    image_cyx : ndarray
        ``(C, Y, X)`` image (a 2D image is taken as one channel).
    centroids : array-like, shape (N, 2)
        (row, column) centres, e.g. from :func:`cell_centroids`.
    size : int
        Crop side in pixels (of the output).
    labels : ndarray of int, optional
        ``(Y, X)`` cell labels; needed with ``mask_outside``.
    label_ids : array-like of int, optional
        Label id of each crop's cell, in the order of ``centroids``; taken as
        the ids present in ``labels`` (ascending) when not given.
    mask_outside : bool
        Zero every pixel that does not belong to the crop's own cell.
    scale : float
        Output pixels per image pixel: a window of ``size / scale`` image
        pixels is cut and resized to ``size`` (e.g. 0.5 for an image taken at
        twice the reference magnification).
    dtype : numpy dtype
        Output type (integer types are rounded and clipped to their range).

    Returns
    -------
    ndarray, shape (N, C, size, size)
        Crops; pixels beyond the image border are 0.

    Examples
    --------
    >>> cells = np.zeros((40, 40), np.int32)
    >>> cells[5:12, 5:12], cells[20:30, 22:34] = 1, 2
    >>> image = np.ones((2, 40, 40), np.float32)
    >>> ids, centres = cell_centroids(cells)
    >>> ids.tolist(), centres.tolist()
    ([1, 2], [[8.0, 8.0], [24.5, 27.5]])
    >>> crops = extract_crops(image, centres, size=16, labels=cells, label_ids=ids,
    ...                       mask_outside=True)
    >>> crops.shape, crops[:, 0].sum(axis=(1, 2)).tolist()
    ((2, 2, 16, 16), [49.0, 120.0])

    A window that reaches past the border is zero-padded:

    >>> float(extract_crops(image, [(0, 0)], size=16)[0, 0].sum())
    64.0
    """
    image = _as_cyx(image_cyx)
    size = int(size)
    if size < 1:
        raise ValueError(f"Crop size must be a positive number of pixels; got {size}.")
    if not scale > 0:
        raise ValueError(f"scale must be positive; got {scale}.")
    centroids = np.asarray(centroids, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(centroids).all():
        raise ValueError("Centroids must be finite (row, column) positions.")
    n_channels = image.shape[0]
    if len(centroids) == 0:
        return np.zeros((0, n_channels, size, size), dtype=dtype)

    window = size if scale == 1 else max(int(round(size / scale)), 1)
    rows, cols, pad = _window_indices(centroids, window, image.shape[1:])
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))
    crops = padded[:, rows[:, :, None], cols[:, None, :]]  # (C, N, W, W)
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    crops = np.moveaxis(crops, 0, 1).astype(work, copy=False)
    if mask_outside:
        own = _own_cell_mask(labels, label_ids, image.shape[1:], len(centroids), rows, cols, pad)
        crops = crops * own[:, None]
    if window != size:
        crops = _resize(crops, size)
    return _cast(crops, dtype)


def _as_cyx(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"Expected a (C, Y, X) image; got shape {image.shape}.")
    return image


def _window_indices(
    centroids: np.ndarray, window: int, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Row and column indices (N, window) into the image padded by ``window`` on each side."""
    pad = window
    start = np.floor(centroids + 0.5).astype(np.int64) - window // 2 + pad
    # A window wholly outside the image is moved onto the padding: it stays all zeros.
    start = np.clip(start, 0, np.asarray(shape) + pad)
    offsets = np.arange(window)
    return start[:, 0, None] + offsets, start[:, 1, None] + offsets, pad


def _own_cell_mask(
    labels: np.ndarray | None,
    label_ids: np.ndarray | None,
    shape: tuple[int, int],
    n: int,
    rows: np.ndarray,
    cols: np.ndarray,
    pad: int,
) -> np.ndarray:
    if labels is None:
        raise ValueError("mask_outside=True needs the cell labels (labels=...).")
    labels = np.asarray(labels)
    if labels.shape != tuple(shape):
        raise ValueError(f"labels have shape {labels.shape}; the image is {tuple(shape)}.")
    if label_ids is None:
        label_ids = np.unique(labels)
        label_ids = label_ids[label_ids != 0]
    label_ids = np.asarray(label_ids).ravel()
    if len(label_ids) != n:
        raise ValueError(
            f"{len(label_ids)} label ids for {n} centroids; pass label_ids= in the order of the "
            "centroids."
        )
    padded = np.pad(labels, pad)
    return padded[rows[:, :, None], cols[:, None, :]] == label_ids[:, None, None]


def _resize(crops: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, C, W, W) crops to (N, C, size, size) by a separable linear filter."""
    weights = _resize_weights(crops.shape[-1], size).astype(crops.dtype)
    return weights @ crops @ weights.T


def _resize_weights(width: int, size: int) -> np.ndarray:
    """(size, width) interpolation matrix: area mean when shrinking, bilinear when enlarging."""
    step = width / size
    if step > 1:
        # Overlap of output pixel k, covering [k * step, (k + 1) * step), with input pixel j.
        low = np.arange(size)[:, None] * step
        start = np.arange(width)[None, :]
        weights = np.clip(np.minimum(low + step, start + 1) - np.maximum(low, start), 0.0, None)
    else:
        centres = (np.arange(size) + 0.5) * step - 0.5
        weights = np.maximum(0.0, 1.0 - np.abs(np.arange(width)[None, :] - centres[:, None]))
    return weights / weights.sum(axis=1, keepdims=True)


def _cast(crops: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        crops = np.clip(np.rint(crops), info.min, info.max)
    return crops.astype(dtype, copy=False)
