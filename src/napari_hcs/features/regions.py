"""Pixels of labelled regions in a ``(B, H, W)`` label stack, grouped by region.

Every feature is computed for all regions at once: :class:`Regions` sorts the
pixels of the regions by region once, and then sums, means, minima and maxima
per region are single ``reduceat`` calls, and pixel pairs within a region
(for texture) are found by shifting the label stack. ``B`` is 1 for a site and
the number of crops for a batch of crops.

Examples
--------
>>> labels = np.array([[[1, 1, 0], [0, 2, 2]]])
>>> regions = Regions(labels, np.array([1, 2]))
>>> regions.counts.tolist()
[2, 2]
>>> regions.mean(regions.gather(np.array([[[1.0, 3.0, 9.0], [9.0, 5.0, 7.0]]]))).tolist()
[2.0, 6.0]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DIAGONAL_STEPS",
    "FOUR_STEPS",
    "Regions",
    "count_per_id",
    "id_slots",
    "neighbour",
    "safe_divide",
]

FOUR_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))
DIAGONAL_STEPS = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def safe_divide(numerator, denominator) -> np.ndarray:
    """``numerator / denominator`` in float64, 0 where the denominator is 0.

    Examples
    --------
    >>> safe_divide([1, 2], [2, 0]).tolist()
    [0.5, 0.0]
    """
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def id_slots(ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each label in the sorted ``ids``, and whether it is one of them."""
    if len(ids) == 0:
        return np.zeros(len(labels), dtype=np.int64), np.zeros(len(labels), dtype=bool)
    slot = np.minimum(np.searchsorted(ids, labels), len(ids) - 1)
    return slot, ids[slot] == labels


def count_per_id(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How often each of the sorted ``ids`` occurs in ``labels`` (float64)."""
    slot, known = id_slots(ids, labels)
    return np.bincount(slot[known], minlength=len(ids)).astype(np.float64)


def neighbour(padded: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The (dy, dx) neighbour of every pixel of a stack padded by one pixel in Y and X."""
    height, width = padded.shape[1] - 2, padded.shape[2] - 2
    return padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]


class Regions:
    """Pixels of the regions ``ids`` of a ``(B, H, W)`` label stack, grouped by region.

    ``flat`` holds the flat pixel indices sorted by region; region ``k`` owns
    ``flat[starts[k]:starts[k + 1]]`` and ``row`` holds the region of each of
    them. Pixels of labels not in ``ids`` are ignored.

    Parameters
    ----------
    labels : ndarray of int, shape (B, H, W)
        Label stack, 0 = background.
    ids : ndarray of int
        Sorted ids of the regions to measure; an id absent from ``labels``
        is an empty region.
    """

    def __init__(self, labels: np.ndarray, ids: np.ndarray):
        self.shape = labels.shape
        self.labels = labels
        self.ids = ids
        self.n = len(ids)
        raveled = labels.ravel()
        flat = np.flatnonzero(raveled)
        row, known = id_slots(ids, raveled[flat])
        flat, row = flat[known], row[known]
        # Radix sort when the region index fits 16 bits: fast and stable.
        order = np.argsort(row.astype(np.uint16) if self.n < 2**16 else row, kind="stable")
        self.flat = flat[order]
        self.row = row[order]
        self.counts = np.bincount(self.row, minlength=self.n)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        # Dense: every pixel belongs to a region, in pixel order (whole crops);
        # then a pixel's position in ``flat`` is its flat index.
        self.dense = len(self.flat) == raveled.size and bool(np.all(self.flat == np.arange(raveled.size)))
        self._position: np.ndarray | None = None

    @property
    def empty(self) -> np.ndarray:
        """Whether each region has no pixel."""
        return self.counts == 0

    def gather(self, stack: np.ndarray) -> np.ndarray:
        """Values of the region pixels of a ``(..., B, H, W)`` array, shape ``(..., m)``."""
        lead = stack.shape[: stack.ndim - 3]
        raveled = stack.reshape(*lead, -1)
        return raveled if self.dense else raveled[..., self.flat]

    def reduce(self, ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        """Apply ``ufunc.reduceat`` per region over the last axis; 0 for empty regions."""
        out = np.zeros((*values.shape[:-1], self.n), dtype=np.float64)
        full = ~self.empty
        if not full.any():
            return out
        starts = self.starts[:-1][full]
        accumulator = np.float64 if ufunc is np.add else None
        rows, out_rows = values.reshape(-1, values.shape[-1]), out.reshape(-1, self.n)
        for row, out_row in zip(rows, out_rows):  # 1D reduceat is the fast path
            out_row[full] = ufunc.reduceat(row, starts, dtype=accumulator)
        return out

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum (float64) per region over the last axis; 0 for empty regions."""
        return self.reduce(np.add, values)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Mean per region over the last axis; 0 for empty regions."""
        return safe_divide(self.sum(values), self.counts)

    def pairs(self, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(i, j)`` into ``flat`` of pixel pairs ``(p, p + (dy, dx))`` in one region."""
        _, height, width = self.shape
        if abs(dy) >= height or abs(dx) >= width:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        rows = slice(max(0, -dy), height - max(0, dy))
        cols = slice(max(0, -dx), width - max(0, dx))
        shifted = (slice(None), slice(rows.start + dy, rows.stop + dy), slice(cols.start + dx, cols.stop + dx))
        same = np.zeros(self.shape, dtype=bool)
        here = self.labels[:, rows, cols]
        same[:, rows, cols] = (here == self.labels[shifted]) & (here > 0)
        start = np.flatnonzero(same)
        if self.dense:
            return start, start + (dy * width + dx)
        position = self._positions()
        i = position[start]
        j = position[start + (dy * width + dx)]
        inside = i >= 0
        return i[inside], j[inside]

    def _positions(self) -> np.ndarray:
        """Position in ``flat`` of every pixel of the stack (-1 outside the regions)."""
        if self._position is None:
            index_type = np.int32 if self.labels.size < 2**31 else np.int64
            self._position = np.full(self.labels.size, -1, dtype=index_type)
            self._position[self.flat] = np.arange(len(self.flat))
        return self._position
