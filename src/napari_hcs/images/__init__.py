"""The whole-image path (no Qt): preprocessing, illumination correction, quality control, site embeddings.

======================  =====================================================================
module                  what it does
======================  =====================================================================
preprocess              outlier removal, rolling ball, median, TV denoising, centre crop
illumination            CellProfiler-style illumination functions per plate and channel
basic_illumination      BaSiC flat- and dark-field (basicpy, when installed)
corrected_loader        a plate whose pixels are corrected on the fly
quality                 per site and channel: PowerLogLogSlope, FocusScore, saturation, ...
qc_flags                robust outliers per plate and channel, with the reason
qc_run                  quality control of a whole plate into ``qc/sites.parquet``
site_exclusions         flagged and kept sites (``qc/exclusions.json``)
site_embeddings         site embeddings: PCA, per-channel autoencoders, a site classifier
site_clusters           k-means of site embeddings and their Table 6.1
======================  =====================================================================

The names below are imported on first use, so importing this package stays cheap.

Examples
--------
>>> from napari_hcs import images
>>> images.QcThresholds().saturation_percent > 0
True
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "site_exclusions": ["SiteExclusions", "drop_excluded_cells", "table_site_keys"],
    "preprocess": ["PreprocessOptions", "preprocess_site"],
    "illumination": ["IlluminationFunctions", "IlluminationOptions", "apply_illumination",
                     "estimate_illumination", "load_illumination"],
    "corrected_loader": ["CorrectedLoader", "corrected_plate", "record_illumination",
                         "with_project_illumination"],
    "quality": ["QUALITY_METRICS", "focus_score", "power_log_log_slope", "site_quality"],
    "qc_flags": ["QcThresholds", "flag_sites"],
    "qc_run": ["QcResult", "read_qc_table", "run_qc"],
    "site_embeddings": ["SiteEmbedding", "SiteEmbeddingOptions", "embed_sites", "read_site_embedding"],
    "site_clusters": ["cluster_site_embedding", "site_table_6_1"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
