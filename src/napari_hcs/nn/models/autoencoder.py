"""Convolutional autoencoder whose bottleneck is a cell embedding.

The encoder halves the resolution twice with strided BN-ReLU convolutions
(``16k``, ``32k``, ``64k`` channels) and maps the result to a vector of
``embedding_dim`` numbers; the decoder mirrors it with transposed convolutions
and resizes to the exact crop size. Trained to reconstruct the normalised
crops (mean squared error), it needs no labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .wide_resnet import _initialise

__all__ = ["ConvAutoencoder"]


def _down(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for unsupervised cell embeddings.

    Parameters
    ----------
    in_channels : int
        Number of image channels.
    crop_size : int
        Side of the (square) input crops.
    width : int
        Channel multiplier ``k`` (``16k``, ``32k``, ``64k`` channels).
    embedding_dim : int
        Size of the bottleneck vector returned by :meth:`embed`.
    num_classes : int, optional
        Accepted for a uniform model interface and ignored (no classifier).
    """

    task = "embedding"

    def __init__(
        self,
        in_channels: int,
        crop_size: int = 32,
        *,
        width: int = 2,
        embedding_dim: int = 64,
        num_classes: int | None = None,
    ):
        super().__init__()
        if crop_size < 8:
            raise ValueError(f"The autoencoder needs crops of at least 8x8 pixels; got {crop_size}.")
        widths = [16 * width, 32 * width, 64 * width]
        self.crop_size = int(crop_size)
        self.bottom = -(-crop_size // 4)  # spatial side after two stride-2 convolutions
        self.encoder = nn.Sequential(
            _down(in_channels, widths[0], 1), _down(widths[0], widths[1], 2), _down(widths[1], widths[2], 2)
        )
        flat = widths[2] * self.bottom * self.bottom
        self.to_embedding = nn.Linear(flat, embedding_dim)
        self.from_embedding = nn.Sequential(nn.Linear(embedding_dim, flat), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(_up(widths[2], widths[1]), _up(widths[1], widths[0]))
        self.head = nn.Conv2d(widths[0], in_channels, 3, padding=1)
        self.embedding_dim = embedding_dim
        self._bottom_channels = widths[2]
        _initialise(self)
        # A zero output layer starts from the mean crop (loss 1 on normalised crops)
        # instead of a reconstruction of random, large values.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the bottleneck vector, shape ``(N, embedding_dim)``."""
        return self.to_embedding(torch.flatten(self.encoder(x), 1))

    def decode(self, embedding: torch.Tensor) -> torch.Tensor:
        """Return the reconstruction ``(N, C, S, S)`` of bottleneck vectors."""
        out = self.from_embedding(embedding).view(-1, self._bottom_channels, self.bottom, self.bottom)
        out = self.decoder(out)
        if out.shape[-1] != self.crop_size:
            out = F.interpolate(out, size=(self.crop_size, self.crop_size), mode="bilinear", align_corners=False)
        return self.head(out)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        """Return the reconstruction, or ``(reconstruction, embedding)`` if asked."""
        embedding = self.embed(x)
        reconstruction = self.decode(embedding)
        return (reconstruction, embedding) if return_embedding else reconstruction
