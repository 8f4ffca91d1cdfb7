"""Per-cell embeddings and cell clusters kept in a project folder.

Layout inside the project folder::

    embeddings/<name>/values        (N, D) float32 Zarr array, chunked by cells
    embeddings/<name>/crop_index    (N,) int64 Zarr array: the cell of each row
    embeddings/<name>/embedding.json   provenance (source, model, options, dimensions)
    embeddings/clusters.json        how the ``clusters`` column group was made
    embeddings/sites/<name>/        embeddings of whole sites (``rows="sites"``), laid out alike
    columns/clusters.parquet        ``crop_index``, ``cluster`` (-1: noise)

``<name>`` is an embedding source (``cnn``, ``features``, ``pca``,
``autoencoder``) or a reduction of one (``cnn-umap``, ``pca-pca``). An embedding
appears whole or not at all: it is written into a hidden folder beside its
place and renamed into it when complete, so a cancelled or failed run leaves the
previous one as it was. Values are written block by block (:meth:`EmbeddingStore.writer`),
so a million cells never need to be held in memory at once.

Examples
--------
>>> store = EmbeddingStore(tmp_path)
>>> store.write("pca", np.arange(3), np.ones((3, 2)), provenance={"source": "pca"})
>>> embedding = store.read("pca")
>>> embedding.values.shape, embedding.crop_index.tolist(), embedding.provenance["source"]
((3, 2), [0, 1, 2], 'pca')
>>> store.names()
['pca']
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import zarr

from ..atomic import write_json_atomic, write_parquet_atomic
from ..vocabulary import CROP_INDEX

__all__ = ["CLUSTER_COLUMN", "Embedding", "EmbeddingStore", "EmbeddingWriter"]

#: Column of the ``clusters`` column group: the cluster of each cell (-1 for noise).
CLUSTER_COLUMN = "cluster"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ROWS_PER_CHUNK = 16384
_META = "embedding.json"


@dataclass
class Embedding:
    """One stored embedding: a row per cell.

    Attributes
    ----------
    name : str
        Its name in the store (``cnn``, ``cnn-umap``, ...).
    crop_index : ndarray of int64
        The cell of each row.
    values : zarr.Array
        ``(N, D)`` float32, read lazily (``values[:]`` loads it).
    provenance : dict
        How it was made (``source``, ``model``, options, ``dimensions``, ``created``).
    """

    name: str
    crop_index: np.ndarray
    values: zarr.Array
    provenance: dict = field(default_factory=dict)

    @property
    def dimensions(self) -> int:
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.values.shape[0])


class EmbeddingWriter:
    """Appends blocks of rows to an embedding being written (see :meth:`EmbeddingStore.writer`)."""

    def __init__(self, folder: Path, dimensions: int, expected_rows: int | None):
        self.dimensions = int(dimensions)
        capacity = max(int(expected_rows or _ROWS_PER_CHUNK), 1)
        chunk = min(capacity, _ROWS_PER_CHUNK)
        self._values = zarr.create_array(folder / "values", shape=(capacity, self.dimensions),
                                         chunks=(chunk, self.dimensions), dtype="float32")
        self._index = zarr.create_array(folder / "crop_index", shape=(capacity,), chunks=(chunk,),
                                        dtype="int64")
        self.rows = 0

    def append(self, crop_index: np.ndarray, values: np.ndarray) -> None:
        """Add rows: ``crop_index`` (n,) and ``values`` (n, dimensions)."""
        values = np.asarray(values, dtype=np.float32)
        crop_index = np.asarray(crop_index, dtype=np.int64).ravel()
        if values.ndim != 2 or values.shape != (len(crop_index), self.dimensions):
            raise ValueError(f"Expected {len(crop_index)} rows of {self.dimensions} values, "
                             f"got an array of shape {values.shape}.")
        end = self.rows + len(crop_index)
        if end > self._values.shape[0]:
            grown = max(end, 2 * self._values.shape[0])
            self._values.resize((grown, self.dimensions))
            self._index.resize((grown,))
        self._values[self.rows:end] = values
        self._index[self.rows:end] = crop_index
        self.rows = end

    def _finish(self) -> None:
        self._values.resize((self.rows, self.dimensions))
        self._index.resize((self.rows,))


class EmbeddingStore:
    """The embeddings and cell clusters of a project folder.

    Parameters
    ----------
    project_dir : path
        Project folder (need not hold embeddings yet).
    rows : {"cells", "sites"}
        What a row is: a cell (``crop_index``) or a whole site (its index in the
        plate's site list). The two kinds are kept apart, so a cell export or
        plot never meets a site embedding.
    """

    def __init__(self, project_dir: str | os.PathLike, *, rows: str = "cells"):
        if rows not in ("cells", "sites"):
            raise ValueError(f"rows must be 'cells' or 'sites', not {rows!r}.")
        self.project_dir = Path(project_dir)
        self.rows = rows
        self.folder = self.project_dir / "embeddings" / ("sites" if rows == "sites" else "")

    # -- embeddings -----------------------------------------------------------
    def names(self) -> list[str]:
        """Names of the stored embeddings, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / _META).exists())

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def read(self, name: str) -> Embedding:
        """Return a stored embedding; a clear error names the ones there are."""
        folder = self.folder / _checked(name)
        if not (folder / _META).exists():
            there = ", ".join(self.names()) or "none yet"
            command = "embed-sites PLATE" if self.rows == "sites" else "embed"
            raise FileNotFoundError(
                f"Project {self.project_dir} has no {name!r} embedding (there are: {there}); "
                f"run 'napari-hcs {command} --project {self.project_dir} --source ...' first.")
        provenance = json.loads((folder / _META).read_text())
        values = zarr.open_array(folder / "values", mode="r")
        crop_index = zarr.open_array(folder / "crop_index", mode="r")[:]
        return Embedding(name=name, crop_index=np.asarray(crop_index), values=values, provenance=provenance)

    @contextmanager
    def writer(self, name: str, *, dimensions: int, provenance: dict,
               expected_rows: int | None = None) -> Iterator[EmbeddingWriter]:
        """Write an embedding block by block; it replaces the stored one only when the block ends.

        Examples
        --------
        >>> store = EmbeddingStore(tmp_path)
        >>> with store.writer("features", dimensions=2, provenance={"source": "features"}) as out:
        ...     out.append(np.array([4, 5]), np.zeros((2, 2)))
        ...     out.append(np.array([6]), np.ones((1, 2)))
        >>> store.read("features").crop_index.tolist()
        [4, 5, 6]
        """
        target = self.folder / _checked(name)
        staging = self.folder / f".{name}.{os.getpid()}.writing"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            out = EmbeddingWriter(staging, dimensions, expected_rows)
            yield out
            out._finish()
            meta = {**provenance, "name": name, "dimensions": out.dimensions, "cells": out.rows,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            write_json_atomic(meta, staging / _META)
            _replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def write(self, name: str, crop_index: np.ndarray, values: np.ndarray, *, provenance: dict) -> None:
        """Write (replace) a whole embedding at once."""
        values = np.asarray(values)
        if values.ndim != 2:
            raise ValueError(f"An embedding is a 2-D array (cells x dimensions), got shape {values.shape}.")
        with self.writer(name, dimensions=values.shape[1], provenance=provenance,
                         expected_rows=len(values)) as out:
            out.append(crop_index, values)

    # -- clusters -------------------------------------------------------------
    def write_clusters(self, crop_index: np.ndarray, clusters: np.ndarray, *, provenance: dict) -> None:
        """Store each cell's cluster (column group ``clusters``) and how it was made."""
        frame = pd.DataFrame({CROP_INDEX: np.asarray(crop_index, dtype=np.int64),
                              CLUSTER_COLUMN: np.asarray(clusters, dtype=np.int64)})
        write_parquet_atomic(frame, self.project_dir / "columns" / "clusters.parquet")
        write_json_atomic(provenance, self.folder / "clusters.json")

    def read_clusters(self) -> tuple[pd.DataFrame, dict] | None:
        """``(crop_index + cluster table, provenance)``, or None when cells were not clustered."""
        path = self.project_dir / "columns" / "clusters.parquet"
        if not path.exists():
            return None
        meta = self.folder / "clusters.json"
        provenance = json.loads(meta.read_text()) if meta.exists() else {}
        return pd.read_parquet(path), provenance


def _checked(name: str) -> str:
    if not _NAME.match(str(name)) or str(name).startswith("."):
        raise ValueError(f"Embedding name {name!r}: use letters, digits, '_', '-' and '.' only.")
    return str(name)


def _replace_folder(staging: Path, target: Path) -> None:
    """Put ``staging`` in place of ``target``; the old one is removed only after the swap."""
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
