"""Features of a segmented site: every nucleus, and its cell.

:func:`measure_cells` measures shape, intensity, texture and neighbourhood of
every nucleus of a ``(C, Y, X)`` site and of the cell carrying the nucleus's
label: one row per nucleus label.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ..finite import finite_image
from .compartments import MeasureOptions, as_frame, in_compartment, measure_compartments
from .neighbourhood import neighbourhood_features, touching_fraction
from .regions import Regions
from .shape import shape_features

__all__ = ["measure_cells"]


def _checked_image(image_cyx, channel_names: Sequence[str]) -> np.ndarray:
    image = np.asarray(image_cyx)
    if image.ndim == 2:
        image = image[np.newaxis]
    if image.ndim != 3:
        raise ValueError(f"The image must be (C, Y, X) or (Y, X); got shape {image.shape}.")
    if len(channel_names) != image.shape[0]:
        raise ValueError(
            f"The image has {image.shape[0]} channel(s) but {len(channel_names)} channel name(s) "
            f"were given: {list(channel_names)}."
        )
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise ValueError(f"The image must hold real numbers; got dtype {image.dtype}.")
    image, notes = finite_image(image, names=[str(c) for c in channel_names])
    for note in notes:
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    return image


def _checked_labels(labels, shape: tuple[int, int], what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ValueError(f"The {what} labels have shape {labels.shape}; the image is {shape} (Y, X).")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"The {what} labels must be integers (0 = background); got dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"The {what} labels hold negative values; expected 0 (background) and ids > 0.")
    return labels


def measure_cells(
    image_cyx,
    nuclei,
    cells=None,
    *,
    channel_names: Sequence[str],
    texture_scales: Sequence[int] = (1, 2),
    glcm_levels: int = 32,
    ser_sigma: float = 2.0,
    density_radius: float | None = None,
) -> pd.DataFrame:
    """Measure shape, intensity, texture and neighbourhood of every nucleus and its cell.

    Parameters
    ----------
    image_cyx : array_like
        ``(C, Y, X)`` image of the site (a ``(Y, X)`` image is one channel).
        NaN or infinite pixels are background (the lowest finite value of their
        channel), with a :class:`RuntimeWarning` naming the channel.
    nuclei : array_like of int
        ``(Y, X)`` nucleus labels, 0 = background.
    cells : array_like of int, optional
        ``(Y, X)`` cell labels, where the cell of nucleus ``k`` carries label
        ``k``. When None, the cell features are the nucleus features. A nucleus
        without a cell gets its nucleus values as cell values (and a touching
        fraction of 0).
    channel_names : sequence of str
        One name per channel; used in the column names.
    texture_scales : sequence of int
        GLCM distances in pixels (one column set per distance, ``_s<d>``).
    glcm_levels : int
        Grey levels each object's own intensity range is quantised to for GLCM.
    ser_sigma : float
        Gaussian scale (pixels) of the Hessian for the SER features.
    density_radius : float, optional
        Radius (pixels) of the local density count; default 5 x the median
        nucleus diameter (equivalent-circle) of the site.

    Returns
    -------
    DataFrame
        One row per nucleus label id (column ``label``, ascending) and float32
        ``feat_*`` columns (see :mod:`napari_hcs.features.naming`); no NaN.

    Raises
    ------
    ValueError
        If shapes, dtypes, channel names or options do not fit.

    Examples
    --------
    >>> image = np.zeros((1, 20, 20), np.float32)
    >>> nuclei = np.zeros((20, 20), np.int32)
    >>> nuclei[2:6, 2:6], nuclei[10:16, 8:12] = 1, 2
    >>> image[0][nuclei > 0] = 5.0
    >>> table = measure_cells(image, nuclei, channel_names=["DAPI"])
    >>> table.shape
    (2, 72)
    >>> table[["label", "feat_nucleus_area", "feat_cell_mean_DAPI", "feat_neighbourhood_count"]]
       label  feat_nucleus_area  feat_cell_mean_DAPI  feat_neighbourhood_count
    0      1               16.0                  5.0                       1.0
    1      2               24.0                  5.0                       1.0
    """
    image = _checked_image(image_cyx, channel_names)
    nuclei = _checked_labels(nuclei, image.shape[1:], "nucleus")
    if cells is not None:
        cells = _checked_labels(cells, image.shape[1:], "cell")
    options = MeasureOptions.checked(
        channel_names, texture_scales=texture_scales, glcm_levels=glcm_levels, ser_sigma=ser_sigma
    )
    ids = np.unique(nuclei)
    ids = ids[ids > 0]
    nucleus_regions = Regions(nuclei[np.newaxis], ids)
    nucleus_shape, centroids = shape_features(nucleus_regions)
    compartments = {"nucleus": nucleus_regions}
    if cells is not None:
        compartments["cell"] = Regions(cells[np.newaxis], ids)
    measured = measure_compartments(image[:, np.newaxis], compartments, options)

    columns = {f"feat_nucleus_{k}": v for k, v in nucleus_shape.items()}
    columns.update(in_compartment(measured, "nucleus"))
    if cells is None:
        columns.update({k.replace("feat_nucleus_", "feat_cell_", 1): v for k, v in columns.items()})
        touching = touching_fraction(nuclei, ids)
    else:
        columns.update(_cell_columns(compartments["cell"], measured, columns))
        touching = touching_fraction(cells, ids)
        touching[compartments["cell"].empty] = 0.0
    columns.update(neighbourhood_features(centroids, nucleus_shape["area"], density_radius))
    columns["feat_cell_touching_fraction"] = touching
    return as_frame(columns, "label", ids)


def _cell_columns(
    cell_regions: Regions, measured: dict[str, np.ndarray], nucleus_columns: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Cell columns; a nucleus without cell pixels gets its nucleus values."""
    cell_shape, _ = shape_features(cell_regions)
    cell_columns = {f"feat_cell_{k}": v for k, v in cell_shape.items()}
    cell_columns.update(in_compartment(measured, "cell"))
    missing = cell_regions.empty
    for name, values in cell_columns.items():
        values[missing] = nucleus_columns[name.replace("feat_cell_", "feat_nucleus_", 1)][missing]
    return cell_columns
