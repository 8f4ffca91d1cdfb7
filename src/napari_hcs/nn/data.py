"""Crops for training and prediction: chunk-aware reading, normalisation, augmentation.

The crop store (``crops.zarr``, ``(N, C, S, S)``) is compressed in chunks of
many cells, so reading one cell decodes its whole chunk. Everything here reads
in chunk order and decodes each chunk once per pass:

* :class:`CropReader` serves arbitrary rows through a small cache of decoded chunks;
* :class:`ChunkBatchSampler` draws each epoch's (optionally class-balanced)
  sample, then orders it by chunk and shuffles only within windows of a few
  thousand cells, so a training epoch decodes each chunk about once while its
  batches stay well mixed;
* :class:`CropDataset` is the ``torch`` dataset over the store that reads a whole
  batch at once (``__getitems__``).

Pixels reach the network through a :class:`Preprocess` (optional resize or
centre crop to the network's input size, then per-channel normalisation with
the training set's mean and standard deviation, computed in one streaming pass
by :func:`channel_statistics`). Augmentation (:func:`augment_batch`) works on
whole batches of tensors on the training device: the 8 flips/90-degree
rotations, a random crop after 4-pixel padding, and optional intensity jitter.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "ChunkBatchSampler",
    "CropDataset",
    "CropReader",
    "DeviceBatches",
    "Preprocess",
    "StreamingBatches",
    "augment_batch",
    "channel_statistics",
    "chunk_rows",
    "check_cancel",
]

RESIZE_MODES = ("resize", "center")


def check_cancel(cancel, what: str) -> None:
    """Raise InterruptedError when ``cancel`` (callable or threading.Event) is set."""
    if cancel is None:
        return
    flagged = cancel.is_set() if hasattr(cancel, "is_set") else cancel()
    if flagged:
        raise InterruptedError(f"{what} was cancelled.")


def chunk_rows(crops) -> int | None:
    """Cells per storage chunk of a zarr crop array; None for in-memory arrays."""
    if isinstance(crops, np.ndarray):
        return None
    chunks = getattr(crops, "chunks", None)
    if not chunks or not isinstance(chunks[0], (int, np.integer)):
        return None
    return int(chunks[0])


def _check_finite(batch: np.ndarray, crop_indices: np.ndarray, describe: Callable[[int], str] | None) -> None:
    if batch.dtype.kind != "f":
        return
    bad = ~np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
    if bad.any():
        first = int(crop_indices[np.argmax(bad)])
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
        Raise on NaN/inf in floating-point crops.
    describe : callable, optional
        ``describe(crop_index) -> str`` naming the cell in error messages.
    """

    def __init__(self, crops, *, cache_chunks: int = 16, check_finite: bool = True, describe=None):
        if len(getattr(crops, "shape", ())) != 4:
            raise ValueError(
                f"Crops must be an array of shape (cells, channels, size, size); got shape "
                f"{getattr(crops, 'shape', None)}."
            )
        self.crops = crops
        self.shape = tuple(int(s) for s in crops.shape)
        self.dtype = np.dtype(crops.dtype)
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
        block = np.asarray(self.crops[start : min(start + self.chunk, self.shape[0])])
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
            out = np.empty((len(crop_indices), *self.shape[1:]), dtype=self.dtype)
            chunk_ids = crop_indices // self.chunk
            order = np.argsort(chunk_ids, kind="stable")
            bounds = np.flatnonzero(np.diff(chunk_ids[order])) + 1
            for group in np.split(order, bounds):
                if len(group) == 0:
                    continue
                chunk_id = int(chunk_ids[group[0]])
                out[group] = self._chunk(chunk_id)[crop_indices[group] - chunk_id * self.chunk]
        if self.check_finite:
            _check_finite(out, crop_indices, self.describe)
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


