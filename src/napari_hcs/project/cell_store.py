"""The cell table (one row per cell) and the crop store, inside a project folder.

Layout of a project folder (see :mod:`napari_hcs.project.folder`)::

    cells/<site>.parquet     one part per site: identity, centroid, bbox, crop_index
    crops.zarr               (N, C, S, S) crops, chunked by cells; row ``crop_index``
    features/<site>.parquet  classical features (``feat_*`` columns) + crop_index
    columns/<group>.parquet  later column groups (predictions, embeddings, ...) + crop_index

Every part is written atomically (temporary file, then rename) and only after its
crops are in the store, so an interrupted run never leaves a corrupt table: the
parts that exist are complete, and crops past the last part are overwritten on
the next run. :meth:`CellStore.table` joins everything on ``crop_index``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from ..io import site_key
from ..atomic import write_json_atomic, write_parquet_atomic
from ..vocabulary import CROP_INDEX, EMBEDDING_PREFIX, FEATURE_PREFIX

__all__ = [
    "CROP_INDEX",
    "CellStore",
    "feature_columns",
    "site_key",
]


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Every chunk is stored, zeros included, so that a chunk file that is not there is a missing one.
_CROP_CONFIG = {"write_empty_chunks": True}
#: Largest crop side accepted: 1024 cells x 4 channels x 512 x 512 float32 is a 4 GiB chunk.
MAX_CROP_SIZE = 512


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Return the classical feature columns (``feat_*``) of a cell table."""
    return [c for c in table.columns if c.startswith(FEATURE_PREFIX)]


def embedding_columns(table: pd.DataFrame) -> list[str]:
    """Return the embedding columns (``emb_*``) of a cell table, in order."""
    return [c for c in table.columns if c.startswith(EMBEDDING_PREFIX)]


def _read_parts(folder: Path) -> pd.DataFrame | None:
    parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not parts:
        return None
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


