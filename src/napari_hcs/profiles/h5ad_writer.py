"""An AnnData ``.h5ad`` file written block by block of rows.

``anndata.read_h5ad`` opens it as if ``AnnData.write_h5ad`` had written it: the small
parts (``var``, ``uns``, the categories of text columns) go through anndata's own
``write_elem``; ``X``, every ``obsm`` array and every ``obs`` column are chunked HDF5
datasets of the final size, filled one block at a time, in anndata's on-disk encoding
(``array``, ``nullable-integer``, ``nullable-boolean``, ``categorical``,
``string-array``). Text columns become categoricals, the form scanpy colours by, and so
does the ``cluster`` column.

Examples
--------
>>> import anndata
>>> from napari_hcs.profiles.export_sources import ExportBlock
>>> obs = pd.DataFrame({"well": ["B02", "B04", None], "n": [1, 2, 3]})
>>> block = ExportBlock(obs=obs, names=np.array(["0", "1", "2"], dtype=object),
...                     x=np.ones((3, 2)), obsm={"X_cnn": np.zeros((3, 4))})
>>> with H5adWriter(tmp_path / "cells.h5ad", rows=3, obs_kinds={"well": "string", "n": "int"},
...                 x_names=["a", "b"], obsm={"X_cnn": 4}) as out:
...     out.append(block)
...     out.finish(uns={"model": "wrn"})
>>> adata = anndata.read_h5ad(tmp_path / "cells.h5ad")
>>> adata.shape, list(adata.obsm), adata.obs["well"].tolist(), adata.uns["model"]
((3, 2), ['X_cnn'], ['B02', 'B04', nan], 'wrn')
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pandas as pd

__all__ = ["CATEGORICAL_COLUMNS", "H5adWriter", "h5_safe"]

#: Number columns stored as categoricals (a cluster is a group, not a quantity).
CATEGORICAL_COLUMNS = ("cluster",)
_STRING = h5py.string_dtype("utf-8")
_CHUNK_BYTES = 1 << 20
_NULLABLE = {"nullable_int": "nullable-integer", "nullable_bool": "nullable-boolean"}


def _write_elem(group, key, value) -> None:
    try:
        from anndata.io import write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import write_elem
    write_elem(group, key, value)


def _encoding(node, kind: str, version: str = "0.2.0") -> None:
    node.attrs["encoding-type"] = kind
    node.attrs["encoding-version"] = version


def h5_safe(value):
    """``value`` made storable in ``uns``: no None, lists as arrays, anything odd as JSON text.

    Examples
    --------
    >>> h5_safe({"k": 2, "model": None, "sizes": [3, 4], "runs": [{"a": 1}]})
    {'k': 2, 'sizes': array([3, 4]), 'runs': '[{"a": 1}]'}
    """
    if isinstance(value, dict):
        return {str(k): h5_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        if not value:
            return np.array([], dtype=float)
        array = np.asarray(value)
        if array.dtype.kind in "biuf" or (array.dtype.kind == "U" and array.ndim == 1):
            return array.astype(object) if array.dtype.kind == "U" else array
        return json.dumps(value, default=str)
    if isinstance(value, (bool, int, float, str, np.generic)):
        return value
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _chunks(rows: int, width: int, itemsize: int) -> tuple[int, ...]:
    per_row = max(width * itemsize, 1)
    length = int(max(1, min(rows, _CHUNK_BYTES // per_row)))
    return (length, width) if width else (length,)


class H5adWriter:
    """Write an ``.h5ad`` of ``rows`` rows: :meth:`append` blocks in order, then :meth:`finish`.

    Parameters
    ----------
    path : path
        File to write (the caller makes it atomic).
    rows : int
        Total number of rows.
    obs_kinds : dict
        ``obs`` column -> kind (:mod:`~napari_hcs.profiles.export_columns`).
    x_names : list of str
        The variables (columns of ``X``); empty: no ``X``.
    obsm : dict
        ``obsm`` key -> dimensions.
    """

    def __init__(self, path: str | os.PathLike, *, rows: int, obs_kinds: dict[str, str], x_names: list[str],
                 obsm: dict[str, int]):
        self.rows, self.kinds, self.done = int(rows), dict(obs_kinds), 0
        self.file = h5py.File(path, "w")
        _encoding(self.file, "anndata", "0.1.0")
        for key in ("layers", "obsp", "varm", "varp"):
            _write_elem(self.file, key, {})
        _write_elem(self.file, "var", pd.DataFrame(index=pd.Index(list(x_names), dtype=object)))
        self.x = self._array(self.file, "X", len(x_names), np.float32) if x_names else None
        _write_elem(self.file, "obsm", {})
        self.obsm = {key: self._array(self.file["obsm"], key, width, np.float32) for key, width in obsm.items()}
        self.obs = self.file.create_group("obs")
        self._columns: dict[str, object] = {}
        self._categories: dict[str, dict] = {}
        self._make_obs()

    def _array(self, group, key: str, width: int, dtype, *, shape=None):
        shape = shape or ((self.rows, width) if width else (self.rows,))
        chunks = _chunks(self.rows, width, np.dtype(dtype).itemsize if dtype is not _STRING else 16)
        data = group.create_dataset(key, shape=shape, dtype=dtype, chunks=chunks if self.rows else None)
        _encoding(data, "string-array" if dtype is _STRING else "array")
        return data

    def _make_obs(self) -> None:
        _encoding(self.obs, "dataframe")
        self.obs.attrs["_index"] = "_index"
        order = list(self.kinds)
        self.obs.attrs.create("column-order", np.array(order, dtype=object) if order else np.array([], float),
                              dtype=_STRING if order else None)
        self._index = self._array(self.obs, "_index", 0, _STRING)
        for name, kind in self.kinds.items():
            if kind == "string" or name in CATEGORICAL_COLUMNS:
                group = self.obs.create_group(name)
                _encoding(group, "categorical")
                group.attrs["ordered"] = False
                self._columns[name] = self._array(group, "codes", 0, np.int32)
                self._categories[name] = {}
            elif kind in ("nullable_int", "nullable_bool"):
                group = self.obs.create_group(name)
                _encoding(group, _NULLABLE[kind], "0.1.0")
                dtype = np.int64 if kind == "nullable_int" else bool
                self._columns[name] = (self._array(group, "values", 0, dtype), self._array(group, "mask", 0, bool))
            else:
                dtype = {"float": np.float64, "int": np.int64, "bool": bool}[kind]
                self._columns[name] = self._array(self.obs, name, 0, dtype)

    def _codes(self, name: str, values: pd.Series) -> np.ndarray:
        categories = self._categories[name]
        local, found = pd.factorize(values.astype(object), use_na_sentinel=True)
        mapping = np.array([categories.setdefault(str(v), len(categories)) for v in found] + [-1], dtype=np.int32)
        return mapping[local]

    def append(self, block) -> None:
        """Write the next rows (an :class:`~napari_hcs.profiles.export_sources.ExportBlock`)."""
        start, end = self.done, self.done + len(block.obs)
        if end > self.rows:
            raise ValueError(f"More rows than the {self.rows} announced.")
        self._index[start:end] = np.asarray(block.names, dtype=object)
        for name, column in self._columns.items():
            values = block.obs[name]
            if name in self._categories:
                column[start:end] = self._codes(name, values)
            elif isinstance(column, tuple):
                missing = values.isna().to_numpy()
                column[0][start:end] = values.fillna(0).to_numpy(dtype=column[0].dtype)
                column[1][start:end] = missing
            else:
                column[start:end] = values.to_numpy(dtype=column.dtype)
        if self.x is not None:
            self.x[start:end] = np.asarray(block.x, dtype=np.float32)
        for key, data in self.obsm.items():
            data[start:end] = block.obsm[key]
        self.done = end

    def finish(self, *, uns: dict) -> None:
        """Write the categories and ``uns``; every row must have been appended."""
        if self.done != self.rows:
            raise ValueError(f"Wrote {self.done} rows of the {self.rows} announced.")
        for name, categories in self._categories.items():
            self._sort_categories(name, list(categories))
        _write_elem(self.file, "uns", h5_safe(uns))

    def _sort_categories(self, name: str, found: list[str]) -> None:
        """Store the categories sorted (numbers by value), the codes renumbered to match."""
        numeric = all(_is_number(text) for text in found)
        ordered = sorted(found, key=float) if numeric else sorted(found)
        new_code = np.empty(len(found) + 1, dtype=np.int32)
        new_code[:-1] = pd.Index(ordered).get_indexer(found) if found else []
        new_code[-1] = -1
        codes = self._columns[name]
        step = max(codes.chunks[0] if codes.chunks else self.rows, 1)
        for start in range(0, self.rows, step):
            codes[start:start + step] = new_code[codes[start:start + step]]
        _write_elem(self.obs[name], "categories", np.array(ordered, dtype=object))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "H5adWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
