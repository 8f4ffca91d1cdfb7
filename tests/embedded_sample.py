"""The bundled sample segmented, with a PCA embedding of its crops, a 2-D reduction and clusters.

Imported by basename (tests/ is on ``sys.path``) by the viewer and widget tests of the
Embeddings section, so they need no embedding code but the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from predicted_sample import plausible_predictions, segmented_sample
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from napari_hcs.io import open_plate
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.project import Project
from napari_hcs.samples import sample_layout, sample_path


def sample_plate():
    return open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())


def embedded_sample(folder: Path) -> Path:
    """Segment the sample into ``folder``; store ``pca`` (8-D), ``pca-pca`` (2-D), 2 k-means clusters, predictions."""
    segmented_sample(folder)
    project = Project(folder)
    store = project.cell_store()
    cells = store.cells()
    crops = np.asarray(store.crops[:], dtype=np.float32).reshape(len(cells), -1)
    values = PCA(8, random_state=0).fit_transform(crops / (crops.max() or 1.0)).astype(np.float32)
    embeddings = EmbeddingStore(folder)
    crop_index = cells["crop_index"].to_numpy()
    embeddings.write("pca", crop_index, values, provenance={"source": "pca"})
    embeddings.write("pca-pca", crop_index, values[:, :2], provenance={"source": "pca", "reduction": "pca"})
    clusters = KMeans(2, n_init=4, random_state=0).fit_predict(values)
    embeddings.write_clusters(crop_index, clusters, provenance={"embedding": "pca", "method": "kmeans", "k": 2})
    plausible_predictions(project)
    return folder
