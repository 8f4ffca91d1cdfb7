"""Texture of every region and channel: Haralick (GLCM) and Hessian (SER) features.

**GLCM.** Each region's pixels are quantised to ``levels`` grey levels over the
region's own min..max range, so texture does not depend on brightness. A
symmetric co-occurrence matrix counts the pixel pairs at offsets ``(0, d)``,
``(-d, d)``, ``(-d, 0)`` and ``(-d, -d)`` (0, 45, 90 and 135 degrees) whose two
pixels lie in the region; its Haralick features are averaged over the 4 angles.
At ``d = 1`` they equal :func:`skimage.feature.graycoprops` on the same
quantised region. All regions are counted at once: one ``bincount`` of the pair
codes ``region * L**2 + level_i * L + level_j`` per channel and offset.

**SER.** Spot, hole, edge, ridge, valley and saddle responses of the
scale-normalised gradient and Hessian of the Gaussian-smoothed image
(:func:`ser_features`), averaged over the region and divided by its mean
intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .naming import GLCM_FEATURES, SER_FEATURES
from .regions import Regions, safe_divide

__all__ = ["Derivatives", "derivatives", "glcm_features", "haralick", "ser_features"]

#: Pixel offsets (dy, dx) of the four GLCM angles 0, 45, 90 and 135 degrees.
ANGLE_STEPS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))


def _quantise(values: np.ndarray, low: np.ndarray, high: np.ndarray, regions: Regions, levels: int) -> np.ndarray:
    """Quantise each region's pixels of one channel to ``0 .. levels - 1`` over its own range."""
    low_px = low.astype(np.float32)[regions.row]
    scale = safe_divide(levels, high - low).astype(np.float32)[regions.row]
    quantised = ((values - low_px) * scale).astype(np.int32)
    return np.clip(quantised, 0, levels - 1, out=quantised)


def haralick(matrices: np.ndarray, levels: int) -> dict[str, np.ndarray]:
    """Haralick features of symmetric co-occurrence counts ``(n, L, L)``.

    Examples
    --------
    >>> flat = np.zeros((1, 4, 4)); flat[0, 2, 2] = 8
    >>> {name: float(value[0]) for name, value in haralick(flat, 4).items()}
    {'contrast': 0.0, 'homogeneity': 1.0, 'energy': 1.0, 'correlation': 0.0, 'asm': 1.0, 'dissimilarity': 0.0}
    """
    n = len(matrices)
    totals = matrices.sum(axis=(1, 2))
    p = safe_divide(matrices.reshape(n, -1), totals[:, None])
    i, j = np.indices((levels, levels)).reshape(2, -1).astype(np.float64)
    weights = np.stack([(i - j) ** 2, np.abs(i - j), 1.0 / (1.0 + (i - j) ** 2), i * j], axis=1)
    contrast, dissimilarity, homogeneity, products = (p @ weights).T
    asm = np.einsum("nk,nk->n", p, p)
    marginal = p.reshape(n, levels, levels).sum(axis=2)
    grey = np.arange(levels, dtype=np.float64)
    mu = marginal @ grey
    variance = marginal @ grey**2 - mu**2
    correlation = safe_divide(products - mu**2, np.where(variance > 1e-12, variance, 0.0))
    return {
        "contrast": contrast,
        "homogeneity": homogeneity,
        "energy": np.sqrt(asm),
        "correlation": correlation,
        "asm": asm,
        "dissimilarity": dissimilarity,
    }


