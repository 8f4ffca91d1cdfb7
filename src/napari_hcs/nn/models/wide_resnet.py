"""Wide residual network with pre-activation blocks (Zagoruyko & Komodakis 2016).

Three stages of ``depth`` blocks with ``16k``, ``32k`` and ``64k`` channels
(``k`` = ``width``); the second and third stages start with a stride-2 block.
Each block is BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 plus a shortcut (a 1x1
convolution where the shape changes). Global average pooling makes the network
independent of the crop size.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PreActBlock", "WideResNet"]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv, BN-ReLU-(dropout)-conv, plus shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(self.bn1(x))
        # The projection shortcut sees the activated input, as in the pre-activation paper.
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv1(activated)
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """Pre-activation wide ResNet classifier.

    Parameters
    ----------
    in_channels : int
        Number of image channels.
    num_classes : int
        Number of output classes.
    depth : int
        Blocks per stage (``n``); the network has ``6n + 2`` convolution layers.
    width : int
        Widening factor ``k``: the stages have ``16k``, ``32k``, ``64k`` channels.
    dropout : float
        Dropout rate between the two convolutions of each block (0 disables it).
    crop_size : int, optional
        Accepted for a uniform model interface; the network works at any size.

    Examples
    --------
    >>> model = WideResNet(4, 8, depth=2, width=2)
    >>> logits, embedding = model(torch.zeros(1, 4, 32, 32), return_embedding=True)
    >>> logits.shape, embedding.shape
    (torch.Size([1, 8]), torch.Size([1, 128]))
    """

    task = "classification"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        depth: int = 2,
        width: int = 2,
        dropout: float = 0.0,
        crop_size: int | None = None,
    ):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"Wide ResNet needs depth >= 1 and width >= 1; got depth={depth}, width={width}.")
        widths = [16 * width, 32 * width, 64 * width]
        self.stem = conv3x3(in_channels, 16)
        stages = []
        channels = 16
        for stage, out_channels in enumerate(widths):
            blocks = []
            for block in range(depth):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(PreActBlock(channels, out_channels, stride, dropout))
                channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.embedding_dim = channels
        _initialise(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled penultimate features, shape ``(N, 64k)``."""
        out = self.stages(self.stem(x))
        return torch.flatten(self.pool(torch.relu(self.bn(out))), 1)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        """Return logits ``(N, classes)``, or ``(logits, embedding)`` if asked."""
        embedding = self.embed(x)
        logits = self.fc(embedding)
        return (logits, embedding) if return_embedding else logits


def _initialise(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
