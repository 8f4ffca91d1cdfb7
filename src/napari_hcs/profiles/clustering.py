"""Clustering cells and wells: k-means, agglomerative (with a dendrogram) and HDBSCAN.

The algorithms are scikit-learn's: :class:`~sklearn.cluster.KMeans` (its
mini-batch form past :data:`MINIBATCH_ABOVE` rows), :class:`~sklearn.cluster.AgglomerativeClustering`
with Ward linkage (Euclidean) or average linkage with cosine distance, and
:class:`~sklearn.cluster.HDBSCAN` (label -1: noise). Hierarchical clustering
also gives SciPy's linkage matrix and leaf order, the dendrogram; past
:data:`HIERARCHICAL_SAMPLE` rows both are computed on a random sample and the
other rows join the cluster of the nearest cluster centre.

:func:`cluster_cells` clusters a stored embedding and stores the ``clusters``
column group; :func:`cluster_wells` clusters the well profiles and writes the
``cluster`` column and the dendrogram into them.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> values = np.concatenate([rng.normal(0, 0.1, (10, 3)), rng.normal(5, 0.1, (10, 3))])
>>> result = cluster_values(values, ClusterOptions(method="hierarchical", k=2))
>>> sorted(np.bincount(result.labels).tolist()), result.linkage_matrix.shape, len(result.order)
([10, 10], (19, 4), 20)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..cancel import check_cancel
from ..vocabulary import CLUSTER_LINKAGES, CLUSTER_METHODS
from .cluster_metrics import cluster_report
from .embedding_store import EmbeddingStore
from .profile_store import read_well_profiles, write_well_profiles
from .reduction import require_finite_rows

__all__ = ["HIERARCHICAL_SAMPLE", "MINIBATCH_ABOVE", "ClusterOptions", "ClusterResult", "cluster_cells",
           "cluster_values", "cluster_wells"]

#: Rows above which k-means runs in mini-batches.
MINIBATCH_ABOVE = 50_000
#: Rows hierarchical clustering (and its dendrogram) is computed on; more rows are sampled.
HIERARCHICAL_SAMPLE = 5_000


@dataclass
class ClusterOptions:
    """How to cluster.

    Parameters
    ----------
    method : {"kmeans", "hierarchical", "hdbscan"}
        The algorithm.
    k : int
        Number of clusters (k-means and hierarchical).
    linkage : {"ward", "average"}
        Hierarchical clustering: Ward (Euclidean) or average linkage with cosine distance.
    min_cluster_size : int
        HDBSCAN: the smallest group that counts as a cluster.
    seed : int
        Seed of k-means and of the sample of hierarchical clustering.

    Examples
    --------
    >>> ClusterOptions(method="dbscan")
    Traceback (most recent call last):
    ...
    ValueError: ClusterOptions.method must be one of kmeans, hierarchical, hdbscan; got 'dbscan'.
    """

    method: str = "kmeans"
    k: int = 2
    linkage: str = "ward"
    min_cluster_size: int = 15
    seed: int = 0

    def __post_init__(self) -> None:
        for name, choices in (("method", CLUSTER_METHODS), ("linkage", CLUSTER_LINKAGES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"ClusterOptions.{name} must be one of {', '.join(choices)}; "
                                 f"got {getattr(self, name)!r}.")
        for name, minimum in (("k", 1), ("min_cluster_size", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"ClusterOptions.{name} must be an integer of at least {minimum}; got {value!r}.")
            setattr(self, name, int(value))

    def to_dict(self) -> dict:
        """The options that matter for the method (JSON-ready)."""
        out = {"method": self.method, "seed": self.seed}
        if self.method == "hdbscan":
            out["min_cluster_size"] = self.min_cluster_size
        else:
            out["k"] = self.k
        if self.method == "hierarchical":
            out["linkage"] = self.linkage
        return out


@dataclass
class ClusterResult:
    """Clusters of a set of rows.

    Attributes
    ----------
    labels : ndarray of int64, shape (N,)
        Cluster of each row, from 0; -1 for HDBSCAN's noise.
    linkage_matrix : ndarray or None
        SciPy linkage matrix ``(n - 1, 4)`` of hierarchical clustering (of the
        rows in ``sample`` when sampled), else None.
    order : ndarray of int or None
        Leaf order of the dendrogram (positions in the clustered rows, or in ``sample``).
    sample : ndarray of int or None
        Rows the dendrogram was computed on, when not all.
    report : ClusterReport or None
        Sizes and metrics, when computed (:func:`cluster_cells`, :func:`cluster_wells`).
    """

    labels: np.ndarray
    linkage_matrix: np.ndarray | None = None
    order: np.ndarray | None = None
    sample: np.ndarray | None = None
    report: object = None

    @property
    def n_clusters(self) -> int:
        """Clusters found (noise not counted)."""
        return int(len(np.unique(self.labels[self.labels >= 0])))


def _check_size(n: int, options: ClusterOptions, what: str) -> None:
    if options.method == "hdbscan":
        if options.min_cluster_size > n:
            raise ValueError(f"HDBSCAN's min_cluster_size {options.min_cluster_size} is larger than the number "
                             f"of {what} ({n}); give a smaller --min-cluster-size.")
        return
    if options.k > n:
        raise ValueError(f"k={options.k} clusters is larger than the number of {what} ({n}); "
                         f"give k of at most {n}.")


def cluster_values(values, options: ClusterOptions, *, what: str = "rows") -> ClusterResult:
    """Cluster ``(N, D)`` values.

    Parameters
    ----------
    values : array-like, shape (N, D)
        Finite values (an embedding, its 2-D reduction, well profiles).
    options : ClusterOptions
    what : str
        What the rows are (``"cells"``, ``"wells"``), for messages.

    Returns
    -------
    ClusterResult

    Raises
    ------
    ValueError
        NaN or infinite values (how many rows), k larger than the number of
        rows (naming both), cosine distance of an all-zero row.

    Examples
    --------
    >>> cluster_values(np.zeros((3, 2)), ClusterOptions(k=4), what="cells")
    Traceback (most recent call last):
    ...
    ValueError: k=4 clusters is larger than the number of cells (3); give k of at most 3.
    """
    values = require_finite_rows(values, what=f"The {what}' values")
    _check_size(len(values), options, what)
    if options.method == "kmeans":
        return ClusterResult(labels=_kmeans(values, options))
    if options.method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(min_cluster_size=options.min_cluster_size, copy=True).fit_predict(values)
        return ClusterResult(labels=np.asarray(labels, dtype=np.int64))
    return _hierarchical(values, options, what)


def _kmeans(values: np.ndarray, options: ClusterOptions) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(values) > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=options.k, random_state=options.seed, batch_size=4096, n_init=3)
    else:
        model = KMeans(n_clusters=options.k, random_state=options.seed, n_init=10)
    return np.asarray(model.fit_predict(values), dtype=np.int64)


def _hierarchical(values: np.ndarray, options: ClusterOptions, what: str) -> ClusterResult:
    from scipy.cluster.hierarchy import leaves_list, linkage
    from sklearn.cluster import AgglomerativeClustering

    cosine = options.linkage == "average"
    if cosine:
        zero = np.flatnonzero(~np.any(values != 0, axis=1))
        if len(zero):
            raise ValueError(f"{len(zero)} of the {what} (rows {', '.join(map(str, zero[:5]))}) are all zero, "
                             "which has no cosine distance; use Ward linkage.")
    sample = None
    fitted = values
    if len(values) > HIERARCHICAL_SAMPLE:
        rng = np.random.default_rng(options.seed)
        sample = np.sort(rng.choice(len(values), HIERARCHICAL_SAMPLE, replace=False))
        fitted = values[sample]
    metric = "cosine" if cosine else "euclidean"
    model = AgglomerativeClustering(n_clusters=min(options.k, len(fitted)), linkage=options.linkage, metric=metric)
    fitted_labels = np.asarray(model.fit_predict(fitted), dtype=np.int64)
    matrix = linkage(fitted, method=options.linkage, metric=metric) if len(fitted) > 1 else np.zeros((0, 4))
    order = leaves_list(matrix) if len(fitted) > 1 else np.zeros(1, dtype=np.int64)
    labels = fitted_labels if sample is None else _nearest_centre(values, fitted, fitted_labels, cosine)
    return ClusterResult(labels=labels, linkage_matrix=matrix, order=np.asarray(order, dtype=np.int64),
                         sample=sample)


def _nearest_centre(values: np.ndarray, fitted: np.ndarray, labels: np.ndarray, cosine: bool) -> np.ndarray:
    """Each row's cluster: the one whose centre (of the sampled rows) is nearest."""
    if cosine:
        values = values / np.linalg.norm(values, axis=1, keepdims=True)
        fitted = fitted / np.linalg.norm(fitted, axis=1, keepdims=True)
    names = np.unique(labels)
    centres = np.stack([fitted[labels == name].mean(axis=0) for name in names])
    out = np.empty(len(values), dtype=np.int64)
    for start in range(0, len(values), 65536):
        block = values[start:start + 65536]
        distances = ((block[:, None, :] - centres[None]) ** 2).sum(axis=2)
        out[start:start + 65536] = names[distances.argmin(axis=1)]
    return out


