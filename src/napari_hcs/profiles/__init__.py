"""Embeddings, reduction, clustering, well profiles, their evaluation and export (no Qt).

Stored in the project folder: :mod:`~napari_hcs.profiles.embedding_store` (per-cell
embeddings and cell clusters) and :mod:`~napari_hcs.profiles.profile_store` (well profiles).
"""

from .embedding_store import CLUSTER_COLUMN, Embedding, EmbeddingStore
from .profile_store import WellProfiles, read_well_profiles, write_well_profiles

__all__ = [
    "CLUSTER_COLUMN",
    "Embedding",
    "EmbeddingStore",
    "WellProfiles",
    "read_well_profiles",
    "write_well_profiles",
]
