"""Test-time augmentation: a cell's prediction averaged over the 8 flips and 90-degree rotations.

A cell has no up or left, and training sees every orientation, so averaging a
classifier's class probabilities over the eight dihedral views of a crop
removes the part of its error that depends on the orientation. The views are
the four rotations of the crop and of its mirror image (:func:`dihedral_views`);
:func:`tta_classify` returns the log of the mean probabilities (so that a
softmax gives the mean back) and the mean embedding.

Examples
--------
>>> import torch
>>> from napari_hcs.nn.models import build_model
>>> model = build_model("cnn1", in_channels=1, num_classes=3, depth=1, width=1, hidden=8).eval()
>>> batch = torch.randn(2, 1, 8, 8)
>>> log_probs, embedding = tta_classify(model, batch)
>>> mean = torch.stack([torch.softmax(model(v), 1) for v in dihedral_views(batch)]).mean(0)
>>> bool(torch.allclose(torch.softmax(log_probs, 1), mean, atol=1e-6)), tuple(embedding.shape)
(True, (2, 8))
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DIHEDRAL_VIEWS", "dihedral_views", "tta_classify", "tta_logits"]

#: Number of views: 4 rotations of the crop and of its mirror image.
DIHEDRAL_VIEWS = 8
#: Floor of the mean probability before its log (keeps the log finite).
_FLOOR = 1e-30


def dihedral_views(batch: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips and 90-degree rotations of a batch ``(B, C, S, S)``, the batch itself first.

    Views keep the batch's memory format (channels-last stays channels-last).

    Examples
    --------
    >>> import torch
    >>> views = dihedral_views(torch.arange(4.0).view(1, 1, 2, 2))
    >>> len(views), len({tuple(v.flatten().tolist()) for v in views})
    (8, 8)
    """
    channels_last = batch.dim() == 4 and batch.is_contiguous(memory_format=torch.channels_last) \
        and not batch.is_contiguous()
    views = []
    for mirrored in (batch, batch.flip(-1)):
        for turns in range(4):
            view = torch.rot90(mirrored, turns, dims=(-2, -1)) if turns else mirrored
            if channels_last:
                view = view.contiguous(memory_format=torch.channels_last)
            views.append(view)
    return views


def _mean_over_views(model: nn.Module, batch: torch.Tensor):
    probabilities = embedding = None
    for view in dihedral_views(batch):
        logits, embedded = model(view, return_embedding=True)
        p = torch.softmax(logits.float(), dim=1)
        probabilities = p if probabilities is None else probabilities + p
        embedding = embedded.float() if embedding is None else embedding + embedded.float()
    return probabilities / DIHEDRAL_VIEWS, embedding / DIHEDRAL_VIEWS


def tta_classify(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log of the mean class probabilities, mean embedding)`` over the 8 views of each crop."""
    probabilities, embedding = _mean_over_views(model, batch)
    return torch.log(probabilities.clamp_min(_FLOOR)), embedding


def tta_logits(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The log mean probabilities alone (what validation scores)."""
    return tta_classify(model, batch)[0]