def _truth(table, labels_column: str | None, where: str):
    if labels_column is None:
        return None
    if labels_column not in table.columns:
        from ..names import shorten

        raise KeyError(f"Labels column {labels_column!r} is not in the {where}; its columns are: "
                       f"{shorten([str(c) for c in table.columns])}.")
    return table[labels_column].astype(str).where(table[labels_column].notna(), "").to_numpy()


def cluster_cells(project_dir: str | os.PathLike, *, embedding: str = "cnn", reduction: str | None = None,
                  options: ClusterOptions, labels_column: str | None = None,
                  progress: Callable[[int, int], None] | None = None, cancel=None) -> ClusterResult:
    """Cluster a project's cells on a stored embedding and store the ``clusters`` column group.

    Parameters
    ----------
    project_dir : path
        Project folder with the embedding (``napari-hcs embed``).
    embedding : str
        The embedding (``cnn``, ``features``, ``pca``, ``autoencoder``).
    reduction : {"umap", "pca"} or None
        Cluster its 2-D reduction ``<embedding>-<reduction>`` (made and stored
        when missing) instead of the embedding itself.
    options : ClusterOptions
    labels_column : str, optional
        A cell-table column of known classes (``compound``, ``class``): the
        report then has homogeneity, completeness and V-measure against it.
    progress : callable, optional
        ``progress(done, total)`` by stage (reduction, clustering, metrics).
    cancel : callable or threading.Event, optional
        Checked between the stages; nothing is stored when cancelled.

    Returns
    -------
    ClusterResult
        With ``report`` (:class:`~napari_hcs.profiles.cluster_metrics.ClusterReport`).

    Raises
    ------
    FileNotFoundError
        When the embedding was not made yet (naming the command that makes it).
    ValueError, KeyError
        As :func:`cluster_values`; an unknown labels column.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> values = np.concatenate([rng.normal(0, 1, (20, 3)), rng.normal(6, 1, (20, 3))])
    >>> EmbeddingStore(tmp_path).write("pca", np.arange(40), values, provenance={"source": "pca"})
    >>> result = cluster_cells(tmp_path, embedding="pca", options=ClusterOptions(k=2))
    >>> result.report.sizes_text(), EmbeddingStore(tmp_path).read_clusters()[1]["method"]
    ('20 / 20', 'kmeans')
    """
    from ..project import Project

    store = EmbeddingStore(project_dir)
    name = embedding if reduction is None else f"{embedding}-{reduction}"
    if reduction is not None and name not in store:
        from .reduction import reduce_embedding

        store.read(embedding)  # a clear error when the embedding itself is missing
        reduce_embedding(project_dir, embedding, method=reduction, seed=options.seed, cancel=cancel)
    stored = store.read(name)
    _report(progress, 1, 3)
    truth = None
    if labels_column is not None:
        table = Project(project_dir).cell_table()
        truth = _truth(table.set_index("crop_index").reindex(stored.crop_index).reset_index(), labels_column,
                       "cell table")
    values = require_finite_rows(stored.values[:], what=f"Embedding {name!r} of {project_dir}")
    check_cancel(cancel, "Clustering was cancelled; nothing was stored.")
    result = cluster_values(values, options, what="cells")
    _report(progress, 2, 3)
    check_cancel(cancel, "Clustering was cancelled; nothing was stored.")
    result.report = cluster_report(values, result.labels, truth=truth, seed=options.seed)
    provenance = {"embedding": embedding, "reduction": reduction, **options.to_dict(),
                  "labels_column": labels_column, "cells": int(len(values)), "sizes": result.report.sizes_text(),
                  "metrics": result.report.metrics}
    with Project(project_dir).lock(wait=False, command="napari-hcs: storing cell clusters"):
        store.write_clusters(stored.crop_index, result.labels, provenance=provenance)
    _report(progress, 3, 3)
    return result


