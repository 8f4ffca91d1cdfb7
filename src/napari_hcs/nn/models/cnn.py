"""The study's plain convolutional networks, models 1 to 3.

All three have three stages of ``depth`` 3x3 convolutions with ``16k``,
``32k`` and ``64k`` channels (``k`` = ``width``), halving the resolution
between stages, then global average pooling, a fully connected hidden layer
(the embedding) with dropout, and the classifier:

* ``cnn1``: VGG-like, conv-ReLU, 2x2 max pooling between stages;
* ``cnn2``: as ``cnn1`` with batch normalisation after every convolution;
* ``cnn3``: as ``cnn2`` with the last convolution of each stage strided (stride 2)
  instead of max pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from .wide_resnet import _initialise

__all__ = ["PlainCNN"]

VARIANTS = {
    1: {"batch_norm": False, "strided": False},
    2: {"batch_norm": True, "strided": False},
    3: {"batch_norm": True, "strided": True},
}


def _conv_unit(in_channels: int, out_channels: int, *, stride: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return layers


class PlainCNN(nn.Module):
    """Plain CNN classifier (the study's models 1-3).

    Parameters
    ----------
    in_channels : int
        Number of image channels.
    num_classes : int
        Number of output classes.
    variant : {1, 2, 3}
        1: max pooling; 2: max pooling and batch norm; 3: batch norm and strided convolutions.
    depth : int
        Convolutions per stage.
    width : int
        Channel multiplier ``k``: stages have ``16k``, ``32k``, ``64k`` channels.
    hidden : int
        Size of the fully connected hidden layer, which is the embedding.
    dropout : float
        Dropout rate before the classifier.
    crop_size : int, optional
        Accepted for a uniform model interface; the network works at any size.
    """

    task = "classification"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        variant: int = 1,
        depth: int = 2,
        width: int = 2,
        hidden: int = 256,
        dropout: float = 0.5,
        crop_size: int | None = None,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"CNN variant must be 1, 2 or 3; got {variant}.")
        if depth < 1 or width < 1:
            raise ValueError(f"CNN needs depth >= 1 and width >= 1; got depth={depth}, width={width}.")
        options = VARIANTS[variant]
        layers: list[nn.Module] = []
        channels = in_channels
        for stage, out_channels in enumerate([16 * width, 32 * width, 64 * width]):
            for conv in range(depth):
                last = conv == depth - 1
                stride = 2 if options["strided"] and last and stage < 2 else 1
                layers += _conv_unit(channels, out_channels, stride=stride, batch_norm=options["batch_norm"])
                channels = out_channels
            if not options["strided"] and stage < 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.hidden = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(hidden, num_classes)
        self.embedding_dim = hidden
        _initialise(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the hidden fully connected layer, shape ``(N, hidden)``."""
        return self.hidden(torch.flatten(self.pool(self.features(x)), 1))

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        """Return logits ``(N, classes)``, or ``(logits, embedding)`` if asked."""
        embedding = self.embed(x)
        logits = self.fc(self.dropout(embedding))
        return (logits, embedding) if return_embedding else logits
