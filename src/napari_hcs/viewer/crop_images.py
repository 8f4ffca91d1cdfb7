"""Cell crops composed into RGB pictures, as the image layers draw them.

A gallery of crops should look like the cells in the viewer: each channel is
scaled by its layer's contrast limits (and gamma), tinted with its layer's
colormap and the channels are added, as napari's additive blending does.
:func:`compose_crops` does this for a whole stack at once.

Examples
--------
>>> crops = np.zeros((2, 2, 4, 4), dtype=np.uint16)
>>> crops[:, 0] = 100
>>> rgb = compose_crops(crops, colormaps=["blue", "green"], contrast_limits=[(0, 100), (0, 1)])
>>> rgb.shape, rgb[0, 0, 0].tolist()
((2, 4, 4, 3), [0, 0, 255])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.colors import to_rgb

__all__ = ["COLORMAP_RGB", "colormap_rgb", "compose_crop", "compose_crops"]

#: RGB of the napari colormaps given to channels (``viewer.layers.channel_colormap``).
COLORMAP_RGB: dict[str, tuple[float, float, float]] = {
    "gray": (1.0, 1.0, 1.0),
    "grey": (1.0, 1.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
}


def colormap_rgb(colormap) -> tuple[float, float, float]:
    """Return the RGB (0-1) that a channel colormap reaches at its top.

    Parameters
    ----------
    colormap : str, tuple or colormap object
        A colormap name of :data:`COLORMAP_RGB` (``"blue"``, ``"gray"``, ...),
        a colour (``"#ff8800"``), an ``(r, g, b)`` tuple (0-1, or 0-255 when a
        value is above 1) or an object with ``colors`` (a napari colormap: its
        last colour) and perhaps a ``name``.

    Raises
    ------
    ValueError
        If the name is neither a known colormap nor a colour (the message
        lists the known names).

    Examples
    --------
    >>> colormap_rgb("magenta"), colormap_rgb("#ff0000"), colormap_rgb((0, 51, 255))
    ((1.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 0.2, 1.0))
    """
    colors = getattr(colormap, "colors", None)
    if colors is not None:
        last = np.asarray(colors, dtype=float).reshape(-1, np.shape(colors)[-1])[-1]
        return float(last[0]), float(last[1]), float(last[2])
    if isinstance(colormap, str):
        name = colormap.strip().lower()
        if name in COLORMAP_RGB:
            return COLORMAP_RGB[name]
        try:
            return tuple(float(v) for v in to_rgb(name))
        except ValueError:
            known = ", ".join(COLORMAP_RGB)
            raise ValueError(f"Unknown channel colormap {colormap!r}: expected one of {known}, "
                             f"a colour such as '#ff8800' or an (r, g, b) tuple.") from None
    rgb = np.asarray(colormap, dtype=float).reshape(-1)
    if rgb.size not in (3, 4) or not np.all(np.isfinite(rgb)) or (rgb < 0).any():
        raise ValueError(f"A channel colour must be (r, g, b) with values from 0 to 1 (or 0 to 255); "
                         f"got {colormap!r}.")
    rgb = rgb[:3] / 255.0 if rgb[:3].max() > 1.0 else rgb[:3]
    return float(rgb[0]), float(rgb[1]), float(rgb[2])


def _per_channel(values, n_channels: int, what: str) -> list:
    values = list(values)
    if len(values) != n_channels:
        raise ValueError(f"Got {len(values)} {what} for {n_channels} channel(s); give one per channel.")
    return values


def _gammas(gamma, n_channels: int) -> np.ndarray:
    if gamma is None:
        return np.ones(n_channels, dtype=np.float32)
    if np.ndim(gamma) == 0:
        return np.full(n_channels, float(gamma), dtype=np.float32)
    return np.asarray(_per_channel(gamma, n_channels, "gamma values"), dtype=np.float32)


def compose_crops(crops: np.ndarray, *, colormaps: Sequence, contrast_limits: Sequence[tuple[float, float]],
                  gamma: float | Sequence[float] | None = None) -> np.ndarray:
    """Compose a stack of multi-channel crops into RGB pictures, additively.

    Parameters
    ----------
    crops : ndarray
        ``(N, C, S, S)`` crops (any numeric dtype).
    colormaps : sequence
        One colormap per channel (see :func:`colormap_rgb`).
    contrast_limits : sequence of (float, float)
        ``(low, high)`` per channel: low is black, high the full colour.
    gamma : float or sequence of float, optional
        Gamma per channel (or one for all), applied after the contrast limits.

    Returns
    -------
    ndarray
        ``(N, S, S, 3)`` uint8, the sum of the tinted channels clipped to 255.

    Raises
    ------
    ValueError
        If the crops are not 4-D or the number of colormaps, contrast limits
        or gammas is not the number of channels.
    """
    stack = np.asarray(crops)
    if stack.ndim != 4:
        raise ValueError(f"Expected crops of shape (N, C, S, S); got shape {stack.shape}.")
    n_channels = stack.shape[1]
    rgb = np.array([colormap_rgb(c) for c in _per_channel(colormaps, n_channels, "colormaps")],
                   dtype=np.float32).reshape(n_channels, 3)
    limits = np.asarray(_per_channel(contrast_limits, n_channels, "contrast limits"), dtype=np.float32)
    low, high = limits[:, 0], limits[:, 1]
    inverse_span = (1.0 / np.where(high > low, high - low, 1.0)).astype(np.float32)
    scaled = stack.astype(np.float32)  # a copy: scaled in place below
    scaled -= low[None, :, None, None]
    scaled *= inverse_span[None, :, None, None]
    np.clip(scaled, 0.0, 1.0, out=scaled)
    gammas = _gammas(gamma, n_channels)
    for channel in np.flatnonzero(gammas != 1.0):
        np.power(scaled[:, channel], gammas[channel], out=scaled[:, channel])
    composed = np.matmul(scaled.transpose(0, 2, 3, 1), rgb * np.float32(255.0))
    return np.clip(composed + 0.5, 0.0, 255.0).astype(np.uint8)


def compose_crop(crop: np.ndarray, *, colormaps: Sequence, contrast_limits: Sequence[tuple[float, float]],
                 gamma: float | Sequence[float] | None = None) -> np.ndarray:
    """Compose one ``(C, S, S)`` crop into an ``(S, S, 3)`` uint8 picture (see :func:`compose_crops`).

    Examples
    --------
    >>> crop = np.stack([np.full((2, 2), 50.0), np.full((2, 2), 100.0)])
    >>> compose_crop(crop, colormaps=["magenta", "green"], contrast_limits=[(0, 100), (0, 100)])[0, 0].tolist()
    [128, 255, 128]
    """
    image = np.asarray(crop)
    if image.ndim != 3:
        raise ValueError(f"Expected a crop of shape (C, S, S); got shape {image.shape}.")
    return compose_crops(image[None], colormaps=colormaps, contrast_limits=contrast_limits, gamma=gamma)[0]