def glcm_features(
    values: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    regions: Regions,
    *,
    scales: tuple[int, ...],
    levels: int,
) -> dict[tuple[str, int], np.ndarray]:
    """GLCM features per (feature, distance): arrays ``(C, n)`` averaged over 4 angles.

    Parameters
    ----------
    values : ndarray, shape (C, m)
        Pixel values of the regions (:meth:`Regions.gather`).
    low, high : ndarray, shape (C, n)
        Minimum and maximum of each region and channel: the quantisation range.
    regions : Regions
        The regions the pixels belong to.
    scales : tuple of int
        Pair distances in pixels.
    levels : int
        Number of grey levels.
    """
    n_channels = len(values)
    out = {(name, d): np.zeros((n_channels, regions.n)) for name in GLCM_FEATURES for d in scales}
    if not len(regions.flat):
        return out
    index_type = np.int32 if regions.n * levels * levels < 2**31 else np.int64
    quantised = [_quantise(values[c], low[c], high[c], regions, levels).astype(index_type) for c in range(n_channels)]
    base = regions.row.astype(index_type) * (levels * levels)
    # Code of a pair = region * L^2 + first level * L + second level.
    firsts = [base + q * levels for q in quantised]
    for d in scales:
        for step_y, step_x in ANGLE_STEPS:
            i, j = regions.pairs(step_y * d, step_x * d)
            for c in range(n_channels):
                codes = firsts[c][i] + quantised[c][j]
                counts = np.bincount(codes, minlength=regions.n * levels * levels)
                counts = counts.reshape(regions.n, levels, levels).astype(np.float64)
                props = haralick(counts + counts.transpose(0, 2, 1), levels)
                for name, value in props.items():
                    out[(name, d)][c] += value / len(ANGLE_STEPS)
    return out


@dataclass
class Derivatives:
    """Gradient and Hessian of a Gaussian-smoothed ``(B, H, W)`` stack."""

    gy: np.ndarray
    gx: np.ndarray
    hyy: np.ndarray
    hxy: np.ndarray
    hxx: np.ndarray


def derivatives(stack: np.ndarray, sigma: float) -> Derivatives:
    """Gradient and Hessian (finite differences) of each plane smoothed by a Gaussian of ``sigma``."""
    smooth = ndi.gaussian_filter(stack.astype(np.float32, copy=False), sigma=(0, sigma, sigma))
    gy, gx = np.gradient(smooth, axis=(1, 2))
    hyy, hxy = np.gradient(gy, axis=(1, 2))
    hxx = np.gradient(gx, axis=2)
    return Derivatives(gy, gx, hyy, hxy, hxx)


def ser_features(
    derivatives: Derivatives, mean_intensity: np.ndarray, regions: Regions, sigma: float
) -> dict[str, np.ndarray]:
    """Spot, hole, edge, ridge, valley and saddle responses of one channel, per region.

    The Hessian eigenvalues ``l1 <= l2`` (scale-normalised by ``sigma**2``) give
    spot ``max(0, -l2)`` (bright blob: both negative), hole ``max(0, l1)`` (dark
    blob), ridge ``max(0, -l1 - |l2|)`` (bright line), valley ``max(0, l2 - |l1|)``
    (dark line) and saddle ``max(0, min(-l1, l2))``; edge is the scale-normalised
    gradient magnitude. Each is averaged over the region and divided by the
    region's mean intensity, so it does not depend on the stain's brightness.
    """
    hyy, hxy, hxx = (regions.gather(a) for a in (derivatives.hyy, derivatives.hxy, derivatives.hxx))
    gy, gx = regions.gather(derivatives.gy), regions.gather(derivatives.gx)
    half_trace = (hxx + hyy) / 2
    radius = np.sqrt(((hxx - hyy) / 2) ** 2 + hxy**2)
    l1, l2 = half_trace - radius, half_trace + radius
    responses = {
        "spot": np.maximum(0, -l2),
        "hole": np.maximum(0, l1),
        "edge": np.hypot(gx, gy),
        "ridge": np.maximum(0, -l1 - np.abs(l2)),
        "valley": np.maximum(0, l2 - np.abs(l1)),
        "saddle": np.maximum(0, np.minimum(-l1, l2)),
    }
    # Every response scales linearly with the derivatives, so the scale
    # normalisation (sigma for the gradient, sigma**2 for the Hessian) is applied to the means.
    scales = {kind: sigma**2 for kind in SER_FEATURES} | {"edge": sigma}
    brightness = np.abs(mean_intensity)
    return {
        kind: scales[kind] * safe_divide(regions.mean(responses[kind]), brightness) for kind in SER_FEATURES
    }
