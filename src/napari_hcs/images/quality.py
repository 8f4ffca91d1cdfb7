"""Image quality of a site, channel by channel, as CellProfiler's MeasureImageQuality measures it.

:func:`site_quality` gives one row per channel of a ``(C, Y, X)`` site:

``power_log_log_slope`` (CellProfiler's ``PowerLogLogSlope``)
    Slope of the log-log radial power spectrum (the power summed over each
    ring of radii), fitted over the radii 2 to ``min(Y, X) / 8`` as in
    ``centrosome.radial_power_spectrum.rps`` and ``MeasureImageQuality``. A
    blurred image loses its high frequencies, so its slope is lower (more
    negative) than a sharp image of the same scene; CellProfiler recommends it
    as the blur measure. White noise gives about +1; fluorescence sites about -2.
``focus_score`` (``FocusScore``)
    Normalised variance, ``var / mean`` of the image scaled to [0, 1] as
    CellProfiler scales it (integer images divided by their type's maximum).
``percent_maximal`` / ``percent_minimal`` (``PercentMaximal`` / ``PercentMinimal``)
    Percent of the pixels at the image's own maximum / minimum.
``percent_saturated``
    Percent of the pixels at the maximum of the pixel type (65535 for uint16);
    NaN for floating-point images, whose range is not known.
``q01``, ``q25``, ``q50``, ``q75``, ``q99``, ``mean``, ``std``
    Intensity quantiles (the lowest value with at least that fraction of pixels
    at or below it), mean and standard deviation, in the image's own units.
``nan_fraction``
    Fraction of NaN or infinite pixels; the other metrics use the finite pixels
    (the power spectrum fills the others with their mean, as CellProfiler fills
    masked pixels).
``cell_count``
    Cells segmented in the site when known (NaN otherwise).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> image = rng.integers(100, 200, size=(2, 128, 128)).astype(np.uint16)
>>> table = site_quality(image, channels=["DAPI", "GFP"])
>>> list(table["channel"]), table["percent_saturated"].tolist()
(['DAPI', 'GFP'], [0.0, 0.0])
>>> table["power_log_log_slope"].round(0).tolist()   # white noise: ring sums grow with the radius
[1.0, 1.0]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.fft

__all__ = ["QUALITY_METRICS", "focus_score", "power_log_log_slope", "site_quality"]

#: The metric columns of :func:`site_quality`, in order (after ``channel``).
QUALITY_METRICS = (
    "power_log_log_slope",
    "focus_score",
    "percent_maximal",
    "percent_minimal",
    "percent_saturated",
    "q01",
    "q25",
    "q50",
    "q75",
    "q99",
    "mean",
    "std",
    "nan_fraction",
    "cell_count",
)
_QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
_QUANTILE_NAMES = ("q01", "q25", "q50", "q75", "q99")
# Integer types up to this many grey levels are summarised from one histogram (exact and fast).
_HISTOGRAM_LEVELS = 1 << 16


@lru_cache(maxsize=8)
def _spectrum_rings(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each ring of ``centrosome.radial_power_spectrum.rps`` lies in the ``rfft2`` of an image.

    ``rps`` folds the full spectrum with ``min(r, flipped r)`` (so row ``i`` has
    radius ``min(i, Y - 1 - i)``), labels each position ``floor(radius) + 1`` and
    sums the power of the labels 2 to ``floor(min(Y, X) / 8) - 1``. The right half
    of the full spectrum is the mirror of the ``rfft2`` half (``F[i, j] =
    conj(F[-i, -j])``), so each full-spectrum position in those rings maps to one
    ``rfft2`` value. Returns the flat ``rfft2`` index and the ring label of every such
    position, and the labels.
    """
    height, width = shape
    labels = np.arange(2, int(np.floor(min(height, width) / 8.0)))
    if labels.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), labels
    reach = int(labels[-1]) + 1
    rows = np.unique(np.r_[np.arange(min(reach, height)), np.arange(max(height - reach, 0), height)])
    columns = np.unique(np.r_[np.arange(min(reach, width)), np.arange(max(width - reach, 0), width)])
    fold_rows = np.minimum(rows, height - 1 - rows)
    fold_columns = np.minimum(columns, width - 1 - columns)
    ring = np.floor(np.sqrt(fold_rows[:, None] ** 2 + fold_columns[None, :] ** 2)).astype(np.intp) + 1
    half = width // 2 + 1
    source_rows = np.where(columns[None, :] < half, rows[:, None], (height - rows[:, None]) % height)
    source_columns = np.where(columns < half, columns, width - columns)[None, :]
    flat = (source_rows * half + source_columns).astype(np.intp)
    keep = (ring >= labels[0]) & (ring <= labels[-1])
    return flat[keep], ring[keep], labels


