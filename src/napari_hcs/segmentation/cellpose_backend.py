"""The optional cellpose backend: nuclei and cells predicted by local cellpose weights.

It follows the cellpose 4 API (``CellposeModel(gpu=, device=, pretrained_model=)``
and ``model.eval(x, diameter=, channel_axis=)``). The model is built once per
process for given weights and device, and runs on the device
:func:`napari_hcs.nn.device.resolve_device` picks (a GPU when there is one).
napari-hcs does not depend on cellpose.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ._images import as_float_image
from ._labels import checked_labels, relabel
from .cells import expand_nuclei
from .nuclei import estimate_diameter

if TYPE_CHECKING:
    from .params import SegmentationParams

__all__ = ["CELLPOSE_MISSING", "cellpose_model", "segment_site_cellpose"]

CELLPOSE_MISSING = "cellpose is not installed; pip install cellpose and provide local model weights"

_LOADING = threading.Lock()


def cellpose_model(weights: str | None, *, device: str = "auto"):
    """Return the cellpose model of local ``weights`` on ``device``, built once per process.

    Parameters
    ----------
    weights : str
        Path of a weights file, or the name of a model in cellpose's model folder.
    device : str
        A device name for :func:`napari_hcs.nn.device.resolve_device`.

    Raises
    ------
    RuntimeError
        If cellpose is not installed.
    ValueError
        If no weights are given.
    """
    try:
        import cellpose.models  # noqa: F401
    except ImportError as error:
        raise RuntimeError(CELLPOSE_MISSING) from error
    if not weights:
        raise ValueError(
            "backend='cellpose' needs local model weights: set cellpose_model to the path of "
            "a weights file (or the name of a model stored in cellpose's model folder)."
        )
    from ..nn import resolve_device

    with _LOADING:
        return _load_model(str(weights), str(resolve_device(device)))


@lru_cache(maxsize=4)
def _load_model(weights: str, device_name: str):
    import torch
    from cellpose import models

    device = torch.device(device_name)
    return models.CellposeModel(gpu=device.type != "cpu", device=device, pretrained_model=weights)


def segment_site_cellpose(
    image: np.ndarray, params: SegmentationParams, *, nuclei_index: int, cell_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Nuclei (and cells, with a cell channel) of a ``(C, Y, X)`` site predicted by cellpose.

    The nuclei channel alone gives the nuclei; the cell and nuclei channels
    together give the cells, renumbered to the ids of their nuclei. Without a
    cell channel the nuclei are grown by ``params.cell_expansion`` pixels.
    """
    model = cellpose_model(params.cellpose_model)
    nuclei_pixels = as_float_image(image[nuclei_index], "nuclei channel")
    nuclei = model.eval(nuclei_pixels[..., np.newaxis], diameter=params.diameter, channel_axis=-1)[0]
    nuclei = checked_labels(np.asarray(nuclei), "cellpose nuclei")
    if params.exclude_border:
        from skimage.segmentation import clear_border

        nuclei = clear_border(nuclei)
    nuclei = relabel(nuclei)
    if cell_index is None:
        diameter = params.diameter or estimate_diameter(nuclei_pixels)
        expansion = params.cell_expansion if params.cell_expansion is not None else 0.5 * diameter
        return nuclei, expand_nuclei(nuclei, expansion)
    cell_pixels = as_float_image(image[cell_index], "cell channel")
    both = np.stack([cell_pixels, nuclei_pixels], axis=-1)
    cells = checked_labels(np.asarray(model.eval(both, diameter=None, channel_axis=-1)[0]), "cellpose cells")
    return nuclei, _cells_with_nucleus_ids(cells, nuclei)


def _cells_with_nucleus_ids(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """Renumber predicted cells to the id of the nucleus they overlap most.

    Cells without a nucleus are dropped; a nucleus without a cell keeps its
    own pixels as its cell.
    """
    n_cells = int(cells.max()) + 1
    n_nuclei = int(nuclei.max()) + 1
    both = (cells > 0) & (nuclei > 0)
    overlap = np.bincount(
        cells[both].astype(np.int64) * n_nuclei + nuclei[both], minlength=n_cells * n_nuclei
    ).reshape(n_cells, n_nuclei)
    owner = overlap.argmax(axis=1)
    # Each nucleus goes to the one cell that overlaps it most.
    best_cell = overlap.argmax(axis=0)
    keep = (overlap.max(axis=1) > 0) & (best_cell[owner] == np.arange(n_cells))
    owner = np.where(keep, owner, 0)
    result = owner[cells].astype(np.int32)
    result[nuclei > 0] = nuclei[nuclei > 0]
    return result