class CellStore:
    """Cell table and crop store of a project folder.

    Parameters
    ----------
    folder : path
        Project folder holding a cell store (see :meth:`create`).

    Raises
    ------
    FileNotFoundError
        If the folder holds no cell store yet.

    Examples
    --------
    >>> store = CellStore.create(tmp_path, channels=["DNA", "actin"], crop_size=32)
    >>> rows = pd.DataFrame({"well": ["B04", "B04"], "label": [1, 2]})
    >>> crops = np.ones((2, 2, 32, 32), dtype=np.float32)
    >>> written = store.append_site(site_key("B04", 0, 0), rows, crops)
    >>> table = store.table()                     # one row per cell, with crop_index
    >>> table[["well", "label", "crop_index"]].to_numpy().tolist()
    [['B04', 1, 0], ['B04', 2, 1]]
    >>> store.crops[table.crop_index.to_numpy()].shape   # the matching crops
    (2, 2, 32, 32)
    """

    META = "cells.json"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        meta_path = self.folder / self.META
        if not meta_path.exists():
            raise FileNotFoundError(
                f"{self.folder} holds no cell store ({self.META} missing): run "
                "'napari-hcs segment' or 'napari-hcs import-crops' first."
            )
        self.meta = json.loads(meta_path.read_text())
        self._lock = threading.Lock()
        self._next_row: int | None = None

    # -- creation -----------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | os.PathLike,
        *,
        channels: list[str],
        crop_size: int,
        dtype: str | np.dtype = "float32",
        cells_per_chunk: int = 1024,
        exist_ok: bool = True,
    ) -> "CellStore":
        """Create (or reopen, when compatible) the cell store of a project folder.

        A store that holds no cells yet (no table part) is made anew with the
        channels and crop size asked for.

        Raises
        ------
        ValueError
            If the crop size is not from 1 to :data:`MAX_CROP_SIZE`, or a store
            with cells already exists with other channels or crop size.
        """
        if isinstance(crop_size, bool) or int(crop_size) != crop_size or not 1 <= crop_size <= MAX_CROP_SIZE:
            raise ValueError(f"Crop size must be a whole number of pixels from 1 to {MAX_CROP_SIZE}; "
                             f"got {crop_size!r}. Nothing was written to {folder}.")
        folder = Path(folder)
        meta_path = folder / cls.META
        meta = {
            "channels": list(channels),
            "crop_size": int(crop_size),
            "dtype": str(np.dtype(dtype)),
        }
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            same = all(old.get(k) == v for k, v in meta.items())
            if exist_ok and same:
                return cls(folder)
            if not exist_ok or any((folder / "cells").glob("*.parquet")):
                raise ValueError(
                    f"{folder} already holds a cell store with channels {old.get('channels')} "
                    f"and crop size {old.get('crop_size')}; asked for {meta['channels']} and "
                    f"{meta['crop_size']}. Use another project folder."
                )
            # a store that holds no cells yet is made anew below
        folder.mkdir(parents=True, exist_ok=True)
        zarr.open_array(
            store=str(folder / "crops.zarr"),
            mode="w",
            shape=(0, len(channels), crop_size, crop_size),
            chunks=(cells_per_chunk, len(channels), crop_size, crop_size),
            dtype=meta["dtype"],
        )
        write_json_atomic(meta, meta_path)
        return cls(folder)

    # -- metadata -----------------------------------------------------------
    @property
    def channels(self) -> list[str]:
        return list(self.meta["channels"])

    @property
    def crop_size(self) -> int:
        return int(self.meta["crop_size"])

    @property
    def crops(self) -> zarr.Array:
        """The ``(N, C, S, S)`` crop array (lazy; index it to read)."""
        return zarr.open_array(store=str(self.folder / "crops.zarr"), mode="r+").with_config(_CROP_CONFIG)

    # -- writing ------------------------------------------------------------
    def done_sites(self) -> set[str]:
        """Keys of the sites whose cells are completely written."""
        return {p.stem for p in (self.folder / "cells").glob("*.parquet")}

    def _committed_rows(self) -> int:
        table = _read_parts(self.folder / "cells")
        if table is None or table.empty:
            return 0
        return int(table[CROP_INDEX].max()) + 1

    def append_site(self, key: str, rows: pd.DataFrame, crops: np.ndarray) -> pd.DataFrame:
        """Append one site's cells: crops into the store, then the table part.

        Parameters
        ----------
        key : str
            Site key (see :func:`site_key`); names the table part.
        rows : DataFrame
            One row per cell, in the order of ``crops``.
        crops : ndarray
            ``(n, C, S, S)`` crops of the cells.

        Returns
        -------
        DataFrame
            ``rows`` with its ``crop_index`` column.
        """
        crops = np.asarray(crops)
        expected = (len(self.channels), self.crop_size, self.crop_size)
        if len(rows) != len(crops) or crops.shape[1:] != expected:
            raise ValueError(
                f"Site {key}: {len(rows)} rows and crops of shape {crops.shape}; expected "
                f"one crop of shape {expected} per row."
            )
        with self._lock:
            array = self.crops
            if self._next_row is None:
                self._next_row = self._committed_rows()
            start = self._next_row
            array.resize((start + len(crops), *expected))
            if len(crops):
                array[start : start + len(crops)] = crops.astype(array.dtype, copy=False)
            rows = rows.reset_index(drop=True).copy()
            rows[CROP_INDEX] = np.arange(start, start + len(rows), dtype=np.int64)
            write_parquet_atomic(rows, self.folder / "cells" / f"{_SAFE.sub('_', key)}.parquet")
            self._next_row = start + len(rows)
        return rows

    def write_features(self, key: str, features: pd.DataFrame) -> None:
        """Write one site's feature columns (must hold ``crop_index``)."""
        if CROP_INDEX not in features:
            raise ValueError(f"Features of site {key} have no {CROP_INDEX!r} column.")
        write_parquet_atomic(features, self.folder / "features" / f"{_SAFE.sub('_', key)}.parquet")

    def done_feature_sites(self) -> set[str]:
        """Keys of the sites whose features are written."""
        return {p.stem for p in (self.folder / "features").glob("*.parquet")}

    def write_columns(self, group: str, columns: pd.DataFrame) -> None:
        """Write (replace) a column group such as ``predictions``; needs ``crop_index``."""
        if CROP_INDEX not in columns:
            raise ValueError(f"Column group {group!r} has no {CROP_INDEX!r} column.")
        write_parquet_atomic(columns, self.folder / "columns" / f"{_SAFE.sub('_', group)}.parquet")

    # -- reading ------------------------------------------------------------
    def cells(self) -> pd.DataFrame:
        """Identity columns of every cell (no features or predictions)."""
        table = _read_parts(self.folder / "cells")
        if table is None:
            return pd.DataFrame(columns=[CROP_INDEX])
        return table.sort_values(CROP_INDEX, kind="stable").reset_index(drop=True)

    def table(self, *, annotations: pd.DataFrame | None = None) -> pd.DataFrame:
        """Return the full cell table: identity, features, column groups, annotations.

        Parameters
        ----------
        annotations : DataFrame, optional
            Per-well annotations indexed by well; joined on the ``well`` column
            without overwriting columns the table already has.
        """
        table = self.cells()
        groups = [_read_parts(self.folder / "features")]
        groups += [pd.read_parquet(p) for p in sorted((self.folder / "columns").glob("*.parquet"))]
        for group in groups:
            if group is None or group.empty:
                continue
            extra = [c for c in group.columns if c == CROP_INDEX or c not in table.columns]
            table = table.merge(group[extra], on=CROP_INDEX, how="left")
        if annotations is not None and len(annotations) and "well" in table:
            extra = [c for c in annotations.columns if c not in table.columns]
            if extra:
                table = table.join(annotations[extra], on="well")
        return table

    def __len__(self) -> int:
        return len(self.cells())