def power_log_log_slope(plane: np.ndarray) -> float:
    """CellProfiler's PowerLogLogSlope of one image plane.

    The least-squares slope of ``log(power)`` against ``log(radius)`` over the
    rings of ``centrosome.radial_power_spectrum.rps``. The intensity scaling and
    mean subtraction of ``rps`` change only the zero frequency and the intercept,
    never the slope, so they are left out. NaN when the plane is constant
    (CellProfiler writes 0 there) or smaller than 24 pixels a side.

    Examples
    --------
    >>> from scipy import ndimage
    >>> rng = np.random.default_rng(0)
    >>> sharp = rng.normal(size=(256, 256))
    >>> blurred = ndimage.gaussian_filter(sharp, 2)
    >>> round(power_log_log_slope(sharp), 1), round(power_log_log_slope(blurred), 1)
    (1.1, 0.3)
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ValueError(f"Expected one (Y, X) image plane, got shape {plane.shape}.")
    if not np.ptp(plane) > 0:
        return float("nan")
    return _slope(plane)


def _slope(plane: np.ndarray) -> float:
    """:func:`power_log_log_slope` of a plane known to be finite and not constant."""
    flat, ring, labels = _spectrum_rings(plane.shape)
    if labels.size < 2:
        return float("nan")
    # The mean only sets the zero frequency, which no ring holds.
    spectrum = scipy.fft.rfft2(plane.astype(np.float64, copy=False), workers=1)
    power = np.abs(spectrum.ravel()[flat]) ** 2
    sums = np.bincount(ring - labels[0], weights=power, minlength=labels.size)
    valid = sums > 0
    if valid.sum() < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(labels[valid]), np.log(sums[valid]), 1)
    return float(slope)


def _scale(dtype: np.dtype) -> float:
    """CellProfiler's scaling of a pixel type to [0, 1]: divide integers by their type's maximum."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def focus_score(plane: np.ndarray) -> float:
    """CellProfiler's FocusScore: ``var / mean`` of the plane scaled to [0, 1] (0 when the mean is not positive).

    Examples
    --------
    >>> focus_score(np.array([[0, 65535], [0, 65535]], dtype=np.uint16))
    0.5
    """
    plane = np.asarray(plane)
    values = plane[np.isfinite(plane)] if np.issubdtype(plane.dtype, np.floating) else plane
    if values.size == 0:
        return float("nan")
    values = values.astype(np.float64) / _scale(plane.dtype)
    mean = values.mean()
    return float(values.var() / mean) if mean > 0 else 0.0


def _histogram_summary(plane: np.ndarray) -> dict:
    """Quantiles, moments and extremes of a small-integer plane from one histogram."""
    counts = np.bincount(plane.ravel(), minlength=1)
    levels = np.flatnonzero(counts)
    total = plane.size
    values = np.arange(counts.size, dtype=np.float64)
    mean = float(counts @ values) / total
    variance = float(counts @ (values - mean) ** 2) / total
    cumulative = np.cumsum(counts)
    quantiles = np.searchsorted(cumulative, np.ceil(np.asarray(_QUANTILES) * total))
    top = np.iinfo(plane.dtype).max
    return {
        "low": int(levels[0]), "high": int(levels[-1]), "n_low": int(counts[levels[0]]),
        "n_high": int(counts[levels[-1]]), "n_top": int(counts[top]) if top < counts.size else 0,
        "quantiles": quantiles.astype(np.float64), "mean": mean, "variance": variance,
    }


