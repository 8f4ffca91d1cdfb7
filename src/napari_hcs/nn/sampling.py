"""Epoch batches of training crops: chunk-ordered sampling, in memory or streaming.

* :class:`ChunkBatchSampler` draws each epoch's (optionally class-balanced)
  sample, then orders it by chunk and shuffles only within windows of a few
  thousand cells, so a training epoch decodes each chunk about once while its
  batches stay well mixed;
* :class:`CropDataset` is the ``torch`` dataset over the store that reads a whole
  batch at once (``__getitems__``);
* :class:`DeviceBatches` serves batches from crops held whole in (device)
  memory, :class:`StreamingBatches` reads them from the store in a background
  thread (:func:`prefetched`) while the model trains.

Examples
--------
>>> sampler = ChunkBatchSampler(np.arange(10), batch_size=4, shuffle=False)
>>> [len(batch) for batch in sampler]
[4, 4, 2]
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

import numpy as np
import torch

from .crop_reader import CropReader

__all__ = ["ChunkBatchSampler", "CropDataset", "DeviceBatches", "StreamingBatches", "prefetched"]


class ChunkBatchSampler(torch.utils.data.Sampler):
    """Batches of positions, grouped by zarr chunk and shuffled within windows.

    Parameters
    ----------
    crop_indices : array of int
        Row of each dataset position in the crop store.
    batch_size : int
        Positions per batch (per process when distributed).
    chunk_rows : int, optional
        Cells per storage chunk; None (in-memory data) disables the grouping.
    window : int
        Cells shuffled together; a window spans ``window / chunk_rows`` chunks,
        which a :class:`CropReader` needs to hold in its cache.
    shuffle : bool
        Draw a new random order each epoch (set with :meth:`set_epoch`).
    weights : array of float, optional
        Sampling weight of each position; when given, each epoch draws
        ``len(crop_indices)`` positions with replacement (class balancing).
    seed : int
        Base seed; epoch ``e`` uses ``(seed, e)``.
    rank, world_size : int
        Shard of the batches this process takes (distributed training); every
        rank gets the same number of batches.
    drop_last : bool
        Drop a final incomplete batch (kept when it is the only one).
    """

    def __init__(
        self,
        crop_indices,
        *,
        batch_size: int,
        chunk_rows: int | None = None,
        window: int = 8192,
        shuffle: bool = True,
        weights=None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        self.crop_indices = np.asarray(crop_indices, dtype=np.int64)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        self.batch_size = int(batch_size)
        self.chunk_rows = chunk_rows
        self.window = max(int(window), self.batch_size)
        self.shuffle = shuffle
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _epoch_positions(self) -> np.ndarray:
        n = len(self.crop_indices)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is not None:
            positions = rng.choice(n, size=n, replace=True, p=self.weights / self.weights.sum())
        elif self.shuffle:
            positions = rng.permutation(n)
        else:
            return np.arange(n)
        if not self.chunk_rows:
            return positions
        chunks = self.crop_indices[positions] // self.chunk_rows
        unique = np.unique(chunks)
        chunk_rank = np.empty(int(unique.max()) + 1, dtype=np.int64)
        chunk_rank[unique] = rng.permutation(len(unique))
        positions = positions[np.argsort(chunk_rank[chunks], kind="stable")]
        for start in range(0, n, self.window):
            rng.shuffle(positions[start : start + self.window])
        return positions

    def _batches(self) -> list[np.ndarray]:
        positions = self._epoch_positions()
        batches = [positions[i : i + self.batch_size] for i in range(0, len(positions), self.batch_size)]
        if self.drop_last and len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.world_size > 1:
            total = -(-len(batches) // self.world_size) * self.world_size
            batches = [batches[i % len(batches)] for i in range(total)][self.rank :: self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        n_batches = -(-len(self.crop_indices) // self.batch_size)
        if self.drop_last and n_batches > 1 and len(self.crop_indices) % self.batch_size:
            n_batches -= 1
        return -(-n_batches // self.world_size)


class CropDataset(torch.utils.data.Dataset):
    """Labelled crops of a crop store, read lazily by ``crop_index``.

    Parameters
    ----------
    crops : zarr.Array or numpy.ndarray
        ``(N, C, S, S)`` crop store.
    crop_indices : array of int
        Store row of each dataset item.
    labels : array of int, optional
        Class index of each item (``-1`` when unlabelled).
    cache_chunks : int
        Decoded chunks kept in memory (see :class:`CropReader`).
    describe : callable, optional
        ``describe(crop_index) -> str`` naming a cell in error messages.
    normalise : callable, optional
        Per-crop normalisation applied as crops are read (see :class:`CropReader`).

    Notes
    -----
    ``dataset[i]`` returns ``(crop tensor (C, S, S), label)``; a
    :class:`torch.utils.data.DataLoader` with a :class:`ChunkBatchSampler` calls
    ``__getitems__`` with a whole batch, which reads it chunk by chunk and
    returns ``(crops (B, C, S, S), labels (B,))`` tensors in the stored dtype
    (pass ``collate_fn=CropDataset.collate``).
    """

    def __init__(self, crops, crop_indices, labels=None, *, cache_chunks: int = 16, describe=None, normalise=None):
        self.reader = CropReader(crops, cache_chunks=cache_chunks, describe=describe, normalise=normalise)
        self.crop_indices = np.asarray(crop_indices, dtype=np.int64)
        if labels is None:
            labels = np.full(len(self.crop_indices), -1)
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) != len(self.crop_indices):
            raise ValueError(f"{len(self.labels)} labels for {len(self.crop_indices)} crops.")

    def __len__(self) -> int:
        return len(self.crop_indices)

    def __getitem__(self, position: int):
        crop = self.reader.read(self.crop_indices[[position]])[0]
        return torch.from_numpy(crop), int(self.labels[position])

    def __getitems__(self, positions: list[int]):
        positions = np.asarray(positions, dtype=np.int64)
        crops = self.reader.read(self.crop_indices[positions])
        return torch.from_numpy(crops), torch.from_numpy(self.labels[positions])

    @staticmethod
    def collate(batch):
        """Collate function for a DataLoader over ``__getitems__`` (the batch is ready)."""
        return batch


class DeviceBatches:
    """Epoch batches from crops held whole in (device) memory.

    Parameters
    ----------
    crops : torch.Tensor
        ``(N, C, S, S)`` crops in the stored dtype, on the training device.
    labels : torch.Tensor
        ``(N,)`` class indices on the same device.
    sampler : ChunkBatchSampler
        Order of the positions (built without ``chunk_rows``).
    """

    def __init__(self, crops: torch.Tensor, labels: torch.Tensor, sampler: ChunkBatchSampler):
        self.crops, self.labels, self.sampler = crops, labels, sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.set_epoch(epoch)
        for positions in self.sampler:
            index = torch.as_tensor(positions, device=self.crops.device)
            yield self.crops[index], self.labels[index]


class StreamingBatches:
    """Epoch batches read from the crop store while the model trains.

    A background thread reads the next batches (zarr decoding releases the GIL)
    while the current one is on the device; at most ``prefetch`` batches wait.

    Parameters
    ----------
    dataset : CropDataset
        Crops and labels.
    sampler : ChunkBatchSampler
        Chunk-grouped batch order.
    device : torch.device
        Where batches are sent.
    prefetch : int
        Batches read ahead.
    """

    def __init__(self, dataset: CropDataset, sampler: ChunkBatchSampler, device: torch.device, prefetch: int = 2):
        self.dataset, self.sampler, self.device, self.prefetch = dataset, sampler, device, prefetch

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.set_epoch(epoch)
        pin = self.device.type == "cuda"
        for crops, labels in prefetched((self.dataset.__getitems__(b) for b in self.sampler), self.prefetch):
            if pin:
                crops = crops.pin_memory()
            yield crops.to(self.device, non_blocking=pin), labels.to(self.device, non_blocking=pin)


_DONE = object()


def prefetched(items: Iterable, depth: int) -> Iterator:
    """Iterate ``items`` computed by a background thread, ``depth`` ahead; errors re-raise here.

    Examples
    --------
    >>> list(prefetched((i * i for i in range(4)), 2))
    [0, 1, 4, 9]
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
            buffer.put(_DONE)
        except BaseException as error:  # handed to the consumer
            buffer.put(error)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
