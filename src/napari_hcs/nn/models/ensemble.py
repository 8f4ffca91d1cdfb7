"""An ensemble of networks trained with different seeds, as one model.

:class:`SeedEnsemble` averages its members' class probabilities (its logits are
the log of the mean, so a softmax gives the mean back) and concatenates their
embeddings (the members' embedding spaces are not aligned, so they are not
averaged). It has the interface of every classifier of :mod:`napari_hcs.nn.models`,
and its ``config`` (``{"name": "ensemble", "members": [config, ...]}``) lets a
checkpoint rebuild it.

Examples
--------
>>> import torch
>>> from napari_hcs.nn.models import build_model
>>> members = [build_model("cnn1", in_channels=1, num_classes=2, depth=1, width=1, hidden=4) for _ in range(2)]
>>> ensemble = SeedEnsemble(members).eval()
>>> logits, embedding = ensemble(torch.randn(3, 1, 8, 8), return_embedding=True)
>>> tuple(logits.shape), tuple(embedding.shape), ensemble.config["name"]
((3, 2), (3, 8), 'ensemble')
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ENSEMBLE", "SeedEnsemble"]

#: ``config["name"]`` of an ensemble.
ENSEMBLE = "ensemble"


class SeedEnsemble(nn.Module):
    """Classifiers of one architecture trained with different seeds, averaged.

    Parameters
    ----------
    members : list of torch.nn.Module
        Classifiers built by :func:`napari_hcs.nn.models.build_model`.
    """

    task = "classification"

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("An ensemble needs at least one member.")
        self.members = nn.ModuleList(members)
        self.embedding_dim = sum(int(m.embedding_dim) for m in members)
        self.config = {"name": ENSEMBLE, "members": [dict(m.config) for m in members]}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The members' embeddings side by side ``(N, sum of their dims)``."""
        return torch.cat([m.embed(x) for m in self.members], dim=1)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        """Log mean probabilities ``(N, classes)``, or ``(those, embedding)`` if asked."""
        probabilities, embeddings = 0.0, []
        for member in self.members:
            logits, embedding = member(x, return_embedding=True)
            probabilities = probabilities + torch.softmax(logits.float(), dim=1)
            embeddings.append(embedding)
        logits = torch.log((probabilities / len(self.members)).clamp_min(1e-30))
        if return_embedding:
            return logits, torch.cat(embeddings, dim=1)
        return logits
