"""Features of single-cell crops cut elsewhere: the whole crop, and the nucleus found in it.

:func:`find_crop_nuclei` finds the nucleus of every crop on its nuclear stain,
and :func:`crop_features` measures ``(N, C, S, S)`` crops batch by batch with
the same engine as :func:`~napari_hcs.features.measure_cells`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..cancel import CancelCheck, check_cancel
from ..finite import require_finite
from .compartments import MeasureOptions, as_frame, measure_compartments
from .regions import Regions, safe_divide
from .shape import shape_features

__all__ = ["crop_features", "find_crop_nuclei"]

Progress = Callable[[int, int], None]


def _otsu_thresholds(stack: np.ndarray, bins: int = 256) -> np.ndarray:
    """Otsu threshold of every image of a ``(B, H, W)`` stack (NaN when flat).

    One 256-bin histogram per image over its own range, all in one
    ``bincount``. ``skimage.filters.threshold_otsu``, image by image, is no
    faster and bins some pixels differently, so its thresholds (and the
    stored features) would differ slightly.
    """
    n = len(stack)
    flat = stack.reshape(n, -1).astype(np.float32, copy=False)
    low, high = flat.min(axis=1), flat.max(axis=1)
    width = safe_divide(high - low, bins)
    scale = safe_divide(1.0, width).astype(np.float32)
    index = ((flat - low[:, None]) * scale[:, None]).astype(np.int32)
    np.clip(index, 0, bins - 1, out=index)
    index += (bins * np.arange(n, dtype=np.int32))[:, None]
    hist = np.bincount(index.ravel(), minlength=n * bins).reshape(n, bins)
    centres = low[:, None] + width[:, None] * (np.arange(bins) + 0.5)
    weight_low = np.cumsum(hist, axis=1)[:, :-1].astype(np.float64)
    weight_high = flat.shape[1] - weight_low
    cumulative = np.cumsum(hist * centres, axis=1)
    mean_low = safe_divide(cumulative[:, :-1], weight_low)
    mean_high = safe_divide(cumulative[:, -1:] - cumulative[:, :-1], weight_high)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    best = np.argmax(between, axis=1)
    thresholds = centres[np.arange(n), best]
    thresholds[high <= low] = np.nan
    return thresholds


def find_crop_nuclei(nucleus_stack, *, smoothing: float = 1.0, min_area: int = 10) -> np.ndarray:
    """Find the nucleus of each crop: Otsu on the smoothed nuclear stain, nearest the centre.

    Parameters
    ----------
    nucleus_stack : array_like
        ``(N, S, S)`` nuclear-stain crops.
    smoothing : float
        Gaussian sigma (pixels) applied before thresholding.
    min_area : int
        Components smaller than this (pixels) are ignored unless nothing else is found.

    Returns
    -------
    ndarray of bool
        ``(N, S, S)`` masks: per crop, the hole-filled Otsu foreground component
        nearest the crop centre (all False for a flat crop).

    Examples
    --------
    >>> from skimage.draw import disk
    >>> stack = np.zeros((2, 24, 24), np.float32)
    >>> stack[0][disk((12, 12), 5)] = 100.0
    >>> stack[0][disk((3, 3), 2)] = 300.0  # a brighter neighbour in the corner
    >>> masks = find_crop_nuclei(stack)
    >>> bool(masks[0, 12, 12]), bool(masks[0, 3, 3]), bool(masks[1].any())
    (True, False, False)
    """
    stack = np.asarray(nucleus_stack, dtype=np.float32)
    if stack.ndim != 3:
        raise ValueError(f"Nucleus crops must be (N, Y, X); got shape {stack.shape}.")
    n, height, width = stack.shape
    if n == 0 or height == 0 or width == 0:
        return np.zeros(stack.shape, dtype=bool)
    smooth = ndi.gaussian_filter(stack, sigma=(0, smoothing, smoothing)) if smoothing > 0 else stack
    thresholds = np.nan_to_num(_otsu_thresholds(smooth), nan=np.inf)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndi.generate_binary_structure(2, 1)
    # With an in-plane structure, every crop is filled on its own.
    foreground = ndi.binary_fill_holes(smooth > thresholds[:, None, None], structure=in_plane)
    components, count = ndi.label(foreground, structure=in_plane)
    # Visit each crop's pixels from the centre outwards; the first pixel of a
    # large enough component picks it (any component when none is large enough).
    yy, xx = np.indices((height, width))
    outwards = np.argsort(np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2).ravel(), kind="stable")
    visited = components.reshape(n, -1)[:, outwards]
    large = np.bincount(components.ravel(), minlength=count + 1) >= min_area
    large[0] = False
    candidates = large[visited]
    fallback = ~candidates.any(axis=1)
    candidates[fallback] = visited[fallback] > 0
    chosen = visited[np.arange(n), np.argmax(candidates, axis=1)]
    keep = np.zeros(count + 1, dtype=bool)
    keep[chosen] = True
    keep[0] = False
    return keep[components]


def _checked_crops(crops_ncss, channel_names: Sequence[str]) -> np.ndarray:
    crops = np.asarray(crops_ncss)
    if crops.ndim != 4:
        raise ValueError(f"Crops must be (N, C, Y, X); got shape {crops.shape}.")
    if len(channel_names) != crops.shape[1]:
        raise ValueError(
            f"The crops have {crops.shape[1]} channel(s) but {len(channel_names)} channel name(s) "
            f"were given: {list(channel_names)}."
        )
    if not np.issubdtype(crops.dtype, np.floating):
        require_finite(crops, what="The crops")
        return crops
    bad = np.flatnonzero(~np.isfinite(crops).all(axis=(1, 2, 3)))
    if bad.size:
        named = ", ".join(str(k) for k in bad[:10]) + (", ..." if bad.size > 10 else "")
        require_finite(crops[bad], what=f"Crop(s) {named} of {len(crops)}")
    return crops


def _nucleus_index(nucleus_channel: int | str, names: list[str]) -> int:
    if isinstance(nucleus_channel, str) and not nucleus_channel.isdigit():
        if nucleus_channel not in names:
            raise ValueError(f"Nucleus channel {nucleus_channel!r} is not one of {', '.join(names)}.")
        return names.index(nucleus_channel)
    index = int(nucleus_channel)
    if not 0 <= index < len(names):
        raise ValueError(f"Nucleus channel {nucleus_channel} is out of range for channels {names}.")
    return index


def crop_features(
    crops_ncss,
    *,
    channel_names: Sequence[str],
    nucleus_channel: int | str = 0,
    texture_scales: Sequence[int] = (1, 2),
    glcm_levels: int = 32,
    ser_sigma: float = 2.0,
    batch_size: int = 128,
    progress: Progress | None = None,
    cancel: CancelCheck = None,
) -> pd.DataFrame:
    """Measure single-cell crops: the whole crop, and the nucleus found in it.

    The nucleus of each crop is found by :func:`find_crop_nuclei` on the nucleus
    channel. The ``nucleus`` compartment has shape, intensity, GLCM and SER
    features as in :func:`~napari_hcs.features.measure_cells`; the ``crop``
    compartment (every pixel of the crop) has intensity, GLCM and SER features.
    A crop where no nucleus is found has 0 for every nucleus feature.

    Parameters
    ----------
    crops_ncss : array_like
        ``(N, C, S, S)`` crops (``S`` may differ between the two axes); they
        must be finite.
    channel_names : sequence of str
        One name per channel.
    nucleus_channel : int or str
        Index or name of the nuclear-stain channel.
    texture_scales, glcm_levels, ser_sigma
        As in :func:`~napari_hcs.features.measure_cells`.
    batch_size : int
        Crops measured at once (bounds memory).
    progress : callable, optional
        ``progress(done, total)`` after every batch.
    cancel : callable or threading.Event, optional
        Checked between batches; when set, :class:`~napari_hcs.cancel.Cancelled`
        (an :class:`InterruptedError`) is raised.

    Returns
    -------
    DataFrame
        One row per crop, in order, with float32 ``feat_*`` columns; no NaN.

    Raises
    ------
    ValueError
        If shapes, channels or options do not fit, or crops hold NaN or
        infinite values (the message names the crops).

    Examples
    --------
    >>> from skimage.draw import disk
    >>> crops = np.zeros((2, 2, 24, 24), np.float32)
    >>> rr, cc = disk((12, 12), 5)  # a nucleus of 81 pixels in both crops
    >>> crops[0, 0, rr, cc], crops[1, 0, rr, cc] = 100.0, 200.0
    >>> crops[:, 1] = 10.0
    >>> table = crop_features(crops, channel_names=["DNA", "actin"], nucleus_channel="DNA")
    >>> table.shape
    (2, 112)
    >>> # Otsu on the smoothed stain cuts the nucleus a little inside its edge.
    >>> table[["feat_nucleus_area", "feat_nucleus_mean_DNA", "feat_crop_mean_actin"]]
       feat_nucleus_area  feat_nucleus_mean_DNA  feat_crop_mean_actin
    0               69.0                  100.0                  10.0
    1               69.0                  200.0                  10.0
    """
    crops = _checked_crops(crops_ncss, channel_names)
    names = [str(c) for c in channel_names]
    nucleus_index = _nucleus_index(nucleus_channel, names)
    options = MeasureOptions.checked(
        names, texture_scales=texture_scales, glcm_levels=glcm_levels, ser_sigma=ser_sigma
    )
    batch_size = max(1, int(batch_size))
    parts = []
    for start in range(0, len(crops), batch_size):
        check_cancel(cancel, f"Crop measurement cancelled after {start} of {len(crops)} crops.")
        parts.append(_measure_crop_batch(crops[start : start + batch_size], nucleus_index, options))
        if progress is not None:
            progress(min(start + batch_size, len(crops)), len(crops))
    if not parts:
        parts.append(_measure_crop_batch(crops[:0], nucleus_index, options))
    return pd.concat(parts, ignore_index=True)


def _measure_crop_batch(crops: np.ndarray, nucleus_index: int, options: MeasureOptions) -> pd.DataFrame:
    n, _, height, width = crops.shape
    image = np.ascontiguousarray(crops.transpose(1, 0, 2, 3))
    ids = np.arange(1, n + 1)
    masks = find_crop_nuclei(image[nucleus_index])
    nucleus_labels = np.where(masks, ids[:, None, None], 0)
    crop_labels = np.broadcast_to(ids[:, None, None], (n, height, width))
    nucleus_regions = Regions(nucleus_labels, ids)
    shape, _ = shape_features(nucleus_regions)
    compartments = {"nucleus": nucleus_regions, "crop": Regions(crop_labels, ids)}
    columns = {f"feat_nucleus_{k}": v for k, v in shape.items()}
    columns.update(measure_compartments(image, compartments, options))
    return as_frame(columns)
