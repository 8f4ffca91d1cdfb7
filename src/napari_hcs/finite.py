"""The one policy for NaN and infinite values.

- **Images** (a site's pixels, a channel given to segmentation or measurement):
  non-finite pixels are background. :func:`finite_image` replaces them with the
  lowest finite value of their plane and says how many, in which plane.
- **Crops** (stored, imported, or fed to a network) must be finite:
  :func:`require_finite` refuses them, naming what holds them, because a crop
  cannot be repaired without its site.
- **Feature values** that cannot be computed (texture of a one-pixel region, a
  ratio over zero) are 0 in the cell store: :func:`finite_features` sets them and
  says how many. Tables that arrive with NaN (imported features) are imputed
  with the training medians by the classical classifiers.

Examples
--------
>>> import numpy as np
>>> image = np.array([[[1.0, np.nan], [3.0, 4.0]]])
>>> fixed, notes = finite_image(image, names=["DAPI"])
>>> float(fixed[0, 0, 1]), notes
(1.0, ['1 NaN or infinite pixel(s) in channel DAPI treated as background.'])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["finite_features", "finite_image", "require_finite"]


def finite_image(image: np.ndarray, *, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Return the image with non-finite pixels set to background, and notes.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` or ``(C, Y, X)`` pixels. Integer images are returned as they are.
    names : sequence of str, optional
        Name of each plane (channel) for the notes.

    Returns
    -------
    image : ndarray
        The same array when every pixel is finite, else a copy.
    notes : list of str
        One note per plane that had non-finite pixels.
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        return image, []
    planes = image if image.ndim == 3 else image[np.newaxis]
    bad = ~np.isfinite(planes)
    if not bad.any():
        return image, []
    fixed = planes.copy()
    notes = []
    for index, (plane, plane_bad) in enumerate(zip(fixed, bad)):
        n_bad = int(plane_bad.sum())
        if not n_bad:
            continue
        finite = plane[~plane_bad]
        plane[plane_bad] = finite.min() if finite.size else 0
        name = f"channel {names[index]}" if names else f"plane {index}"
        notes.append(f"{n_bad} NaN or infinite pixel(s) in {name} treated as background.")
    return (fixed if image.ndim == 3 else fixed[0]), notes


def require_finite(array: np.ndarray, *, what: str) -> None:
    """Raise ValueError naming ``what`` when a float array holds NaN or infinite values.

    Examples
    --------
    >>> require_finite(np.array([np.inf]), what="crops 0 to 9 of crops.npz")
    Traceback (most recent call last):
    ...
    ValueError: crops 0 to 9 of crops.npz hold 1 NaN or infinite value(s); expected finite values.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{what} must hold real numbers; got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating):
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        if n_bad:
            raise ValueError(f"{what} hold {n_bad} NaN or infinite value(s); expected finite values.")


def finite_features(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return the feature table with non-finite values set to 0, and a note.

    Examples
    --------
    >>> table, notes = finite_features(pd.DataFrame({"feat_a": [1.0, np.nan]}))
    >>> table["feat_a"].tolist(), notes
    ([1.0, 0.0], ['1 feature value(s) were NaN or infinite and were set to 0.'])
    """
    numeric = table.select_dtypes(include="number")
    bad = ~np.isfinite(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    if not bad.any():
        return table, []
    fixed = table.copy()
    fixed[numeric.columns] = numeric.mask(pd.DataFrame(bad, index=numeric.index, columns=numeric.columns), 0.0)
    return fixed, [f"{int(bad.sum())} feature value(s) were NaN or infinite and were set to 0."]