@dataclass
class Preprocess:
    """How stored crops become network input: resize or centre crop, then normalise.

    Parameters
    ----------
    crop_size : int
        Side of the stored crops.
    input_size : int, optional
        Side of the network input; None keeps ``crop_size``.
    mode : {"resize", "center"}
        ``"resize"`` scales the whole crop (area averaging when shrinking);
        ``"center"`` cuts the central ``input_size`` pixels.
    mean, std : list of float
        Per-channel normalisation (after resizing); empty lists mean none yet.
    """

    crop_size: int
    input_size: int | None = None
    mode: str = "resize"
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"Unknown resize mode {self.mode!r}; expected one of {', '.join(RESIZE_MODES)}.")
        if self.input_size is not None and self.mode == "center" and self.input_size > self.crop_size:
            raise ValueError(
                f"Cannot centre-crop {self.input_size} pixels out of {self.crop_size}-pixel crops; "
                "use mode 'resize' or a smaller input size."
            )

    @property
    def size(self) -> int:
        """Side of the network input."""
        return int(self.input_size or self.crop_size)

    def resize(self, batch: torch.Tensor) -> torch.Tensor:
        """Return the float32 batch brought to the input size (not normalised)."""
        batch = batch.to(torch.float32)
        size = self.size
        if size == batch.shape[-1]:
            return batch
        if self.mode == "center":
            start = (batch.shape[-1] - size) // 2
            return batch[..., start : start + size, start : start + size]
        mode = "area" if size < batch.shape[-1] else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        return F.interpolate(batch, size=(size, size), mode=mode, **kwargs)

    def _moments(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (str(device), tuple(self.mean), tuple(self.std))
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != key:
            mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            self._cached = cached = (key, mean, std)
        return cached[1], cached[2]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Return the resized, normalised float32 batch (on the batch's device)."""
        batch = self.resize(batch)
        if self.mean:
            mean, std = self._moments(batch.device)
            batch = (batch - mean) / std
        return batch

    def to_meta(self) -> dict:
        return {
            "crop_size": int(self.crop_size),
            "input_size": self.size,
            "mode": self.mode,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_meta(cls, meta: dict) -> "Preprocess":
        return cls(
            crop_size=int(meta["crop_size"]),
            input_size=int(meta["input_size"]),
            mode=meta.get("mode", "resize"),
            mean=list(meta.get("mean", [])),
            std=list(meta.get("std", [])),
        )


def channel_statistics(
    reader: CropReader,
    crop_indices,
    preprocess: Preprocess,
    *,
    batch_size: int = 2048,
    cancel=None,
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of crops, in one streaming pass.

    Reads the crops in chunk order, applies ``preprocess.resize`` and merges
    per-batch moments in float64 (Chan's parallel update), so memory holds one
    batch and the result does not depend on the batch size.

    Raises
    ------
    ValueError
        If there are no crops, or a crop holds NaN/inf (naming the crop).
    """
    crop_indices = np.asarray(crop_indices, dtype=np.int64)
    if len(crop_indices) == 0:
        raise ValueError("No crops to compute normalisation statistics from.")
    count, mean, m2 = 0, None, None
    for _, raw in reader.iter_batches(crop_indices, batch_size):
        check_cancel(cancel, "Computing normalisation statistics")
        batch = preprocess.resize(torch.from_numpy(raw)).to(torch.float64)
        values = batch.transpose(0, 1).reshape(batch.shape[1], -1)
        n = values.shape[1]
        batch_mean = values.mean(dim=1)
        batch_m2 = ((values - batch_mean[:, None]) ** 2).sum(dim=1)
        if mean is None:
            count, mean, m2 = n, batch_mean, batch_m2
            continue
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + batch_m2 + delta**2 * count * n / total
        count = total
    std = torch.sqrt(m2 / max(count - 1, 1)).clamp_min(1e-6)
    return mean.tolist(), std.tolist()


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

    Notes
    -----
    ``dataset[i]`` returns ``(crop tensor (C, S, S), label)``; a
    :class:`torch.utils.data.DataLoader` with a :class:`ChunkBatchSampler` calls
    ``__getitems__`` with a whole batch, which reads it chunk by chunk and
    returns ``(crops (B, C, S, S), labels (B,))`` tensors in the stored dtype
    (pass ``collate_fn=CropDataset.collate``).
    """

    def __init__(self, crops, crop_indices, labels=None, *, cache_chunks: int = 16, describe=None):
        self.reader = CropReader(crops, cache_chunks=cache_chunks, describe=describe)
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


def augment_batch(
    batch: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    dihedral: bool = True,
    pad: int = 4,
    intensity: float = 0.0,
) -> torch.Tensor:
    """Randomly augment a batch ``(B, C, S, S)`` of normalised crops, per sample.

    Parameters
    ----------
    batch : torch.Tensor
        Float batch on any device; square crops.
    generator : torch.Generator, optional
        Random generator on the batch's device (for reproducible runs).
    dihedral : bool
        Random horizontal/vertical flips and transposition: together all 8
        flips and 90-degree rotations.
    pad : int
        Zero-pad by ``pad`` pixels and crop back at a random offset (0 disables).
    intensity : float
        Standard deviation of a random per-sample, per-channel gain ``1 + N(0, s)``
        and offset ``N(0, s)`` in normalised units (0 disables).

    Returns
    -------
    torch.Tensor
        A new tensor of the same shape.
    """
    n, channels, height, width = batch.shape
    device = batch.device

    def coin() -> torch.Tensor:
        return (torch.rand(n, device=device, generator=generator) < 0.5).view(n, 1, 1, 1)

    if dihedral:
        if height == width:
            batch = torch.where(coin(), batch.transpose(-1, -2), batch)
        batch = torch.where(coin(), batch.flip(-1), batch)
        batch = torch.where(coin(), batch.flip(-2), batch)
    if pad > 0:
        # Every (height x width) window of the padded crops, as a view; pick one per sample.
        windows = F.pad(batch, (pad, pad, pad, pad)).unfold(2, height, 1).unfold(3, width, 1)
        dy = torch.randint(0, 2 * pad + 1, (n,), device=device, generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), device=device, generator=generator)
        batch = windows[torch.arange(n, device=device), :, dy, dx]
    if intensity > 0:
        gain = 1 + intensity * torch.randn(n, channels, 1, 1, device=device, generator=generator)
        offset = intensity * torch.randn(n, channels, 1, 1, device=device, generator=generator)
        batch = batch * gain + offset
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
        for crops, labels in _prefetched((self.dataset.__getitems__(b) for b in self.sampler), self.prefetch):
            if pin:
                crops = crops.pin_memory()
            yield crops.to(self.device, non_blocking=pin), labels.to(self.device, non_blocking=pin)


_DONE = object()


def _prefetched(items: Iterable, depth: int) -> Iterator:
    """Iterate ``items`` computed by a background thread, ``depth`` ahead; errors re-raise here."""
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
