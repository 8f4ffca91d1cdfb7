"""Reducing embeddings to a few dimensions: PCA (scikit-learn) and UMAP (umap-learn).

:func:`reduce_values` reduces an array; :func:`reduce_embedding` reduces a stored
embedding and stores the result as ``<name>-<method>`` (``cnn-umap``), the
coordinates a scatter plot draws.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> values = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(6, 1, (20, 5))])
>>> reduce_values(values, method="pca").shape
(40, 2)
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np

from ..cancel import check_cancel
from ..vocabulary import REDUCTIONS
from .embedding_store import Embedding, EmbeddingStore

__all__ = ["UMAP_NEIGHBOURS", "reduce_embedding", "reduce_values", "require_finite_rows"]

#: Neighbours of each point in the UMAP graph (umap-learn's default).
UMAP_NEIGHBOURS = 15
#: Below this many rows umap-learn computes every distance (exact neighbours) itself.
EXACT_NEIGHBOURS_BELOW = 4096


def require_finite_rows(values: np.ndarray, *, what: str = "The embedding") -> np.ndarray:
    """Return ``values`` as a 2-D float array; a clear error when rows hold NaN or infinite values.

    Examples
    --------
    >>> require_finite_rows(np.array([[1.0, np.nan], [0.0, 1.0]]), what="Embedding 'cnn'")
    Traceback (most recent call last):
    ...
    ValueError: Embedding 'cnn' has 1 of 2 row(s) with NaN or infinite values (rows 0); expected finite values.
    """
    values = np.asarray(values, dtype=np.float64 if np.asarray(values).dtype == np.float64 else np.float32)
    if values.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (rows x dimensions); got shape {values.shape}.")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        listed = ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
        raise ValueError(f"{what} has {len(rows)} of {len(values)} row(s) with NaN or infinite values "
                         f"(rows {listed}); expected finite values.")
    return values


def reduce_values(values, *, method: str = "umap", n_components: int = 2, seed: int | None = 0,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Reduce ``(N, D)`` values to ``(N, n_components)`` with PCA or UMAP.

    Parameters
    ----------
    values : array-like, shape (N, D)
        Finite values (an embedding, features).
    method : {"umap", "pca"}
        UMAP (umap-learn, Euclidean, 15 neighbours) or PCA (scikit-learn).
    n_components : int
        Dimensions of the result.
    seed : int or None
        Seed of UMAP's layout and PCA's randomised solver; None lets UMAP use
        every core (not reproducible).
    progress : callable, optional
        ``progress(done, total)`` by stage: UMAP reports after its nearest
        neighbours and after its layout, PCA when done.

    Returns
    -------
    ndarray of float32, shape (N, n_components)

    Raises
    ------
    ValueError
        An unknown method, NaN or infinite values (naming how many rows), fewer
        rows than UMAP needs (3) or more components than the values allow.
    """
    if method not in REDUCTIONS:
        raise ValueError(f"Reduction {method!r} is not known; choose one of {', '.join(REDUCTIONS)}.")
    values = require_finite_rows(values, what="The values to reduce")
    n, dims = values.shape
    n_components = int(n_components)
    if n_components < 1 or n_components > dims or n_components >= n:
        raise ValueError(f"Cannot reduce {n} row(s) of {dims} dimension(s) to {n_components} with {method}; "
                         f"expected 1 <= n_components <= {min(dims, n - 1)}.")
    if method == "pca":
        from sklearn.decomposition import PCA

        out = PCA(n_components=n_components, random_state=seed).fit_transform(values)
        _report(progress, 1, 1)
        return out.astype(np.float32)
    return _umap(values, n_components, seed, progress)


def _umap(values: np.ndarray, n_components: int, seed: int | None, progress) -> np.ndarray:
    import umap
    from umap.umap_ import nearest_neighbors

    n = len(values)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 rows; got {n}. Use the 'pca' reduction for so few.")
    neighbours = min(UMAP_NEIGHBOURS, n - 1)
    state = None if seed is None else np.random.RandomState(seed)
    jobs = 1 if seed is not None else -1
    knn = (None, None, None)
    if n >= EXACT_NEIGHBOURS_BELOW:
        # The neighbours are searched first, so that the (long) search reports progress of its own.
        knn = nearest_neighbors(values, neighbours, "euclidean", {}, False, state, low_memory=True, n_jobs=jobs)
    _report(progress, 1, 2)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=neighbours, random_state=seed,
                        precomputed_knn=knn, init="spectral" if n > n_components + 10 else "random",
                        n_jobs=jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap-learn's notes on seeds, threads and small data
        out = reducer.fit_transform(values)
    _report(progress, 2, 2)
    return np.asarray(out, dtype=np.float32)


def _report(progress, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def reduce_embedding(project_dir: str | os.PathLike, name: str, *, method: str = "umap", seed: int | None = 0,
                     progress: Callable[[int, int], None] | None = None, cancel=None) -> Embedding:
    """Reduce the stored embedding ``name`` to 2-D and store it as ``<name>-<method>``.

    Parameters
    ----------
    project_dir : path
        Project folder with the embedding (see :mod:`~napari_hcs.profiles.embedding_store`).
    name : str
        A stored embedding (``cnn``, ``features``, ``pca``, ``autoencoder``).
    method, seed, progress
        As for :func:`reduce_values`.
    cancel : callable or threading.Event, optional
        Checked before the reduction and before it is stored.

    Returns
    -------
    Embedding
        The stored 2-D coordinates, provenance ``source``, ``embedding``, ``reduction``, ``seed``.

    Raises
    ------
    FileNotFoundError
        When the project has no such embedding (naming the ones it has).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> EmbeddingStore(tmp_path).write("pca", np.arange(30), rng.normal(size=(30, 4)),
    ...                                provenance={"source": "pca"})
    >>> reduced = reduce_embedding(tmp_path, "pca", method="pca")
    >>> reduced.name, reduced.values.shape, reduced.provenance["reduction"]
    ('pca-pca', (30, 2), 'pca')
    """
    store = EmbeddingStore(project_dir)
    embedding = store.read(name)
    check_cancel(cancel, f"Reducing embedding {name!r} was cancelled.")
    values = require_finite_rows(embedding.values[:], what=f"Embedding {name!r} of {project_dir}")
    reduced = reduce_values(values, method=method, seed=seed, progress=progress)
    check_cancel(cancel, f"Reducing embedding {name!r} was cancelled; nothing was stored.")
    target = f"{name}-{method}"
    provenance = {"source": embedding.provenance.get("source", name), "embedding": name, "reduction": method,
                  "seed": seed, "n_components": int(reduced.shape[1]),
                  "model": embedding.provenance.get("model")}
    store.write(target, embedding.crop_index, reduced, provenance=provenance)
    return store.read(target)
