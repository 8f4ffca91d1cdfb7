"""Reading crops by index from a chunked crop store, decoding each chunk once.

The crop store (``crops.zarr``, ``(N, C, S, S)``) is compressed in chunks of
many cells, so reading one cell decodes its whole chunk. :class:`CropReader`
serves arbitrary rows through a small cache of decoded chunks, and every crop
it returns has passed :func:`check_finite_crops`, the one NaN check of crops on
their way to a network.

Examples
--------
>>> crops = np.arange(4 * 1 * 2 * 2, dtype=np.float32).reshape(4, 1, 2, 2)
>>> CropReader(crops).read([2, 0]).shape
(2, 1, 2, 2)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Iterator

import numpy as np
import zarr

from ..chunks import read_checked

__all__ = ["CropReader", "check_finite_crops", "chunk_rows"]


def chunk_rows(crops) -> int | None:
    """Cells per storage chunk of a zarr crop array; None for in-memory arrays.

    Examples
    --------
    >>> chunk_rows(np.zeros((10, 1, 4, 4))) is None
    True
    """
    if isinstance(crops, np.ndarray):
        return None
    chunks = getattr(crops, "chunks", None)
    if not chunks or not isinstance(chunks[0], (int, np.integer)):
        return None
    return int(chunks[0])


def check_finite_crops(batch: np.ndarray, crop_indices, describe: Callable[[int], str] | None = None) -> None:
    """Raise ValueError naming the first crop of ``batch`` that holds NaN or infinite pixels.

    Parameters
    ----------
    batch : ndarray
        ``(B, C, S, S)`` crops; integer crops are always finite.
    crop_indices : array of int
        Crop store row of each crop of ``batch``.
    describe : callable, optional
        ``describe(crop_index) -> str`` naming the cell (plate, well, site ...).

    Examples
    --------
    >>> batch = np.zeros((2, 1, 2, 2), dtype=np.float32)
    >>> batch[1, 0, 0, 0] = np.nan
    >>> check_finite_crops(batch, [10, 11], lambda i: "well B02")
    Traceback (most recent call last):
    ...
    ValueError: Crop 11 (well B02) contains NaN or infinite pixels (1 such crop(s) in this batch); re-extract the crops of that site or leave those cells out of the table.
    """
    if batch.dtype.kind != "f":
        return
    bad = ~np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
    if bad.any():
        first = int(np.asarray(crop_indices)[np.argmax(bad)])
        where = f" ({describe(first)})" if describe is not None else ""
        raise ValueError(
            f"Crop {first}{where} contains NaN or infinite pixels ({int(bad.sum())} such crop(s) in "
            "this batch); re-extract the crops of that site or leave those cells out of the table."
        )


class CropReader:
    """Read rows of an ``(N, C, S, S)`` crop array by index, decoding each chunk once.

    Parameters
    ----------
    crops : zarr.Array or numpy.ndarray
        The crop store (``CellStore(folder).crops``) or an array in memory.
    cache_chunks : int
        Number of decoded chunks kept; reads that revisit a cached chunk decode nothing.
    check_finite : bool
        Raise on NaN/inf in floating-point crops (:func:`check_finite_crops`).
    describe : callable, optional
        ``describe(crop_index) -> str`` naming the cell in error messages.
    normalise : callable, optional
        ``normalise(crops, crop_indices) -> float32 crops`` applied to every read
        (a :class:`~napari_hcs.nn.plate_normalisation.PlateNormaliser`).
    channels : list of int, optional
        The stored channels to return, in this order (before ``normalise``); all by default.
    """

    def __init__(self, crops, *, cache_chunks: int = 16, check_finite: bool = True, describe=None,
                 normalise: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 channels: list[int] | None = None):
        if len(getattr(crops, "shape", ())) != 4:
            raise ValueError(
                f"Crops must be an array of shape (cells, channels, size, size); got shape "
                f"{getattr(crops, 'shape', None)}."
            )
        self.crops = crops
        self.shape = tuple(int(s) for s in crops.shape)
        self.channels = None if channels is None else list(channels)
        if self.channels is not None:
            self.shape = (self.shape[0], len(self.channels), *self.shape[2:])
        self.dtype = np.dtype(np.float32 if normalise is not None else crops.dtype)
        self.normalise = normalise
        self.chunk = chunk_rows(crops)
        self.cache_chunks = max(1, int(cache_chunks))
        self.check_finite = check_finite
        self.describe = describe
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _chunk(self, chunk_id: int) -> np.ndarray:
        with self._lock:
            block = self._cache.get(chunk_id)
            if block is not None:
                self._cache.move_to_end(chunk_id)
                return block
        start = chunk_id * self.chunk
        stop = min(start + self.chunk, self.shape[0])
        if isinstance(self.crops, zarr.Array):
            block = read_checked(self.crops, (slice(start, stop),), what=f"crops {start}..{stop - 1}")
        else:
            block = np.asarray(self.crops[start:stop])
        with self._lock:
            self._cache[chunk_id] = block
            while len(self._cache) > self.cache_chunks:
                self._cache.popitem(last=False)
        return block

    def read(self, crop_indices) -> np.ndarray:
        """Return the crops of ``crop_indices`` (in that order) as a numpy array."""
        crop_indices = np.asarray(crop_indices, dtype=np.int64)
        if len(crop_indices) and (crop_indices.min() < 0 or crop_indices.max() >= self.shape[0]):
            bad = crop_indices[(crop_indices < 0) | (crop_indices >= self.shape[0])][0]
            raise IndexError(f"crop_index {int(bad)} is outside the crop store ({self.shape[0]} crops).")
        if self.chunk is None:
            out = np.asarray(self.crops[crop_indices])
        else:
            out = np.empty((len(crop_indices), *self.crops.shape[1:]), dtype=self.crops.dtype)
            chunk_ids = crop_indices // self.chunk
            order = np.argsort(chunk_ids, kind="stable")
            bounds = np.flatnonzero(np.diff(chunk_ids[order])) + 1
            for group in np.split(order, bounds):
                if len(group) == 0:
                    continue
                chunk_id = int(chunk_ids[group[0]])
                out[group] = self._chunk(chunk_id)[crop_indices[group] - chunk_id * self.chunk]
        if self.channels is not None:
            out = out[:, self.channels]
        if self.check_finite:
            check_finite_crops(out, crop_indices, self.describe)
        if self.normalise is not None:
            out = self.normalise(out, crop_indices)
        return out

    def iter_batches(self, crop_indices, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positions, crops)`` over ``crop_indices`` in chunk order, ``batch_size`` at a time.

        ``positions`` index into ``crop_indices``; memory holds one batch and a
        couple of decoded chunks.
        """
        crop_indices = np.asarray(crop_indices, dtype=np.int64)
        order = np.argsort(crop_indices, kind="stable")
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            yield positions, self.read(crop_indices[positions])
