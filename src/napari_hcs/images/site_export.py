"""Site embeddings for clustering elsewhere: one row per site or per well, as CSV, Parquet or AnnData.

The format is the file's suffix (:data:`~napari_hcs.vocabulary.EXPORT_FORMATS`):
``.csv`` and ``.parquet`` hold the metadata columns (``plate``, ``well``,
``field``, ``timepoint``, ``site_key``, the well annotations, ``cluster`` when
the sites were clustered), then the embedding as ``<name>_000`` ... columns;
``.h5ad`` (anndata) holds the metadata as ``obs``, the embedding as ``X`` and as
``obsm["X_<name>"]`` (``X_site_pca``, ...), and the provenance in ``uns``. Well
rows are the median of their sites (:func:`~napari_hcs.images.site_embeddings.well_embeddings`).

Examples
--------
>>> from napari_hcs.images.site_embeddings import SiteEmbeddingOptions, embed_sites
>>> embedding = embed_sites(plate, project_dir=tmp_path / "project", options=SiteEmbeddingOptions(size=16))
>>> export_site_embedding(embedding, tmp_path / "sites.csv")
6
>>> pd.read_csv(tmp_path / "sites.csv").columns[:6].tolist()
['plate', 'well', 'field', 'timepoint', 'site_key', 'Genotype']
>>> export_site_embedding(embedding, tmp_path / "wells.h5ad", wells=True)
2
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_parquet_atomic, write_text_atomic
from ..vocabulary import EXPORT_FORMATS
from .site_embeddings import SiteEmbedding, dimension_columns

__all__ = ["export_format", "export_site_embedding"]


def export_format(out: str | os.PathLike) -> str:
    """The format of an export file from its suffix; a clear error for another suffix."""
    out = Path(out)
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"Export file {out}: the suffix gives the format; expected one of "
                         f"{', '.join('.' + f for f in EXPORT_FORMATS)}.")
    return suffix


def _rows(embedding: SiteEmbedding, clusters, wells: bool) -> tuple[pd.DataFrame, np.ndarray]:
    if wells:
        table = embedding.wells()
        columns = dimension_columns(embedding.values.shape[1])
        values, meta = table[columns].to_numpy(dtype=np.float32), table.drop(columns=columns)
        if clusters is not None and clusters.wells is not None:
            meta = meta.merge(clusters.wells, on=["plate", "well"], how="left")
        return meta, values
    meta = embedding.table.drop(columns=["site_index"])
    if clusters is not None:
        meta = meta.assign(cluster=pd.Series(dict(zip(clusters.site_keys, clusters.labels))).reindex(
            meta["site_key"]).to_numpy())
    return meta.reset_index(drop=True), np.asarray(embedding.values, dtype=np.float32)


def _h5ad(meta: pd.DataFrame, values: np.ndarray, key: str, provenance: dict, tmp: Path) -> None:
    import anndata

    obs = meta.astype({c: str for c in meta.columns if meta[c].dtype == object})
    obs.index = (obs["site_key"] if "site_key" in obs else obs["plate"].astype(str) + "/" + obs["well"]).astype(str)
    uns = {"provenance": json.dumps(provenance, default=str)}
    anndata.AnnData(X=values, obs=obs, obsm={f"X_{key}": values}, uns=uns).write_h5ad(tmp)


def export_site_embedding(embedding: SiteEmbedding, out: str | os.PathLike, *, clusters=None,
                          wells: bool = False, overwrite: bool = True) -> int:
    """Write a site embedding (or its well medians) to ``out``; return the number of rows.

    Parameters
    ----------
    embedding : SiteEmbedding
        The embedding.
    out : path
        ``.csv``, ``.parquet`` or ``.h5ad``; written atomically.
    clusters : SiteClusters, optional
        Adds each row's ``cluster``.
    wells : bool
        One row per well (the median of its sites) instead of one per site.
    overwrite : bool
        Replace an existing file (else refuse, naming it).
    """
    from ..io.outputs import check_new_file

    out = Path(out)
    kind = export_format(out)
    check_new_file(out, overwrite=overwrite, what="Export file")
    meta, values = _rows(embedding, clusters, wells)
    key = embedding.name.replace("-", "_")
    provenance = {**embedding.provenance, "level": "well" if wells else "site"}
    if kind == "h5ad":
        with atomic_path(out) as tmp:
            _h5ad(meta, values, key, provenance, tmp)
        return len(meta)
    frame = pd.concat([meta, pd.DataFrame(values, columns=[f"{key}_{i:03d}" for i in range(values.shape[1])])],
                      axis=1)
    if kind == "parquet":
        write_parquet_atomic(frame, out)
    else:
        write_text_atomic(frame.to_csv(index=False), out)
    return len(frame)
