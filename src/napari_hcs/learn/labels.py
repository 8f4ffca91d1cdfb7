"""The one check of labels and splits before anything is trained.

Every learner (the CNNs, the classical classifiers) calls :func:`check_labels`
with the cell table, the label column and the split, and gets back the same
:class:`LabelledCells`: the cleaned labels, the split aligned to the table, which
rows take part, and the classes. The same bad input therefore gets the same
message whichever learner is asked.

Examples
--------
>>> table = pd.DataFrame({"well": ["A01", "A01", "B01", "B01"],
...                       "class": ["ctrl", "ctrl", "drug", None]})
>>> cells = check_labels(table, "class", pd.Series(["train", "val", "train", "train"]))
>>> cells.classes, int(cells.used.sum())
(['ctrl', 'drug'], 3)
>>> check_labels(table.assign(**{"class": "ctrl"}), "class", ["train"] * 4)
Traceback (most recent call last):
...
napari_hcs.learn.labels.LabelError: Label column 'class' has a single class ('ctrl') among its 4 labelled cells; a classifier needs at least two classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..names import suggest
from ..vocabulary import SPLIT_NAMES

__all__ = [
    "LabelError",
    "LabelledCells",
    "UNUSED",
    "check_labels",
    "check_split",
    "is_missing",
    "label_values",
]

#: Split value of rows that take no part (missing label or unassigned).
UNUSED = ""


class LabelError(ValueError):
    """Raised when labels or a split cannot be trained on; says what and where."""


@dataclass(frozen=True)
class LabelledCells:
    """The rows of a cell table a learner uses, and their classes.

    Attributes
    ----------
    labels : Series
        Each row's label as stripped text (``"cells"`` for label-free learning).
    split : Series
        ``"train"``, ``"val"``, ``"test"`` or ``""`` per row, on the table's index.
    used : Series of bool
        Rows with a label and a split value.
    classes : list of str
        Sorted class names of the used rows (empty for label-free learning).
    """

    labels: pd.Series
    split: pd.Series
    used: pd.Series
    classes: list[str]

    def rows(self, name: str) -> pd.Series:
        """Boolean mask of the used rows in split ``name`` (``"train"``, ``"val"``, ``"test"``)."""
        return self.used & (self.split == name)

    def counts(self) -> dict[str, dict[str, int]]:
        """Cells per class in each split that has any: ``{"train": {"ctrl": 10, ...}, ...}``."""
        counts = {}
        for name in SPLIT_NAMES:
            rows = self.rows(name)
            if rows.any():
                counts[name] = {str(k): int(v) for k, v in self.labels[rows].value_counts().sort_index().items()}
        return counts


def is_missing(values: pd.Series) -> pd.Series:
    """True where a label is missing: NaN, None or blank text."""
    return values.isna() | (values.astype(str).str.strip() == "")


def label_values(table: pd.DataFrame, label_column: str | None) -> tuple[pd.Series, pd.Series]:
    """Return each row's label as stripped text, and whether the row has a label.

    Parameters
    ----------
    table : DataFrame
        The cell table.
    label_column : str or None
        Column of each cell's class; None for label-free learning (every row is
        ``"cells"`` and labelled).

    Raises
    ------
    LabelError
        When the label column is not in the table (the message lists the columns).

    Examples
    --------
    >>> labels, labelled = label_values(pd.DataFrame({"moa": [" DMSO", ""]}), "moa")
    >>> labels.tolist(), labelled.tolist()
    (['DMSO', ''], [True, False])
    """
    if label_column is None:
        return pd.Series("cells", index=table.index), pd.Series(True, index=table.index)
    if label_column not in table.columns:
        raise LabelError(
            f"Label column {label_column!r} is not in the cell table; "
            f"columns are: {suggest(label_column, table.columns)}."
        )
    return table[label_column].astype(str).str.strip(), ~is_missing(table[label_column])


def check_split(table: pd.DataFrame, split) -> pd.Series:
    """Return the split as lower-case text on the table's index, or raise LabelError.

    Parameters
    ----------
    table : DataFrame
        The cell table.
    split : Series, array-like or str
        ``"train"``/``"val"``/``"test"`` (or empty: unused) per row, or the name of
        such a column. A Series with the same row labels in another order is
        aligned by label; otherwise values are taken row by row.
    """
    holder = "The split"
    if isinstance(split, str):
        if split not in table.columns:
            raise LabelError(
                f"Split column {split!r} is not in the cell table; columns are: {suggest(split, table.columns)}."
            )
        holder, split = f"Split column {split!r}", table[split]
    split = split if isinstance(split, pd.Series) else pd.Series(np.asarray(split, dtype=object))
    if len(split) != len(table):
        raise LabelError(f"The split has {len(split)} rows but the cell table has {len(table)}.")
    if not split.index.equals(table.index):
        same_rows = split.index.is_unique and table.index.is_unique and set(split.index) == set(table.index)
        split = split.reindex(table.index) if same_rows else pd.Series(split.to_numpy(), index=table.index)
    split = split.where(~is_missing(split), UNUSED).astype(str).str.strip().str.lower()
    unknown = sorted(set(split.unique()) - set(SPLIT_NAMES) - {UNUSED})
    if unknown:
        raise LabelError(
            f"{holder} holds {', '.join(map(repr, unknown))}; expected train, val, test or empty."
        )
    return split


def check_labels(table: pd.DataFrame, label_column: str | None, split, *, min_classes: int = 2) -> LabelledCells:
    """Check labels and split together; return the rows and classes to learn from.

    Parameters
    ----------
    table : DataFrame
        The cell table.
    label_column : str or None
        Column of each cell's class; None for label-free learning (every cell is
        ``"cells"``, no class checks).
    split : Series, array-like or str
        As in :func:`check_split`.
    min_classes : int
        Fewest classes a classifier accepts.

    Raises
    ------
    LabelError
        When the label column is missing, no labelled cell is in the train split,
        there are fewer than ``min_classes`` classes, or a class has no training
        cells (naming its cells and where they are).
    """
    split = check_split(table, split)
    labels, labelled = label_values(table, label_column)
    used = labelled & (split != UNUSED)
    if not (used & (split == "train")).any():
        raise LabelError(
            f"No labelled cell is in the train split ({int(labelled.sum())} labelled cells; "
            f"split counts: {split[labelled].value_counts().to_dict()})."
        )
    classes = sorted(labels[used].unique().tolist())
    if label_column is None:
        return LabelledCells(labels, split, used, [])
    _check_classes(classes, label_column, labels, used, split, min_classes)
    return LabelledCells(labels, split, used, classes)


def _check_classes(classes, label_column, labels, used, split, min_classes) -> None:
    if len(classes) < min_classes:
        shown = ", ".join(map(repr, classes)) or "none"
        raise LabelError(
            f"Label column {label_column!r} has a single class ({shown}) among its "
            f"{int(used.sum())} labelled cells; a classifier needs at least {_count(min_classes)} classes."
            if len(classes) == 1 else
            f"Label column {label_column!r} has {len(classes)} classes ({shown}); "
            f"a classifier needs at least {_count(min_classes)}."
        )
    trained = set(labels[used & (split == "train")].unique())
    untrained = [c for c in classes if c not in trained]
    if untrained:
        where = ", ".join(
            f"{c!r} ({int((used & (labels == c)).sum())} cells, all in "
            f"{'/'.join(sorted(split[used & (labels == c)].unique()))})"
            for c in untrained
        )
        raise LabelError(
            f"Class(es) with no training cells: {where}. Put some of their wells in the train split."
        )


def _count(n: int) -> str:
    return {2: "two", 3: "three"}.get(n, str(n))


