"""Grey images going into segmentation: input checks, smoothing and thresholds."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage as ndi

from ..finite import finite_image
from ..vocabulary import THRESHOLD_METHODS


def as_float_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return a float32 copy of a 2D image with non-finite pixels set to background.

    Background is the lowest finite value (:func:`napari_hcs.finite.finite_image`);
    a warning says how many pixels were replaced.

    Raises
    ------
    ValueError
        If the image is not 2D or does not hold real numbers.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     pixels = as_float_image(np.array([[2, 5], [np.nan, 9]]))
    >>> pixels.dtype, float(pixels[1, 0])
    (dtype('float32'), 2.0)
    >>> str(caught[0].message)
    '1 NaN or infinite pixel(s) in the image treated as background.'
    """
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(
            f"The {what} must be a 2D (Y, X) grey image; got shape {array.shape}. "
            "Pick one channel of a multichannel image first."
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"The {what} must hold real numbers; got dtype {array.dtype}.")
    pixels = array.astype(np.float32, copy=True)
    fixed, notes = finite_image(pixels)
    if notes:
        n_bad = int(np.count_nonzero(~np.isfinite(pixels)))
        warnings.warn(
            f"{n_bad} NaN or infinite pixel(s) in the {what} treated as background.", stacklevel=3
        )
    return fixed


def is_flat(image: np.ndarray) -> bool:
    """Return True when the image is empty or all its pixels are equal."""
    return image.size == 0 or float(image.max()) == float(image.min())


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (``sigma`` in pixels); ``sigma <= 0`` returns the image."""
    if sigma <= 0:
        return image
    return ndi.gaussian_filter(image, sigma, mode="nearest")


def threshold_of(image: np.ndarray, method: str, value: float | None) -> float:
    """Return the automatic (or manual) foreground threshold of an image.

    Parameters
    ----------
    image : ndarray
        Pixels to threshold (any shape).
    method : {'otsu', 'li', 'triangle', 'manual'}
        Automatic method, or 'manual' to use ``value``.
    value : float, optional
        The threshold for ``method='manual'``; must be None otherwise.

    Examples
    --------
    >>> 1.0 <= threshold_of(np.array([1.0, 1.0, 9.0, 9.0]), "otsu", None) < 9.0
    True
    >>> threshold_of(np.zeros(3), "manual", 4)
    4.0
    """
    from skimage import filters

    check_threshold(method, value)
    if method == "manual":
        return float(value)
    function = {
        "otsu": filters.threshold_otsu,
        "li": filters.threshold_li,
        "triangle": filters.threshold_triangle,
    }[method]
    return float(function(image))


def check_threshold(method: str, value: float | None) -> None:
    """Raise ValueError unless ``method`` is a threshold method and ``value`` fits it."""
    if method not in THRESHOLD_METHODS:
        raise ValueError(
            f"Unknown threshold method {method!r}; choose one of {', '.join(THRESHOLD_METHODS)}."
        )
    if method == "manual" and value is None:
        raise ValueError("threshold='manual' needs threshold_value (an intensity).")
    if method != "manual" and value is not None:
        raise ValueError(
            f"threshold_value is only used with threshold='manual' (got threshold={method!r})."
        )


def background_level(smoothed: np.ndarray, threshold: float) -> float:
    """Median of the pixels below the threshold (the lowest pixel when there are none)."""
    below = smoothed[smoothed < threshold]
    return float(np.median(below)) if below.size else float(smoothed.min())


def disc_area(diameter: float) -> float:
    """Area in pixels of a disc of the given diameter."""
    return float(np.pi * (diameter / 2.0) ** 2)
