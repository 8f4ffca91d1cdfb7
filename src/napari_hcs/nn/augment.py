"""Random augmentation of whole batches of crops on the training device.

:func:`augment_batch` draws, per sample, one of the 8 flips and 90-degree
rotations, a random crop after zero padding and an optional per-channel
intensity jitter, all as tensor operations on the batch's device.

Examples
--------
>>> import torch
>>> batch = torch.randn(4, 2, 8, 8)
>>> augment_batch(batch, generator=torch.Generator().manual_seed(0)).shape
torch.Size([4, 2, 8, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["augment_batch"]


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
