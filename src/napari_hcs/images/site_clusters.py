"""Clusters of site embeddings and of their well medians, with the study's Table 6.1 metrics.

:func:`cluster_site_embedding` clusters the sites of a
:class:`~napari_hcs.images.site_embeddings.SiteEmbedding` with
:func:`napari_hcs.profiles.clustering.cluster_values` (k-means by default) and
scores them with :func:`napari_hcs.profiles.cluster_metrics.cluster_report`
against a well annotation (``class``, ``Genotype``, ...) when the wells have it.
The wells (the median of their sites) are clustered too when there are more
wells than clusters. :func:`write_site_clusters` keeps the result in the project
(``embeddings/site-clusters.json``, one entry per embedding), beside the embedding.

Examples
--------
>>> from napari_hcs.images.site_embeddings import SiteEmbeddingOptions, embed_sites
>>> embedding = embed_sites(plate, project_dir=tmp_path, options=SiteEmbeddingOptions(size=16))
>>> clusters = cluster_site_embedding(embedding, k=2, labels_column="Genotype")
>>> sorted(clusters.report.sizes.values()), clusters.wells is None
([3, 3], True)
>>> write_site_clusters(tmp_path, clusters)
>>> read_site_clusters(tmp_path)["site-pca"]["labels_column"]
'Genotype'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_json_atomic
from .site_embeddings import SiteEmbedding, dimension_columns

__all__ = ["SITE_CLUSTERS_FILE", "SiteClusters", "cluster_site_embedding", "read_site_clusters",
           "site_table_6_1", "write_site_clusters"]

#: Where the clusters of the site embeddings are kept, inside the project folder.
SITE_CLUSTERS_FILE = Path("embeddings") / "site-clusters.json"


@dataclass
class SiteClusters:
    """The clusters of one site embedding.

    Attributes
    ----------
    name : str
        The embedding (``site-pca``, ...).
    site_keys : list of str
        The sites clustered, in the order of ``labels``.
    labels : ndarray of int
        Each site's cluster.
    report : ClusterReport
        Cluster sizes and metrics of the sites (truth: ``labels_column`` when the wells have it).
    options : ClusterOptions
        How they were clustered.
    labels_column : str or None
        The well annotation scored against (None when the wells lack it).
    wells : DataFrame or None
        ``plate``, ``well``, ``cluster`` of the well medians, when there are more wells than clusters.
    well_report : ClusterReport or None
        Their metrics.
    """

    name: str
    site_keys: list[str]
    labels: np.ndarray
    report: object
    options: object
    labels_column: str | None = None
    wells: pd.DataFrame | None = None
    well_report: object | None = None

    def to_json(self) -> dict:
        """A JSON-ready summary (clusters per site and well, sizes, metrics)."""
        from dataclasses import asdict

        out = {"embedding": self.name, "rows": "sites", **asdict(self.options), "labels_column": self.labels_column,
               "sites": dict(zip(self.site_keys, (int(v) for v in self.labels))),
               "sizes": {str(k): int(v) for k, v in self.report.sizes.items()},
               "metrics": _plain(self.report.metrics)}
        if self.wells is not None:
            out["wells"] = dict(zip(self.wells["well"], (int(v) for v in self.wells["cluster"])))
            out["well_metrics"] = _plain(self.well_report.metrics)
        return out


def _plain(metrics: dict) -> dict:
    return {str(k): (None if v is None or not np.isfinite(float(v)) else float(v)) for k, v in metrics.items()}


def _truth(table: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if column is None or column not in table.columns or table[column].isna().all():
        return None
    return table[column].astype(str).where(table[column].notna(), "").to_numpy()


def cluster_site_embedding(embedding: SiteEmbedding, *, k: int = 2, labels_column: str | None = "class",
                           options=None) -> SiteClusters:
    """Cluster the sites (and, with more wells than ``k``, the wells) of a site embedding.

    Parameters
    ----------
    embedding : SiteEmbedding
        From :func:`~napari_hcs.images.site_embeddings.embed_sites` or
        :func:`~napari_hcs.images.site_embeddings.read_site_embedding` (with the plate).
    k : int
        Number of clusters (when ``options`` is not given).
    labels_column : str or None
        Well annotation the clusters are scored against (homogeneity,
        completeness, V-measure); left out when the wells lack it.
    options : ClusterOptions, optional
        Method, k, linkage, seed; default k-means with ``k``.

    Raises
    ------
    ValueError
        When there are fewer sites than clusters.
    """
    from ..profiles.cluster_metrics import cluster_report
    from ..profiles.clustering import ClusterOptions, cluster_values

    options = ClusterOptions(method="kmeans", k=k) if options is None else options
    values = np.asarray(embedding.values, dtype=np.float64)
    if len(values) < options.k:
        raise ValueError(f"{embedding.name}: {len(values)} site(s) cannot make {options.k} clusters; "
                         "lower --k.")
    truth = _truth(embedding.table, labels_column)
    labels = np.asarray(cluster_values(values, options).labels)
    report = cluster_report(values, labels, truth=truth, seed=options.seed)
    clusters = SiteClusters(name=embedding.name, site_keys=embedding.table["site_key"].tolist(), labels=labels,
                            report=report, options=options, labels_column=labels_column if truth is not None else None)
    wells = embedding.wells()
    if len(wells) > options.k:
        well_values = wells[dimension_columns(values.shape[1])].to_numpy(dtype=np.float64)
        well_labels = np.asarray(cluster_values(well_values, options).labels)
        clusters.wells = wells[["plate", "well"]].assign(cluster=well_labels)
        clusters.well_report = cluster_report(well_values, well_labels, truth=_truth(wells, labels_column),
                                              seed=options.seed)
    return clusters


def site_table_6_1(clusters: dict[str, SiteClusters]) -> pd.DataFrame:
    """The study's Table 6.1 of the sites: one row per embedding (``{row name: clusters}``)."""
    from ..profiles.cluster_metrics import table_6_1

    return table_6_1({name: c.report for name, c in clusters.items()})


def write_site_clusters(project_dir: str | os.PathLike, clusters: SiteClusters) -> None:
    """Keep the clusters of a site embedding in the project (replacing that embedding's earlier ones)."""
    stored = read_site_clusters(project_dir)
    stored[clusters.name] = clusters.to_json()
    write_json_atomic(dict(sorted(stored.items())), Path(project_dir) / SITE_CLUSTERS_FILE)


def read_site_clusters(project_dir: str | os.PathLike) -> dict[str, dict]:
    """Embedding name -> its stored clusters (empty when none were made)."""
    path = Path(project_dir) / SITE_CLUSTERS_FILE
    return json.loads(path.read_text()) if path.exists() else {}
