"""Column kinds of an export: one type per metadata column, the same in every block of rows.

An export is written block by block, and a block may miss a value that another has
(a cell without a prediction, a well without annotations), so each metadata column
gets its kind once, before the first block, and every block is brought to it:

``float`` (float64), ``int`` (int64, never missing), ``nullable_int`` (pandas ``Int64``),
``bool``, ``nullable_bool`` (pandas ``boolean``) and ``string`` (text, ``None`` when missing).

Examples
--------
>>> kinds = kinds_of_frame(pd.DataFrame({"well": ["B02"], "n": [3], "x": [0.5]}), complete=False)
>>> kinds
{'well': 'string', 'n': 'nullable_int', 'x': 'float'}
>>> block = coerce(pd.DataFrame({"well": ["B04", None], "n": [1.0, np.nan]}), kinds)
>>> block.dtypes.astype(str).tolist(), block["well"].tolist()
(['object', 'Int64', 'float64'], ['B04', None])
>>> arrow_schema(kinds).types
[DataType(string), DataType(int64), DataType(double)]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["COLUMN_KINDS", "arrow_schema", "coerce", "kind_of_arrow", "kinds_of_frame"]

COLUMN_KINDS = ("float", "int", "nullable_int", "bool", "nullable_bool", "string")
_ARROW = {"float": pa.float64(), "int": pa.int64(), "nullable_int": pa.int64(), "bool": pa.bool_(),
          "nullable_bool": pa.bool_(), "string": pa.string()}


def kind_of_arrow(kind: pa.DataType, *, complete: bool = True) -> str:
    """The kind of a Parquet column type; ``complete`` when no value can be missing."""
    if pa.types.is_floating(kind):
        return "float"
    if pa.types.is_integer(kind):
        return "int" if complete else "nullable_int"
    if pa.types.is_boolean(kind):
        return "bool" if complete else "nullable_bool"
    if pa.types.is_dictionary(kind):
        return kind_of_arrow(kind.value_type, complete=complete)
    return "string"


def _kind_of_series(values: pd.Series, complete: bool) -> str:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool" if complete and not values.isna().any() else "nullable_bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int" if complete and not values.isna().any() else "nullable_int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "string"


def kinds_of_frame(frame: pd.DataFrame, *, complete: bool) -> dict[str, str]:
    """Kinds of a frame's columns; ``complete`` when every exported row has a value there."""
    return {str(name): _kind_of_series(frame[name], complete) for name in frame.columns}


def _strings(values: pd.Series) -> np.ndarray:
    out = values.astype(object).to_numpy(copy=True)
    missing = pd.isna(out)
    if pd.api.types.infer_dtype(out, skipna=True) not in ("string", "empty"):
        out[~missing] = [str(v) for v in out[~missing]]
    out[missing] = None
    return out


def _coerced(values: pd.Series, kind: str) -> pd.Series | np.ndarray:
    if kind == "string":
        return _strings(values)
    if kind == "float":
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if kind == "int":
        return values.to_numpy(dtype=np.int64)
    if kind == "bool":
        return values.to_numpy(dtype=bool)
    if kind == "nullable_int":
        return pd.array(pd.to_numeric(values, errors="coerce"), dtype="Int64")
    return values.astype("boolean").array


def coerce(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """``frame`` with exactly the columns of ``kinds``, each of its kind (absent ones missing)."""
    columns = {}
    for name, kind in kinds.items():
        values = frame[name] if name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if kind in ("int", "bool") and values.isna().any():
            raise ValueError(f"Column {name!r} has missing values where every row needs one.")
        columns[name] = _coerced(values.reset_index(drop=True), kind)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def arrow_schema(kinds: dict[str, str]) -> pa.Schema:
    """The Arrow (Parquet, CSV) schema of columns of these kinds."""
    return pa.schema([pa.field(name, _ARROW[kind]) for name, kind in kinds.items()])
