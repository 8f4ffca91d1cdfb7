"""Rows of an embedding for given cells, read a block at a time.

An export walks the cells in blocks; each embedding gives the rows of a block's cells
(``crop_index``) in that order, ``NaN`` rows for cells it does not hold. A stored
embedding (:class:`~napari_hcs.profiles.embedding_store.Embedding`, a Zarr array) is read
by row ranges; the ``emb_*`` columns written by ``napari-hcs predict`` (a column group of
the cell table) are streamed by record batches when they are in ``crop_index`` order.

Examples
--------
>>> from napari_hcs.profiles.embedding_store import EmbeddingStore
>>> store = EmbeddingStore(tmp_path)
>>> store.write("pca", np.array([5, 3, 9]), np.arange(6).reshape(3, 2), provenance={})
>>> rows = StoredRows(store.read("pca"))
>>> rows.take(np.array([3, 4, 5]))
array([[ 2.,  3.],
       [nan, nan],
       [ 0.,  1.]], dtype=float32)
>>> rows.missing
1
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..vocabulary import CROP_INDEX, EMBEDDING_PREFIX

__all__ = ["ColumnGroupRows", "StoredRows"]


class _Rows:
    """Common part: ``dimensions``, ``missing`` (cells asked for that it lacked so far)."""

    dimensions: int
    missing: int = 0

    def _filled(self, block: np.ndarray, found: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.full((len(block), self.dimensions), np.nan, dtype=np.float32)
        out[found] = values
        self.missing += int(len(block) - found.sum())
        return out


class StoredRows(_Rows):
    """Rows of a stored embedding, looked up by ``crop_index``."""

    def __init__(self, embedding):
        self.values = embedding.values
        self.dimensions = int(embedding.values.shape[1])
        self.cells = len(embedding.crop_index)
        index = np.asarray(embedding.crop_index, dtype=np.int64)
        if len(index) < 2 or np.all(index[1:] > index[:-1]):
            self._order, self._sorted = None, index  # already in order: no lookup table needed
        else:
            self._order = np.argsort(index, kind="stable")
            self._sorted = index[self._order]

    def take(self, crop_index: np.ndarray) -> np.ndarray:
        """``(len(crop_index), D)`` float32: the rows of these cells, ``NaN`` where absent."""
        crop_index = np.asarray(crop_index, dtype=np.int64)
        at = np.searchsorted(self._sorted, crop_index).clip(0, max(len(self._sorted) - 1, 0))
        found = (self._sorted[at] == crop_index) if len(self._sorted) else np.zeros(len(crop_index), bool)
        rows = at[found] if self._order is None else self._order[at[found]]
        if not len(rows):
            return self._filled(crop_index, found, np.empty((0, self.dimensions), np.float32))
        low, high = int(rows.min()), int(rows.max()) + 1
        if len(rows) == len(crop_index) == high - low and rows[0] == low and np.all(np.diff(rows) == 1):
            return np.asarray(self.values[low:high], dtype=np.float32)  # the usual case: one row range
        if high - low <= 2 * len(rows) + 1024:
            values = np.asarray(self.values[low:high], dtype=np.float32)[rows - low]
        else:
            unique, back = np.unique(rows, return_inverse=True)
            values = np.asarray(self.values.get_orthogonal_selection((unique, slice(None))),
                                dtype=np.float32)[back]
        return self._filled(crop_index, found, values)


class ColumnGroupRows(_Rows):
    """The ``emb_*`` columns of a cell-table column group (a Parquet file) as an embedding.

    Streamed batch by batch when both the file and the requests go up in ``crop_index``
    (as ``napari-hcs predict`` writes them); otherwise the columns are read at once.
    """

    def __init__(self, path: str | os.PathLike, *, batch_rows: int = 65536):
        self.path = Path(path)
        self._file = pq.ParquetFile(self.path)
        self.columns = [c for c in self._file.schema_arrow.names if c.startswith(EMBEDDING_PREFIX)]
        self.dimensions = len(self.columns)
        index = self._file.read(columns=[CROP_INDEX])[CROP_INDEX].to_numpy()
        self.cells = len(index)
        self._streamed = bool(np.all(np.diff(index) > 0))
        self._batch_rows = batch_rows
        self._batches = None
        self._buffer = (np.empty(0, np.int64), np.empty((0, self.dimensions), np.float32))
        self._last = -1
        self._whole: StoredRows | None = None

    def _values(self, table) -> np.ndarray:
        if not self.dimensions:
            return np.empty((table.num_rows, 0), np.float32)
        return np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in self.columns]).astype(
            np.float32, copy=False)

    def _read_whole(self) -> StoredRows:
        from types import SimpleNamespace

        table = self._file.read(columns=[CROP_INDEX, *self.columns])
        whole = SimpleNamespace(values=self._values(table), crop_index=table[CROP_INDEX].to_numpy())
        return StoredRows(whole)

    def take(self, crop_index: np.ndarray) -> np.ndarray:
        """``(len(crop_index), D)`` float32: the rows of these cells, ``NaN`` where absent."""
        crop_index = np.asarray(crop_index, dtype=np.int64)
        ascending = len(crop_index) == 0 or (crop_index[0] > self._last and np.all(np.diff(crop_index) > 0))
        if self._whole is None and not (self._streamed and ascending):
            self._whole = self._read_whole()
        if self._whole is not None:
            before = self._whole.missing
            out = self._whole.take(crop_index)
            self.missing += self._whole.missing - before
            return out
        if not len(crop_index):
            return np.empty((0, self.dimensions), np.float32)
        self._last = int(crop_index[-1])
        index, values = self._fill_to(self._last)
        at = np.searchsorted(index, crop_index).clip(0, max(len(index) - 1, 0))
        found = (index[at] == crop_index) if len(index) else np.zeros(len(crop_index), bool)
        out = self._filled(crop_index, found, values[at[found]])
        keep = index > self._last
        self._buffer = (index[keep], values[keep])
        return out

    def _fill_to(self, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Read batches until the buffer passes ``last`` (or the file ends)."""
        if self._batches is None:
            self._batches = self._file.iter_batches(batch_size=self._batch_rows, columns=[CROP_INDEX, *self.columns])
        index, values = self._buffer
        parts_i, parts_v = [index], [values]
        while not len(parts_i[-1]) or parts_i[-1][-1] <= last:
            batch = next(self._batches, None)
            if batch is None:
                break
            parts_i.append(batch.column(CROP_INDEX).to_numpy())
            parts_v.append(self._values(batch))
        return np.concatenate(parts_i), np.concatenate(parts_v)