def cluster_wells(project_dir: str | os.PathLike, *, options: ClusterOptions,
                  labels_column: str | None = None) -> ClusterResult:
    """Cluster the project's well profiles; write the ``cluster`` column and the dendrogram into them.

    The profiles (``napari-hcs profile``) get a ``cluster`` column, and their
    provenance ``clusters``: the options, sizes, metrics, and for hierarchical
    clustering the SciPy ``linkage_matrix``, the leaf ``order`` and the
    ``well_labels`` (``plate well`` of each row) a dendrogram is drawn from.

    Raises
    ------
    FileNotFoundError
        When the project has no well profiles.
    ValueError, KeyError
        As :func:`cluster_values` (k larger than the number of wells names
        both); profiles with NaN values (naming the wells).

    Examples
    --------
    >>> wells = pd.DataFrame({"plate": "P1", "well": ["B02", "B03", "C02", "C03"],
    ...                       "feat_a": [0.0, 0.1, 5.0, 5.2], "feat_b": [1.0, 1.1, 0.0, 0.1]})
    >>> write_well_profiles(tmp_path, wells, features=["feat_a", "feat_b"], provenance={})
    >>> result = cluster_wells(tmp_path, options=ClusterOptions(method="hierarchical", k=2))
    >>> clusters = read_well_profiles(tmp_path).provenance["clusters"]
    >>> result.labels.tolist() == read_well_profiles(tmp_path).table["cluster"].tolist(), clusters["well_labels"][:2]
    (True, ['P1 B02', 'P1 B03'])
    """

    profiles = read_well_profiles(project_dir)
    table = profiles.table.drop(columns=["cluster"], errors="ignore").reset_index(drop=True)
    well_labels = _well_labels(table)
    values = table[profiles.features].to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        wells = ", ".join(np.asarray(well_labels)[bad][:5])
        raise ValueError(f"{int(bad.sum())} of {len(values)} well profile(s) hold NaN or infinite values "
                         f"(wells {wells}); rebuild the profiles with feature selection (drop_na_columns).")
    result = cluster_values(values, options, what="wells")
    result.report = cluster_report(values, result.labels, truth=_truth(table, labels_column, "well profiles"),
                                   seed=options.seed)
    table["cluster"] = result.labels
    clusters = {**options.to_dict(), "labels_column": labels_column, "wells": int(len(values)),
                "sizes": result.report.sizes_text(), "metrics": result.report.metrics, "well_labels": well_labels}
    if result.linkage_matrix is not None:
        clusters.update(linkage_matrix=result.linkage_matrix.tolist(), order=result.order.tolist(),
                        sample=None if result.sample is None else result.sample.tolist())
    provenance = {k: v for k, v in profiles.provenance.items() if k != "features"}
    from ..project import Project

    with Project(project_dir).lock(wait=False, command="napari-hcs: storing well clusters"):
        write_well_profiles(project_dir, table, features=profiles.features,
                            provenance={**provenance, "clusters": clusters})
    return result


def _well_labels(table) -> list[str]:
    wells = table["well"].astype(str) if "well" in table else table.index.astype(str)
    if "plate" in table:
        return [f"{p} {w}" for p, w in zip(table["plate"].astype(str), wells)]
    return [str(w) for w in wells]


def _report(progress, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)

