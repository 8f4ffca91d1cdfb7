"""Plate layout tables: one row per well with class, compound, concentration, ...

A plate folder may carry its own table under one of :data:`LAYOUT_TABLE_NAMES`;
:func:`find_layout_table` finds it.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pandas as pd

from ..plate import Plate, PlateError, normalize_well_name
from ..atomic import atomic_path
from ..names import shorten, suggest

__all__ = [
    "LAYOUT_TABLE_NAMES",
    "WELL_COLUMN_NAMES",
    "attach_layout",
    "find_layout_table",
    "read_layout_table",
    "write_layout_table",
]

#: Column names recognised as the well column (case-insensitive).
WELL_COLUMN_NAMES = ("well", "wellname", "well_name", "metadata_well", "well_id", "position")

#: File names of a layout table inside a plate folder (case-insensitive), in order of preference.
LAYOUT_TABLE_NAMES = (
    "plate_layout.tsv", "plate_layout.csv", "layout.tsv", "layout.csv",
    "plate_map.tsv", "plate_map.csv", "platemap.tsv", "platemap.csv",
)


def find_layout_table(folder: str | os.PathLike) -> Path | None:
    """Return the layout table a plate folder carries, or None.

    Examples
    --------
    >>> find_layout_table(sample_path("scportrait_mini")).name
    'plate_layout.tsv'
    >>> find_layout_table(tmp_path) is None
    True
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    return next((files[name] for name in LAYOUT_TABLE_NAMES if name in files), None)


def _find_well_column(frame: pd.DataFrame, path: Path) -> str:
    by_lower = {str(c).lower(): c for c in frame.columns}
    for name in WELL_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    raise PlateError(
        f"Layout table {path} has no well column; expected one of "
        f"{', '.join(WELL_COLUMN_NAMES)} (found: {suggest('well', frame.columns)})."
    )


def read_layout_table(path: str | os.PathLike, *, plate: Plate | None = None) -> pd.DataFrame:
    """Read a CSV/TSV plate layout and, when ``plate`` is given, attach it to its wells.

    Parameters
    ----------
    path : path
        CSV or TSV file (separator detected) with a well column (``Well``,
        ``well``, ``Metadata_Well``, ...) in any known naming (``A01``,
        ``Row02_Well04``, ``r02c04``) and any other columns.
    plate : Plate, optional
        Plate whose ``annotations`` are updated in place (and whose
        ``layout_source`` becomes ``path``).

    Returns
    -------
    DataFrame
        Annotations indexed by canonical well name.

    Raises
    ------
    PlateError
        If the file has no well column, names a well in no known naming, or
        names wells that are not on ``plate``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Layout table {path} does not exist.")
    frame = _read_table(path)
    well_column = _find_well_column(frame, path)
    wells = []
    for line, raw in enumerate(frame[well_column], start=2):
        try:
            wells.append(normalize_well_name(raw))
        except PlateError as error:
            raise PlateError(f"{path}, line {line}: {error}") from None
    frame = frame.drop(columns=[well_column])
    frame.index = pd.Index(wells, name="well")
    frame = _collapse_duplicates(frame, path)
    frame = frame.apply(_numeric_if_possible)
    frame = frame.replace("", pd.NA)
    if plate is not None:
        attach_layout(plate, frame, source=str(path))
        plate.layout_source = str(path)
    return frame


def _decode(raw: bytes, path: Path) -> str:
    """Text of a table as spreadsheets save it: UTF-8 (with or without BOM), UTF-16, else Latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if raw[1:200:2].count(0) > len(raw[1:200:2]) // 2:
        return raw.decode("utf-16-le", errors="replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_table(path: Path) -> pd.DataFrame:
    """Read a layout table of any common encoding and separator (comma, semicolon, tab)."""
    text = _decode(path.read_bytes(), path).replace("\x00", "")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise PlateError(f"Layout table {path} is empty; expected a header line with a well column.")
    sep = _separator(lines)
    try:
        return pd.read_csv(io.StringIO("\n".join(lines)), sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, csv.Error) as error:
        raise PlateError(f"Layout table {path} cannot be read as a table: {error}") from None


def _separator(lines: list[str]) -> str:
    """The separator of a table: sniffed, unless another one is the only one naming a well column.

    The sniffer guesses from how the lines agree; a header alone (the layout of a
    plate without annotations yet) gives it nothing to compare, and a name such as
    ``Compound, salt`` in a tab-separated header misleads it.
    """
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t").delimiter
    except csv.Error:
        sniffed = max(",;\t", key=lines[0].count)
    for sep in dict.fromkeys([sniffed, ",", "\t", ";"]):
        names = {name.strip().strip('"').lower() for name in lines[0].split(sep)}
        if names & set(WELL_COLUMN_NAMES):
            return sep
    return sniffed


def _collapse_duplicates(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Keep one of identical rows of a well; raise naming the well and columns of conflicting ones."""
    frame = frame[~frame.reset_index().duplicated().to_numpy()]
    repeated = frame.index[frame.index.duplicated()].unique()
    if len(repeated):
        well = repeated[0]
        rows = frame.loc[[well]]
        differ = [c for c in rows.columns if rows[c].nunique(dropna=False) > 1]
        raise PlateError(
            f"Layout table {path} gives well {well} more than once with different values in "
            f"{shorten(differ)}; {len(repeated)} well(s) conflict ({shorten(repeated)}). "
            "Keep one row per well."
        )
    return frame


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column.replace("", pd.NA), errors="coerce")
    if converted.notna().sum() == (column != "").sum() and converted.notna().any():
        return converted
    return column


def attach_layout(plate: Plate, layout: pd.DataFrame, *, source: str = "layout") -> None:
    """Merge a layout (indexed by canonical well) into ``plate.annotations``.

    Raises
    ------
    PlateError
        Naming the wells of the layout that are not on the plate.
    """
    unknown = [w for w in layout.index if w not in plate.sites]
    if unknown:
        raise PlateError(
            f"{source} names well(s) {', '.join(unknown)} that are not on plate "
            f"{plate.name!r} (wells with images: {', '.join(plate.wells)})."
        )
    merged = plate.annotations.copy()
    for column in layout.columns:
        if column not in merged.columns:
            merged[column] = pd.Series(dtype=layout[column].dtype)
    merged = merged.reindex(merged.index.union(layout.index))
    merged.update(layout)
    for column in layout.columns:
        merged.loc[layout.index, column] = layout[column]
    merged.index.name = "well"
    plate.annotations = merged


def write_layout_table(annotations: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write per-well annotations (indexed by well) as CSV, atomically."""
    path = Path(path)
    frame = annotations.copy()
    frame.index.name = "well"
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep)
