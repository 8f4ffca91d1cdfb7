"""The groups a split keeps whole: wells (per plate), plates, or any columns.

Cells of one well share their culture, their staining and their imaging, so a
classifier that has seen some cells of a well recognises its neighbours for
reasons unrelated to the phenotype. A split therefore never puts the cells of
one group on both sides.

Examples
--------
>>> table = pd.DataFrame({"plate": ["P1", "P2", "P2"], "well": ["B02", "B02", "B03"],
...                       "site": [1, 1, 2]})
>>> group_labels(table).tolist()
['P1/B02', 'P2/B02', 'P2/B03']
>>> group_labels(table, "plate,well,site").tolist()
['P1/B02/1', 'P2/B02/1', 'P2/B03/2']

Cells without wells (a table of crops with no ``well`` column) are each their own group:

>>> group_labels(pd.DataFrame({"moa": ["DMSO", "taxol"]})).tolist()
['cell/0', 'cell/1']
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..names import suggest
from ..vocabulary import CELL_IDENTITY_COLUMNS

__all__ = [
    "cell_groups",
    "group_columns",
    "group_labels",
    "group_name",
    "groups_are_cells",
    "identity_order",
    "parse_column_values",
    "require_columns",
]


def require_columns(table: pd.DataFrame, *columns: str) -> None:
    """Raise KeyError naming the first of ``columns`` that is not in the table, and its columns."""
    for column in columns:
        if column not in table.columns:
            raise KeyError(
                f"Column {column!r} is not in the cell table; columns are: {suggest(column, table.columns)}."
            )


def parse_column_values(text: str, *, what: str, example: str) -> tuple[str, list[str]]:
    """Read ``"COLUMN=VALUE[,VALUE]"`` as a column and its values.

    The one reader of the held-out rows (``--holdout``) and the control cells
    (``--controls``); ``what`` and ``example`` word its error.

    Parameters
    ----------
    text : str
        ``"COLUMN=VALUE[,VALUE]"``; blanks around the names are ignored.
    what : str
        What the text gives, for the error (``"Holdout"``, ``"Controls"``).
    example : str
        A valid text, for the error.

    Returns
    -------
    column : str
    values : list of str

    Raises
    ------
    ValueError
        If the text has no ``=``, no column or no value.

    Examples
    --------
    >>> parse_column_values("moa = DMSO, control", what="Controls", example="compound=DMSO")
    ('moa', ['DMSO', 'control'])
    >>> parse_column_values("moa", what="Controls", example="compound=DMSO")
    Traceback (most recent call last):
    ...
    ValueError: Controls 'moa': expected COLUMN=VALUE[,VALUE], e.g. compound=DMSO.
    """
    column, sep, values = str(text).partition("=")
    listed = [value.strip() for value in values.split(",") if value.strip()]
    if not sep or not column.strip() or not listed:
        raise ValueError(f"{what} {text!r}: expected COLUMN=VALUE[,VALUE], e.g. {example}.")
    return column.strip(), listed


def group_columns(group_column: str | Sequence[str]) -> list[str]:
    """Return the columns of a group: ``"plate,well"`` or ``["plate", "well"]`` -> both.

    Examples
    --------
    >>> group_columns("plate, well"), group_columns("well")
    (['plate', 'well'], ['well'])
    """
    parts = group_column.split(",") if isinstance(group_column, str) else list(group_column)
    columns = [str(part).strip() for part in parts if str(part).strip()]
    if not columns:
        raise ValueError(f"No group column given in {group_column!r}.")
    return columns


def group_name(group_column: str | Sequence[str]) -> str:
    """Return how messages name a group: ``"well"``, ``"plate"``, ``"plate/well"``."""
    return "/".join(group_columns(group_column))


def groups_are_cells(table: pd.DataFrame, group_column: str | Sequence[str] = "well") -> bool:
    """Whether each cell is its own group: wells asked for, and the table has no ``well`` column.

    Examples
    --------
    >>> groups_are_cells(pd.DataFrame({"moa": ["DMSO"]})), groups_are_cells(pd.DataFrame({"well": ["B02"]}))
    (True, False)
    """
    return group_columns(group_column) == ["well"] and "well" not in table.columns


def identity_order(table: pd.DataFrame) -> np.ndarray:
    """Row positions of ``table`` ordered by each cell's identity, not by its row in the crop store.

    Segmentation workers append sites as they finish, so two runs can store the
    same cells in another order; ordered by
    :data:`~napari_hcs.vocabulary.CELL_IDENTITY_COLUMNS` (those present), random
    draws and batches over them take the same cells. Without any of those
    columns, the positions in table order.

    Examples
    --------
    >>> identity_order(pd.DataFrame({"well": ["B02", "A01", "A01"], "label": [1, 2, 1]}))
    array([2, 1, 0])
    """
    columns = [c for c in CELL_IDENTITY_COLUMNS if c in table.columns]
    if not columns:
        return np.arange(len(table))
    return table.reset_index(drop=True).sort_values(columns, kind="stable").index.to_numpy()


def cell_groups(table: pd.DataFrame) -> pd.Series:
    """Return one group per row, ``"cell/<row position>"``: the groups of cells without wells.

    Examples
    --------
    >>> cell_groups(pd.DataFrame({"moa": ["DMSO", "taxol"]}, index=[7, 3])).to_dict()
    {7: 'cell/0', 3: 'cell/1'}
    """
    names = [f"cell/{position}" for position in range(len(table))]
    return pd.Series(names, index=table.index, dtype=object, name="group")


def group_labels(table: pd.DataFrame, group_column: str | Sequence[str] = "well") -> pd.Series:
    """Return the group of each row that a split must keep together.

    Wells are named per plate (``B02`` exists on every plate), so when
    ``group_column`` is ``"well"`` and the table has a ``plate`` column with more
    than one plate, the group is ``"<plate>/<well>"``. Several columns
    (``"plate,well,site"`` or a list) give ``"<plate>/<well>/<site>"``. Wells of
    a table without a ``well`` column (cells imported without wells) are the
    cells themselves (:func:`cell_groups`).

    Parameters
    ----------
    table : DataFrame
        Cell table.
    group_column : str or sequence of str
        Column naming the group (``"well"``, ``"plate"``, ...), or several
        columns, joined by commas or as a list.

    Returns
    -------
    Series of str
        Group name of each row, index aligned with ``table``, named ``"group"``.

    Raises
    ------
    KeyError
        If a group column other than the default ``well`` is not in the table
        (the message lists the columns).
    ValueError
        If some rows have no group.
    """
    if groups_are_cells(table, group_column):
        return cell_groups(table)
    columns = group_columns(group_column)
    require_columns(table, *columns)
    for column in columns:
        missing = int(table[column].isna().sum())
        if missing:
            raise ValueError(
                f"{missing} row(s) have no {column!r}; every cell needs one to be split "
                "without leakage."
            )
    if columns == ["well"] and "plate" in table.columns and table["plate"].nunique() > 1:
        columns = ["plate", "well"]
    groups = table[columns[0]].astype(str)
    for column in columns[1:]:
        groups = groups + "/" + table[column].astype(str)
    return groups.rename("group")
