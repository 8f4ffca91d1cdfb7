"""How stored crops become network input: resize or centre crop, then normalise.

A :class:`Preprocess` brings crops to the network's input size (area averaging
when shrinking, or a centre crop) and normalises each channel with the training
set's mean and standard deviation, computed in one streaming pass by
:func:`channel_statistics`. It is stored in every model (``to_meta``), so
prediction prepares pixels exactly as training did.

Examples
--------
>>> import torch
>>> preprocess = Preprocess(crop_size=8, input_size=4, mean=[1.0], std=[2.0])
>>> preprocess(torch.ones(2, 1, 8, 8)).shape
torch.Size([2, 1, 4, 4])
>>> float(preprocess(torch.ones(1, 1, 8, 8)).max())
0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..cancel import check_cancel
from ..vocabulary import RESIZE_MODES
from .crop_reader import CropReader

__all__ = ["Preprocess", "channel_statistics"]


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
        """JSON-ready form, as stored in a model's metadata (``meta["preprocess"]``)."""
        return {
            "crop_size": int(self.crop_size),
            "input_size": self.size,
            "mode": self.mode,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_meta(cls, meta: dict) -> "Preprocess":
        """Rebuild from :meth:`to_meta` (models trained before ``mode`` existed resize)."""
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

    Reads the crops in chunk order and applies ``preprocess.resize``; keeps each
    crop's own mean and sum of squared deviations (float64, ``2 x channels``
    values per crop) and merges them only at the end, in sorted order. The
    result is the same to the last bit for the same crops in any order, any
    batch size and any chunking of the store: two stores of one plate whose
    sites were written in another order normalise alike, and train alike.

    Raises
    ------
    ValueError
        If there are no crops, or a crop holds NaN/inf (naming the crop).

    Examples
    --------
    >>> crops = np.stack([np.zeros((1, 4, 4)), np.full((1, 4, 4), 2.0)])
    >>> mean, std = channel_statistics(CropReader(crops), [0, 1], Preprocess(crop_size=4))
    >>> mean, [round(s, 3) for s in std]
    ([1.0], [1.016])
    """
    crop_indices = np.asarray(crop_indices, dtype=np.int64)
    if len(crop_indices) == 0:
        raise ValueError("No crops to compute normalisation statistics from.")
    cell_means = cell_m2 = None
    pixels = 0
    for positions, raw in reader.iter_batches(crop_indices, batch_size):
        check_cancel(cancel, "Computing the normalisation statistics was cancelled.")
        batch = preprocess.resize(torch.from_numpy(raw)).to(torch.float64).numpy()
        values = batch.reshape(batch.shape[0], batch.shape[1], -1)
        if cell_means is None:
            cell_means = np.empty((len(crop_indices), values.shape[1]))
            cell_m2 = np.empty_like(cell_means)
            pixels = values.shape[2]
        means = values.mean(axis=2)
        cell_means[positions] = means
        cell_m2[positions] = ((values - means[..., None]) ** 2).sum(axis=2)
    cells = len(crop_indices)
    mean = _sorted_sum(cell_means) / cells
    m2 = _sorted_sum(cell_m2) + pixels * _sorted_sum((cell_means - mean) ** 2)
    std = np.maximum(np.sqrt(m2 / max(cells * pixels - 1, 1)), 1e-6)
    return mean.tolist(), std.tolist()


def _sorted_sum(values: np.ndarray) -> np.ndarray:
    """Column sums taken in sorted order: the same bits for the same values in any row order."""
    return np.sort(values, axis=0).sum(axis=0)