def _array_summary(values: np.ndarray, dtype: np.dtype) -> dict:
    """The same summary from the finite values of any plane."""
    low, high = values.min(), values.max()
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else None
    return {
        "low": low, "high": high, "n_low": int(np.count_nonzero(values == low)),
        "n_high": int(np.count_nonzero(values == high)),
        "n_top": int(np.count_nonzero(values == top)) if top is not None else None,
        "quantiles": np.quantile(values, _QUANTILES, method="inverted_cdf").astype(np.float64),
        "mean": float(values.mean(dtype=np.float64)), "variance": float(values.var(dtype=np.float64)),
    }


def _plane_quality(plane: np.ndarray) -> dict:
    """The metrics of one ``(Y, X)`` plane (``cell_count`` aside)."""
    dtype = plane.dtype
    row = dict.fromkeys(QUALITY_METRICS, float("nan"))
    finite = np.isfinite(plane) if np.issubdtype(dtype, np.floating) else None
    n_bad = 0 if finite is None else int(plane.size - np.count_nonzero(finite))
    row["nan_fraction"] = n_bad / plane.size if plane.size else float("nan")
    if n_bad == plane.size:
        return row
    small_integer = np.issubdtype(dtype, np.unsignedinteger) and np.iinfo(dtype).max < _HISTOGRAM_LEVELS
    if small_integer:
        summary = _histogram_summary(plane)
    else:
        summary = _array_summary(plane[finite] if n_bad else plane.ravel(), dtype)
    n = plane.size - n_bad
    scale = _scale(dtype)
    mean = summary["mean"]
    row.update(zip(_QUANTILE_NAMES, summary["quantiles"].tolist()))
    row.update(
        mean=mean, std=summary["variance"] ** 0.5,
        focus_score=summary["variance"] / scale / mean if mean > 0 else 0.0,
        percent_maximal=100.0 * summary["n_high"] / n, percent_minimal=100.0 * summary["n_low"] / n,
        percent_saturated=float("nan") if summary["n_top"] is None else 100.0 * summary["n_top"] / n,
    )
    if summary["high"] > summary["low"]:
        row["power_log_log_slope"] = _slope(np.where(finite, plane, mean) if n_bad else plane)
    return row


def site_quality(image: np.ndarray, *, channels: Sequence[str], n_cells: int | None = None) -> pd.DataFrame:
    """Quality metrics of every channel of a site: one row per channel.

    Parameters
    ----------
    image : ndarray
        ``(C, Y, X)`` raw pixels (quality control is meant for images before any
        correction, as CellProfiler advises).
    channels : sequence of str
        The name of each channel.
    n_cells : int, optional
        Cells segmented in the site (the ``cell_count`` column); NaN when not given.

    Returns
    -------
    DataFrame
        ``channel`` then the columns of :data:`QUALITY_METRICS`.

    Raises
    ------
    ValueError
        If the image is not ``(C, Y, X)`` or has another number of channels than names.

    Examples
    --------
    >>> image = np.zeros((1, 64, 64), dtype=np.uint16)
    >>> image[0, :8] = 65535
    >>> row = site_quality(image, channels=["DAPI"], n_cells=3).iloc[0]
    >>> row[["percent_maximal", "percent_saturated", "q99", "cell_count"]].astype(float).tolist()
    [12.5, 12.5, 65535.0, 3.0]
    """
    image = np.asarray(image)
    channels = [str(c) for c in channels]
    if image.ndim != 3:
        raise ValueError(f"Expected a (C, Y, X) site image, got shape {image.shape}.")
    if image.shape[0] != len(channels):
        raise ValueError(
            f"The site image has {image.shape[0]} channel(s) but {len(channels)} name(s) were given "
            f"({', '.join(channels)})."
        )
    rows = []
    for name, plane in zip(channels, image):
        row = _plane_quality(plane)
        row["cell_count"] = float("nan") if n_cells is None else float(n_cells)
        rows.append({"channel": name, **row})
    return pd.DataFrame(rows, columns=["channel", *QUALITY_METRICS])
