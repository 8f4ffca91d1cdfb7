"""Embeddings, reduction, clustering, well profiles, their evaluation and export (no Qt).

======================  =====================================================================
module                  what it does
======================  =====================================================================
embedding_store         per-cell embeddings (``embeddings/<name>``) and cell clusters
cell_embeddings         embeddings from a CNN, the features, PCA of crops, an autoencoder
reduction               PCA and UMAP of an embedding
clustering              k-means, hierarchical (with a dendrogram), HDBSCAN of cells or wells
cluster_metrics         silhouette, Davies-Bouldin, homogeneity / completeness / V-measure
profile_store           well profiles (``profiles/wells.parquet``)
well_profiles           aggregation per well, normalisation on controls, feature selection
profile_evaluation      NSC / NSCB 1-NN MoA accuracy, mAP (copairs)
export                  CSV, Parquet and AnnData (.h5ad) exports, streamed
======================  =====================================================================

The names below are imported on first use, so importing this package stays cheap.

Examples
--------
>>> from napari_hcs import profiles
>>> profiles.ClusterOptions(method="kmeans", k=3).k
3
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "embedding_store": ["CLUSTER_COLUMN", "Embedding", "EmbeddingStore"],
    "profile_store": ["WellProfiles", "read_well_profiles", "write_well_profiles"],
    "cell_embeddings": ["EmbedRequest", "embed_cells"],
    "reduction": ["reduce_embedding", "reduce_values"],
    "clustering": ["ClusterOptions", "ClusterResult", "cluster_cells", "cluster_values", "cluster_wells"],
    "cluster_metrics": ["ClusterReport", "cluster_report", "table_6_1"],
    "well_profiles": ["ProfileOptions", "aggregate_wells", "build_well_profiles", "profile_wells"],
    "profile_evaluation": ["MapResult", "NscResult", "evaluate_profiles", "mean_average_precision",
                           "nsc_accuracy", "treatment_profiles"],
    "export": ["ExportOptions", "ExportSummary", "export_project"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
