"""Export cells or well profiles to CSV, Parquet or AnnData (``.h5ad``) for use elsewhere.

What goes where (see docs/export.md):

- cells: ``obs`` = each cell's metadata (plate, well, site, field, timepoint, label,
  centroid, well annotations, predictions, ``cluster``, the cell's own class), ``X`` = the
  classical features (``feat_*``), or the chosen embedding when there are none, and
  ``obsm['X_cnn']``, ``obsm['X_features']``, ``obsm['X_pca']``, ``obsm['X_autoencoder']``,
  ``obsm['X_umap']``, ... = every stored embedding, rows aligned by ``crop_index``
  (``NaN`` rows for cells an embedding lacks, counted in the summary);
- wells: ``obs`` = the well metadata, ``X`` = the profile (``napari-hcs profile``);
- ``uns`` = provenance (model, normalisation, plates, how each embedding and the
  clusters were made, the napari-hcs version).

CSV and Parquet hold one flat table: metadata, features, then each embedding's columns
prefixed by its name (``cnn_000``, ``cnn_umap_000``, ...); Parquet keeps the provenance
as JSON in its key-value metadata (key ``napari_hcs``).

The rows are written in blocks (a Parquet row group per block, CSV appended, ``.h5ad``
datasets filled block by block), so the memory needed does not grow with the number of
cells; the file appears complete or not at all.

Examples
--------
>>> from napari_hcs.profiles.embedding_store import EmbeddingStore
>>> from napari_hcs.project import CellStore
>>> store = CellStore.create(tmp_path / "project", channels=["DNA"], crop_size=1)
>>> rows = pd.DataFrame({"plate": "P1", "well": ["B02", "B03"], "label": [1, 2]})
>>> _ = store.append_site("B02_f000_t000", rows, np.zeros((2, 1, 1, 1)))
>>> EmbeddingStore(tmp_path / "project").write("cnn", np.arange(2), np.eye(2), provenance={"model": "wrn"})
>>> summary = export_project(tmp_path / "project", tmp_path / "cells.h5ad", ExportOptions(format="h5ad"))
>>> summary.rows, summary.obsm
(2, {'X_cnn': 2})
>>> import anndata
>>> anndata.read_h5ad(tmp_path / "cells.h5ad").obsm["X_cnn"].tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from ..atomic import atomic_path
from ..cancel import check_cancel
from ..vocabulary import EXPORT_FORMATS, EXPORT_LEVELS
from .export_columns import arrow_schema
from .export_sources import ExportPlan, _column_names, cell_plan, well_plan

__all__ = ["ExportOptions", "ExportSummary", "PROJECT_DATA", "export_project", "table_columns"]

#: What a project folder holds that an export reads: an export never goes over or inside these.
PROJECT_DATA = ("project.json", "layout.csv", "classes.json", "cells.json", "cell_labels.csv", "cells",
                "crops.zarr", "features", "columns", "embeddings", "profiles", "labels", "models", "qc",
                "illumination")
#: Target size of one block of values (rows x columns x 8 bytes) when ``block_rows`` is not given.
BLOCK_BYTES = 8 << 20


@dataclass
class ExportOptions:
    """What to export and how.

    Attributes
    ----------
    format : str
        One of :data:`~napari_hcs.vocabulary.EXPORT_FORMATS`.
    level : str
        ``cell`` or ``well`` (:data:`~napari_hcs.vocabulary.EXPORT_LEVELS`).
    embeddings : tuple of str, optional
        Embeddings to include (cell level): names in the project's embedding store, e.g.
        ``("cnn", "cnn-umap")``; default every one stored.
    overwrite : bool
        Replace an existing output file.
    block_rows : int, optional
        Rows per block; default about 8 MiB of values per block.
    """

    format: str = "h5ad"
    level: str = "cell"
    embeddings: tuple[str, ...] | None = None
    overwrite: bool = False
    block_rows: int | None = None


@dataclass
class ExportSummary:
    """What an export wrote (``to_dict()`` is the command's JSON summary)."""

    path: str
    format: str
    level: str
    rows: int
    columns: int
    variables: int
    x: str | None
    obsm: dict[str, int]
    missing: dict[str, int]
    bytes: int
    seconds: float
    blocks: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def table_columns(plan: ExportPlan) -> list[tuple[str, pa.DataType]]:
    """Columns of the flat table (CSV, Parquet) of a plan: metadata, features, embeddings."""
    columns = [(f.name, f.type) for f in arrow_schema(plan.obs_kinds)]
    if plan.x_names and not plan.x_in_obsm:
        columns += [(name, pa.float64()) for name in plan.x_names]
    for key, width in plan.obsm.items():
        columns += [(name, pa.float32()) for name in _column_names(plan.prefixes[key], width)]
    seen: set[str] = set()
    for name, _ in columns:
        if name in seen:
            raise ValueError(f"Two columns of the export would both be named {name!r}; rename the cell-table "
                             "column or leave that embedding out (--embeddings).")
        seen.add(name)
    return columns


def _block_table(plan: ExportPlan, block, schema: pa.Schema) -> pa.Table:
    obs_schema = arrow_schema(plan.obs_kinds)
    obs = pa.Table.from_pandas(block.obs, schema=obs_schema, preserve_index=False)
    arrays = list(obs.columns)
    if plan.x_names and not plan.x_in_obsm:
        arrays += [pa.array(column, type=pa.float64(), from_pandas=True) for column in np.asarray(block.x).T]
    for key in plan.obsm:
        arrays += [pa.array(column, type=pa.float32(), from_pandas=True) for column in block.obsm[key].T]
    return pa.Table.from_arrays(arrays, schema=schema)


def _check_out(project_dir: Path, out: Path, options: ExportOptions) -> None:
    from ..io.outputs import check_new_file, check_outputs

    if options.format not in EXPORT_FORMATS:
        raise ValueError(f"Export format {options.format!r}: expected one of {', '.join(EXPORT_FORMATS)}.")
    if options.level not in EXPORT_LEVELS:
        raise ValueError(f"Export level {options.level!r}: expected one of {', '.join(EXPORT_LEVELS)}.")
    if options.level == "well" and options.embeddings:
        raise ValueError("Embeddings are chosen for cell-level exports only; a well export holds the profile "
                         "made by 'napari-hcs profile'.")
    if not project_dir.is_dir():
        raise FileNotFoundError(f"Project folder {project_dir} does not exist.")
    inputs = [project_dir / name for name in PROJECT_DATA]
    plate = _plate_path(project_dir)
    check_outputs([out], [*inputs, plate] if plate else inputs)
    check_new_file(out, overwrite=options.overwrite, what="Export file")


def _plate_path(project_dir: Path) -> str | None:
    meta = project_dir / "project.json"
    try:
        return json.loads(meta.read_text()).get("plate") if meta.exists() else None
    except (OSError, ValueError):
        return None


def _block_rows(plan: ExportPlan, options: ExportOptions) -> int:
    if options.block_rows is not None:
        if int(options.block_rows) < 1:
            raise ValueError(f"Rows per block must be at least 1; got {options.block_rows}.")
        return int(options.block_rows)
    width = len(plan.obs_kinds) + len(plan.x_names) + sum(plan.obsm.values())
    return int(np.clip(BLOCK_BYTES // (8 * max(width, 1)), 1024, 65536))


def _write(plan: ExportPlan, tmp: Path, options: ExportOptions, block_rows: int, step: Callable) -> int:
    """Write every block into ``tmp``; return the number of blocks."""
    blocks = 0
    if options.format == "h5ad":
        from .h5ad_writer import H5adWriter

        with H5adWriter(tmp, rows=plan.rows, obs_kinds=plan.obs_kinds, x_names=plan.x_names,
                        obsm=plan.obsm) as writer:
            for block in plan.blocks(block_rows):
                writer.append(block)
                blocks = step(blocks, len(block.obs))
            writer.finish(uns={**plan.uns, "missing": plan.missing()})
        return blocks
    schema = pa.schema([pa.field(name, kind) for name, kind in table_columns(plan)])
    if options.format == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(tmp, schema) as writer:
            for block in plan.blocks(block_rows):
                writer.write_table(_block_table(plan, block, schema))
                blocks = step(blocks, len(block.obs))
            provenance = json.dumps({**plan.uns, "missing": plan.missing()}, default=str)
            writer.add_key_value_metadata({"napari_hcs": provenance})
        return blocks
    from pyarrow import csv

    with csv.CSVWriter(tmp, schema) as writer:
        for block in plan.blocks(block_rows):
            writer.write_table(_block_table(plan, block, schema))
            blocks = step(blocks, len(block.obs))
    return blocks


def _warnings(plan: ExportPlan, missing: dict[str, int]) -> list[str]:
    notes = [f"{count} of {plan.rows} cells have no {name!r} embedding: their rows are NaN."
             for name, count in missing.items() if count]
    if plan.level == "cell" and plan.x_source is None:
        notes.append("The export holds metadata only: the project has neither features nor embeddings "
                     "(run 'napari-hcs features' or 'napari-hcs embed').")
    return notes


def export_project(project_dir: str | os.PathLike, out: str | os.PathLike, options: ExportOptions | None = None,
                   *, progress: Callable[[int, int], None] | None = None, cancel=None) -> ExportSummary:
    """Export a project's cells or well profiles to ``out`` (see the module's description).

    Parameters
    ----------
    project_dir : path
        Project folder.
    out : path
        File to write; never one of the project's data files or the plate.
    options : ExportOptions, optional
        Format, level, embeddings, ``overwrite``, rows per block.
    progress : callable, optional
        ``progress(rows_done, rows_total)`` after each block.
    cancel : callable or Event, optional
        Checked before each block; a cancelled export leaves no file.

    Raises
    ------
    FileNotFoundError
        No cells, no embedding of a name asked for, or no well profiles: the message says
        which command makes them.
    ValueError
        ``out`` is an input or exists (without ``overwrite``), or an option is unknown.
    """
    options = options or ExportOptions()
    started = time.perf_counter()
    project_dir, out = Path(project_dir), Path(out)
    _check_out(project_dir, out, options)
    if options.level == "well":
        plan = well_plan(project_dir)
    else:
        wanted = None if options.embeddings is None else list(options.embeddings)
        plan = cell_plan(project_dir, embeddings=wanted)
    block_rows = _block_rows(plan, options)
    done = [0]

    def step(blocks: int, rows: int) -> int:
        done[0] += rows
        if progress is not None:
            progress(done[0], plan.rows)
        check_cancel(cancel, f"Export cancelled; {out} was not written.")
        return blocks + 1

    check_cancel(cancel, f"Export cancelled; {out} was not written.")
    with atomic_path(out) as tmp:
        blocks = _write(plan, tmp, options, block_rows, step)
    missing = plan.missing()
    columns = len(table_columns(plan)) if options.format != "h5ad" else len(plan.obs_kinds)
    return ExportSummary(path=str(out), format=options.format, level=options.level, rows=plan.rows,
                         columns=columns, variables=len(plan.x_names), x=plan.x_source, obsm=dict(plan.obsm),
                         missing=missing, bytes=out.stat().st_size, seconds=round(time.perf_counter() - started, 3),
                         blocks=blocks, warnings=_warnings(plan, missing))

