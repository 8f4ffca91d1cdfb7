"""What an export holds, row block by row block: cells of a project, or its well profiles.

:func:`cell_plan` reads a project's cell table a site part at a time (identity and
``feat_*`` columns), adds the other column groups (predictions, clusters, ...), the
well annotations and the cells' own classes, and each stored embedding's rows for those
cells; :func:`well_plan` gives the well profiles. Either way the result is an
:class:`ExportPlan`: the columns and their kinds, the arrays (``X`` and ``obsm``), the
provenance, and the blocks of rows, which the writers of
:mod:`~napari_hcs.profiles.export` consume one at a time.

Examples
--------
>>> from napari_hcs.project import CellStore
>>> store = CellStore.create(tmp_path, channels=["DNA"], crop_size=1)
>>> rows = pd.DataFrame({"plate": "P1", "well": ["B02", "B03"], "label": [1, 2]})
>>> _ = store.append_site("B02_f000_t000", rows, np.zeros((2, 1, 1, 1)))
>>> EmbeddingStore(tmp_path).write("cnn", np.array([1]), np.ones((1, 3)), provenance={"model": "m"})
>>> plan = cell_plan(tmp_path)
>>> plan.rows, plan.obsm, plan.x_source
(2, {'X_cnn': 3}, 'cnn')
>>> block = next(plan.blocks(1000))
>>> block.obs["well"].tolist(), block.obsm["X_cnn"][:, 0].tolist(), plan.missing()
(['B02', 'B03'], [nan, 1.0], {'cnn': 1})
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..vocabulary import CROP_INDEX, EMBEDDING_PREFIX, EMBEDDING_SOURCES, FEATURE_PREFIX
from .embedding_rows import ColumnGroupRows, StoredRows
from .embedding_store import EmbeddingStore
from .export_columns import coerce, kind_of_arrow, kinds_of_frame
from .profile_store import read_well_profiles

__all__ = ["ExportBlock", "ExportPlan", "cell_plan", "obsm_keys", "well_plan"]

#: The column group ``napari-hcs predict`` writes its ``emb_*`` columns to.
PREDICTED_GROUP = "embeddings"


@dataclass
class ExportBlock:
    """Consecutive rows of an export: ``obs`` (coerced metadata), their names, ``x``, ``obsm``."""

    obs: pd.DataFrame
    names: np.ndarray
    x: np.ndarray | None
    obsm: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ExportPlan:
    """Everything a writer needs before the first row, and the rows in blocks.

    Attributes
    ----------
    level : str
        ``cell`` or ``well``.
    rows : int
        Number of rows.
    obs_kinds : dict
        Metadata column -> kind (:mod:`~napari_hcs.profiles.export_columns`), in order.
    x_names : list of str
        Names of the columns of ``X`` (features, a profile, or an embedding's dimensions).
    x_source : str or None
        ``features``, ``profile`` or the embedding ``X`` is; None when there is no ``X``.
    obsm : dict
        ``obsm`` key (``X_cnn``, ``X_umap``, ...) -> dimensions.
    prefixes : dict
        ``obsm`` key -> prefix of its columns in a flat table (``cnn`` gives ``cnn_000``, ...).
    uns : dict
        Provenance.
    blocks : callable
        ``blocks(block_rows)`` yields :class:`ExportBlock` in row order.
    missing : callable
        After the blocks: embedding name -> rows it lacked (``NaN`` rows).
    """

    level: str
    rows: int
    obs_kinds: dict[str, str]
    x_names: list[str]
    x_source: str | None
    obsm: dict[str, int]
    prefixes: dict[str, str]
    uns: dict
    blocks: Callable[[int], Iterator[ExportBlock]]
    missing: Callable[[], dict[str, int]] = dict

    @property
    def x_in_obsm(self) -> bool:
        """True when ``X`` is one of the embeddings (then a flat table holds it once)."""
        return self.x_source not in (None, "features", "profile")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def obsm_keys(names: list[str], *, clustered: str | None = None) -> dict[str, str]:
    """The ``obsm`` key of each embedding name.

    A source is ``X_<source>``; the UMAP of the clustered embedding (else the first UMAP)
    is ``X_umap``, every other reduction ``X_<source>_<reduction>``.

    Examples
    --------
    >>> obsm_keys(["cnn", "cnn-umap", "pca-umap", "pca"], clustered="pca")
    {'cnn': 'X_cnn', 'cnn-umap': 'X_cnn_umap', 'pca-umap': 'X_umap', 'pca': 'X_pca'}
    """
    umaps = [n for n in names if n.endswith("-umap")]
    main = f"{clustered}-umap" if f"{clustered}-umap" in umaps else (umaps[0] if umaps else None)
    return {n: "X_umap" if n == main else "X_" + n.replace("-", "_") for n in names}


def _column_names(prefix: str, dimensions: int) -> list[str]:
    digits = max(3, len(str(max(dimensions - 1, 0))))
    return [f"{prefix}_{i:0{digits}d}" for i in range(dimensions)]


# -- cells ------------------------------------------------------------------------------
@dataclass
class _Part:
    path: Path
    first: int
    rows: int


@dataclass
class _Cells:
    """What the cell blocks are made from."""

    folder: Path
    parts: list[_Part]
    features: list[str]
    groups: list[pd.DataFrame]
    annotations: pd.DataFrame | None
    kinds: dict[str, str]
    embeddings: dict[str, object]
    keys: dict[str, str]


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A small Parquet part: one thread is faster than a pool for a few thousand rows."""
    return pq.read_table(path, columns=columns, use_threads=False).to_pandas(use_threads=False)


def _cell_parts(folder: Path) -> tuple[list[_Part], list[str]]:
    """Site parts in crop_index order and the plates named."""
    parts, plates = [], set()
    for path in sorted((folder / "cells").glob("*.parquet")):
        names = pq.read_schema(path).names
        columns = [CROP_INDEX] + (["plate"] if "plate" in names else [])
        table = pq.read_table(path, columns=columns, use_threads=False)
        index = table[CROP_INDEX].to_numpy()
        if "plate" in names:
            plates |= {str(p) for p in pd.unique(table["plate"].to_numpy(zero_copy_only=False)) if p is not None}
        if len(index):
            parts.append(_Part(path, int(index.min()), len(index)))
    parts.sort(key=lambda part: part.first)
    return parts, sorted(plates)


def _every_cell(parts: list[_Part]) -> np.ndarray:
    indices = [_read(part.path, [CROP_INDEX])[CROP_INDEX].to_numpy() for part in parts]
    return np.concatenate(indices) if indices else np.empty(0, np.int64)


def _identity_kinds(parts: list[_Part]) -> dict[str, str]:
    seen: dict[str, list[pa.DataType]] = {}
    for part in parts:
        for item in pq.read_schema(part.path):
            seen.setdefault(item.name, []).append(item.type)
    kinds = {}
    for name, types in seen.items():
        known = [t for t in types if not pa.types.is_null(t)]
        complete = len(known) == len(parts)
        found = {kind_of_arrow(t, complete=complete) for t in known} or {"string"}
        kinds[name] = found.pop() if len(found) == 1 else ("float" if found <= {"float", "int", "nullable_int"}
                                                          else "string")
    return kinds


def _feature_names(folder: Path) -> list[str]:
    names: dict[str, None] = {}
    for path in sorted((folder / "features").glob("*.parquet")):
        names.update((n, None) for n in pq.read_schema(path).names if n.startswith(FEATURE_PREFIX))
    return list(names)


def _groups(folder: Path, parts: list[_Part], kinds: dict[str, str]) -> list[pd.DataFrame]:
    """The column groups' metadata columns, each indexed by crop_index; ``kinds`` gets theirs."""
    groups, every = [], None
    for path in sorted((folder / "columns").glob("*.parquet")):
        names = [n for n in pq.read_schema(path).names
                 if n != CROP_INDEX and n not in kinds and not n.startswith(EMBEDDING_PREFIX)]
        if not names:
            continue
        frame = pd.read_parquet(path, columns=[CROP_INDEX, *names]).drop_duplicates(CROP_INDEX)
        frame = frame.set_index(CROP_INDEX)
        every = _every_cell(parts) if every is None else every
        complete = bool(np.isin(every, frame.index.to_numpy()).all())
        kinds.update(kinds_of_frame(frame, complete=complete))
        groups.append(frame)
    return groups


def _embeddings(folder: Path, wanted: list[str] | None) -> dict[str, object]:
    """Row readers of the embeddings asked for (default all), the predicted ``emb_*`` as ``cnn``."""
    store = EmbeddingStore(folder)
    stored = store.names()
    predicted = folder / "columns" / f"{PREDICTED_GROUP}.parquet"
    has_predicted = "cnn" not in stored and predicted.exists() and any(
        n.startswith(EMBEDDING_PREFIX) for n in pq.read_schema(predicted).names)
    available = sorted(set(stored) | ({"cnn"} if has_predicted else set()),
                       key=lambda n: (EMBEDDING_SOURCES.index(n.split("-")[0])
                                      if n.split("-")[0] in EMBEDDING_SOURCES else 99, n))
    names = available if wanted is None else list(dict.fromkeys(wanted))
    readers = {}
    for name in names:
        if name == "cnn" and has_predicted:
            readers[name] = ColumnGroupRows(predicted)
        elif name not in available:
            source = name.split("-")[0]
            there = ", ".join(available) or "none yet"
            raise FileNotFoundError(
                f"Project {folder} has no {name!r} embedding to export (there are: {there}); run "
                f"'napari-hcs embed --project {folder} --source {source}' first"
                + (" and reduce it." if "-" in name else "."))
        else:
            readers[name] = StoredRows(store.read(name))
    return readers


def _site_frame(cells: _Cells, part: _Part) -> pd.DataFrame:
    frame = _read(part.path).sort_values(CROP_INDEX, kind="stable")
    features = part.path.parent.parent / "features" / part.path.name
    if cells.features:
        values = _read(features) if features.exists() else pd.DataFrame({CROP_INDEX: []})
        values = values.drop_duplicates(CROP_INDEX).set_index(CROP_INDEX).reindex(
            frame[CROP_INDEX].to_numpy(), columns=cells.features)
        frame = pd.concat([frame.reset_index(drop=True), values.reset_index(drop=True)], axis=1)
    return frame.reset_index(drop=True)


def _rebatched(frames: Iterator[pd.DataFrame], block_rows: int) -> Iterator[pd.DataFrame]:
    pending: list[pd.DataFrame] = []
    size = 0
    for frame in frames:
        pending.append(frame)
        size += len(frame)
        if size < block_rows:
            continue
        joined = pd.concat(pending, ignore_index=True)
        cut = (len(joined) // block_rows) * block_rows
        for start in range(0, cut, block_rows):
            yield joined.iloc[start:start + block_rows].reset_index(drop=True)
        pending, size = [joined.iloc[cut:]], len(joined) - cut
    if size:
        yield pd.concat(pending, ignore_index=True)


def _cell_block(cells: _Cells, frame: pd.DataFrame) -> ExportBlock:
    from ..project.cell_labels import CellLabels

    index = frame[CROP_INDEX].to_numpy(dtype=np.int64)
    meta = frame.drop(columns=cells.features)
    extra = [group.reindex(index).reset_index(drop=True) for group in cells.groups]
    if cells.annotations is not None and "well" in meta:
        extra.append(cells.annotations.reindex(meta["well"].astype(str).to_numpy()).reset_index(drop=True))
    meta = pd.concat([meta, *extra], axis=1)
    meta = CellLabels(cells.folder).with_cell_class(meta)
    x = frame[cells.features].to_numpy(dtype=np.float64) if cells.features else None
    obsm = {cells.keys[name]: rows.take(index) for name, rows in cells.embeddings.items()}
    return ExportBlock(obs=coerce(meta, cells.kinds), names=index.astype(str).astype(object), x=x, obsm=obsm)


def _annotations(project, kinds: dict[str, str]) -> pd.DataFrame | None:
    annotations = project.well_annotations()
    if annotations is None or not len(annotations) or "well" not in kinds:
        return None
    annotations = annotations[[c for c in annotations.columns if c not in kinds]]
    annotations.index = annotations.index.astype(str)
    kinds.update(kinds_of_frame(annotations, complete=False))
    return annotations[~annotations.index.duplicated()]


def cell_plan(project_dir: str | os.PathLike, *, embeddings: list[str] | None = None) -> ExportPlan:
    """Plan the export of every cell of a project (see the module's description).

    Parameters
    ----------
    project_dir : path
        Project folder with a cell store.
    embeddings : list of str, optional
        Embedding names to include (``cnn``, ``cnn-umap``, ...); default every one stored.
    """
    from ..project import CellStore, Project
    from ..vocabulary import CELL_CLASS_COLUMN

    folder = Path(project_dir)
    CellStore(folder)
    parts, plates = _cell_parts(folder)
    kinds = _identity_kinds(parts)
    groups = _groups(folder, parts, kinds)
    annotations = _annotations(Project(folder), kinds)
    kinds.setdefault(CELL_CLASS_COLUMN, "string")
    readers = _embeddings(folder, embeddings)
    clusters = EmbeddingStore(folder).read_clusters()
    clustered = clusters[1].get("embedding") if clusters else None
    keys = obsm_keys(list(readers), clustered=clustered)
    cells = _Cells(folder, parts, _feature_names(folder), groups, annotations, kinds, readers, keys)
    x_source = "features" if cells.features else (
        clustered if clustered in readers else next((n for n in readers if "-" not in n), next(iter(readers), None)))
    x_names = cells.features if cells.features else (
        _column_names(x_source.replace("-", "_"), readers[x_source].dimensions) if x_source else [])

    def blocks(block_rows: int) -> Iterator[ExportBlock]:
        frames = (_site_frame(cells, part) for part in parts)
        for frame in _rebatched(frames, block_rows):
            block = _cell_block(cells, frame)
            if x_source not in (None, "features"):
                block.x = block.obsm[keys[x_source]]
            yield block

    uns = _cell_provenance(folder, readers, clusters, plates, x_source, groups)
    return ExportPlan(level="cell", rows=sum(part.rows for part in parts), obs_kinds=kinds, x_names=list(x_names), x_source=x_source,
                      obsm={keys[n]: r.dimensions for n, r in readers.items()},
                      prefixes={keys[n]: n.replace("-", "_") for n in readers}, uns=uns, blocks=blocks,
                      missing=lambda: {n: int(r.missing) for n, r in readers.items()})


def _cell_provenance(folder: Path, readers: dict, clusters, plates: list[str], x_source, groups) -> dict:
    provenance = {}
    for name, rows in readers.items():
        if isinstance(rows, ColumnGroupRows):
            provenance[name] = {"source": "cnn", "column_group": PREDICTED_GROUP, "dimensions": rows.dimensions}
        else:
            provenance[name] = EmbeddingStore(folder).read(name).provenance
    models = sorted({str(m) for g in groups if "pred_model" in g for m in g["pred_model"].dropna().unique()})
    models += [str(p["model"]) for p in provenance.values() if p.get("model") and str(p["model"]) not in models]
    normalisation = {n: p["normalisation"] for n, p in provenance.items() if p.get("normalisation")}
    return {"napari_hcs_version": __version__, "level": "cell", "project": str(folder.resolve()),
            "exported": _now(), "plates": plates, "model": models, "normalisation": normalisation,
            "x": x_source, "embeddings": provenance, "clusters": clusters[1] if clusters else {}}


# -- wells ------------------------------------------------------------------------------
def well_plan(project_dir: str | os.PathLike) -> ExportPlan:
    """Plan the export of a project's well profiles (``napari-hcs profile``)."""
    folder = Path(project_dir)
    profiles = read_well_profiles(folder)
    meta = profiles.table[profiles.metadata_columns].reset_index(drop=True)
    kinds = kinds_of_frame(meta, complete=True)
    if {"plate", "well"} <= set(meta.columns):
        names = (meta["plate"].astype(str) + "/" + meta["well"].astype(str)).to_numpy(dtype=object)
    else:
        names = np.arange(len(meta)).astype(str).astype(object)
    values = profiles.values()

    def blocks(block_rows: int) -> Iterator[ExportBlock]:
        for start in range(0, len(meta), block_rows):
            end = start + block_rows
            yield ExportBlock(obs=coerce(meta.iloc[start:end], kinds), names=names[start:end], x=values[start:end])

    plates = sorted(meta["plate"].astype(str).unique().tolist()) if "plate" in meta else []
    uns = {"napari_hcs_version": __version__, "level": "well", "project": str(folder.resolve()),
           "exported": _now(), "plates": plates, "x": "profile", "profile": profiles.provenance,
           "normalisation": profiles.provenance.get("normalisation")}
    return ExportPlan(level="well", rows=len(meta), obs_kinds=kinds, x_names=list(profiles.features),
                      x_source="profile", obsm={}, prefixes={}, uns=uns, blocks=blocks)
