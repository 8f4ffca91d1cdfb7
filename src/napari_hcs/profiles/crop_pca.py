"""PCA of the raw crops, the baseline embedding: streamed from the crop store in batches.

Each crop is normalised with its plate's per-channel statistics
(:class:`~napari_hcs.nn.plate_normalisation.PlateNormaliser`), shrunk to a
small side by area averaging (a 68-pixel crop to 32 pixels keeps the cell's
shape and texture at a quarter of the numbers), flattened, and fed to
scikit-learn's :class:`~sklearn.decomposition.IncrementalPCA` one batch at a
time; a second pass projects every crop. Memory holds one batch and the
components, whatever the number of cells.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> crops = rng.normal(size=(40, 2, 12, 12)).astype(np.float32)
>>> crops[20:, 0, 3:9, 3:9] += 4.0
>>> cells = pd.DataFrame({"crop_index": np.arange(40), "plate": "P1"})
>>> blocks, dims, info = crop_pca_blocks(crops, cells, dimensions=3, size=6, batch_size=16)
>>> values = np.concatenate([v for _, v in blocks])
>>> values.shape, dims, info["pixels"]
((40, 3), 3, 72)
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..cancel import check_cancel
from ..vocabulary import CROP_INDEX

__all__ = ["DEFAULT_PCA_SIZE", "crop_pca_blocks", "shrink_crops"]

#: Side the crops are shrunk to before PCA.
DEFAULT_PCA_SIZE = 32


def shrink_crops(batch: np.ndarray, size: int) -> np.ndarray:
    """Area-average ``(n, C, S, S)`` crops to ``(n, C, size, size)`` (no change when ``size >= S``).

    Examples
    --------
    >>> shrink_crops(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), 2)[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    if size >= batch.shape[-1]:
        return np.asarray(batch, dtype=np.float32)
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    return F.interpolate(tensor, size=(size, size), mode="area").numpy()


def _normaliser(cells: pd.DataFrame, crops, normalisation: str, controls: str | None, seed: int, cancel):
    from ..nn.plate_normalisation import PlateNormaliser

    table = cells if normalisation == "plate" else cells.drop(columns=["plate"], errors="ignore")
    return PlateNormaliser.fit(table, crops, controls=controls if normalisation == "plate" else None,
                               seed=seed, cancel=cancel)


def crop_pca_blocks(crops, cells: pd.DataFrame, *, dimensions: int = 50, size: int = DEFAULT_PCA_SIZE,
                    normalisation: str = "plate", controls: str | None = None, seed: int = 0,
                    batch_size: int = 256, progress: Callable[[int, int], None] | None = None,
                    cancel=None) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int, dict]:
    """Fit an incremental PCA of the crops; return the projected blocks, their dimensions and notes.

    Parameters
    ----------
    crops : zarr.Array or ndarray
        The ``(N, C, S, S)`` crop store.
    cells : DataFrame
        The cells to embed: ``crop_index``, ``plate`` (and the controls column).
    dimensions : int
        Components kept (at most the number of cells and of pixels).
    size : int
        Side the crops are shrunk to.
    normalisation : {"plate", "global"}
        Each plate by its own statistics (its control cells' with ``controls``), or one for all.
    controls : str, optional
        ``"COLUMN=VALUE"`` of each plate's control cells.
    seed : int
        Seed of the cells sampled for the plate statistics.
    batch_size : int
        Crops per batch (at least ``dimensions``). Each partial fit costs about
        ``(batch + dimensions)**2 * pixels``, so batches of a few times
        ``dimensions`` are the quickest overall.
    progress : callable, optional
        ``progress(done, 2 * N)`` after each batch of either pass.
    cancel : callable or threading.Event, optional
        Checked before each batch.

    Returns
    -------
    blocks : iterator of (crop_index, values)
        The second pass, lazily (it reads the store again).
    dimensions : int
    info : dict
        ``size``, ``pixels`` (numbers per crop), ``explained_variance`` (fraction kept).
    """
    from sklearn.decomposition import IncrementalPCA

    from ..nn.crop_reader import CropReader

    crop_index = cells[CROP_INDEX].to_numpy(dtype=np.int64)
    n = len(crop_index)
    side = min(int(size), int(crops.shape[-1]))
    pixels = int(crops.shape[1]) * side * side
    dimensions = int(min(dimensions, n, pixels))
    batch_size = max(int(batch_size), dimensions)
    reader = CropReader(crops, cache_chunks=2, normalise=_normaliser(cells, crops, normalisation, controls,
                                                                     seed, cancel))
    pca = IncrementalPCA(n_components=dimensions)
    held, done = None, 0
    for positions, batch in reader.iter_batches(crop_index, batch_size):
        check_cancel(cancel, "The PCA of the crops was cancelled; nothing was stored.")
        rows = shrink_crops(batch, side).reshape(len(batch), -1)
        # Every partial fit needs at least `dimensions` rows: a batch is fitted when the next one
        # arrives, and a short last batch joins the one before it.
        if held is not None and len(rows) >= dimensions:
            pca.partial_fit(held)
            held = rows
        else:
            held = rows if held is None else np.concatenate([held, rows])
        done += len(positions)
        if progress is not None:
            progress(done, 2 * n)
    pca.partial_fit(held)
    info = {"size": side, "pixels": pixels, "explained_variance": float(pca.explained_variance_ratio_.sum())}
    return _project(reader, pca, crop_index, batch_size, side, progress, cancel), dimensions, info


def _project(reader, pca, crop_index: np.ndarray, batch_size: int, side: int, progress, cancel):
    n, done = len(crop_index), 0
    for positions, batch in reader.iter_batches(crop_index, batch_size):
        check_cancel(cancel, "The PCA of the crops was cancelled; nothing was stored.")
        values = pca.transform(shrink_crops(batch, side).reshape(len(batch), -1))
        done += len(positions)
        if progress is not None:
            progress(n + done, 2 * n)
        yield crop_index[positions], values.astype(np.float32)
