"""From a cell table, its crops, labels and split to the subsets a network trains on.

:func:`prepare_subsets` checks the table against the crop store, takes the
labels and split through the one check of every learner
(:func:`napari_hcs.learn.labels.check_labels`) and returns, for each of train,
val and test, the crop store rows and class codes of its cells. Without a split
it holds out 20 % of each class's wells for validation
(:func:`napari_hcs.learn.splits.split_by_well`).

Examples
--------
>>> table = pd.DataFrame({"crop_index": range(4), "well": ["A01", "A01", "B01", "B01"],
...                       "cls": ["a", "b", "a", "b"]})
>>> prepared = prepare_subsets(table, 4, label_column="cls", split=["train", "train", "val", "val"])
>>> prepared.classes, prepared.subsets["val"].crop_indices.tolist(), prepared.split_groups["val"]
(['a', 'b'], [2, 3], ['B01'])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from ..names import suggest
from ..vocabulary import CROP_INDEX, SPLIT_NAMES

if TYPE_CHECKING:
    from ..learn import LabelledCells

__all__ = ["Prepared", "Subset", "TrainingError", "check_crops", "prepare_subsets"]

#: Columns that name a cell in error messages, when the table has them.
IDENTITY_COLUMNS = ("plate", "well", "site", "field", "timepoint", "label", "cell")


class TrainingError(ValueError):
    """Raised when the table, labels, split or crops cannot be trained on.

    Label and split problems found by :func:`napari_hcs.learn.labels.check_labels`
    arrive as a TrainingError with the same message, the
    :class:`~napari_hcs.learn.labels.LabelError` as its cause.
    """


@dataclass
class Subset:
    """The cells of one split: their crop store rows and class codes."""

    crop_indices: np.ndarray
    labels: np.ndarray


@dataclass
class Prepared:
    """What training needs from the table.

    Attributes
    ----------
    classes : list of str
        Class names, in the order of the codes (empty for label-free training).
    subsets : dict of str to Subset
        ``"train"`` always; ``"val"`` and ``"test"`` when they have cells.
    split_counts : dict
        Cells per class in each split (:meth:`LabelledCells.counts`).
    split_groups : dict
        Wells (``plate/well`` over several plates) of each split.
    describe : callable
        ``describe(crop_index) -> str`` naming a cell (plate, well, site ...).
    """

    classes: list[str]
    subsets: dict[str, Subset]
    split_counts: dict
    split_groups: dict
    describe: Callable[[int], str]


def check_crops(crops, channels: list[str] | None) -> tuple[tuple[int, ...], list[str]]:
    """Return the crops' shape and channel names, or raise TrainingError.

    Examples
    --------
    >>> check_crops(np.zeros((5, 2, 8, 8)), None)
    ((5, 2, 8, 8), ['channel_0', 'channel_1'])
    """
    shape = tuple(int(s) for s in getattr(crops, "shape", ()))
    if len(shape) != 4 or shape[2] != shape[3]:
        raise TrainingError(f"Crops must have shape (cells, channels, size, size); got {shape}.")
    channels = list(channels) if channels is not None else [f"channel_{i}" for i in range(shape[1])]
    if len(channels) != shape[1]:
        raise TrainingError(
            f"{len(channels)} channel names ({', '.join(channels)}) for crops with {shape[1]} channels."
        )
    return shape, channels


def prepare_subsets(table: pd.DataFrame, n_crops: int, *, label_column: str | None, split=None,
                    seed: int = 0) -> Prepared:
    """Check the table, labels and split; return the train / val / test subsets.

    Parameters
    ----------
    table : DataFrame
        Cell table with ``crop_index`` (and the label column).
    n_crops : int
        Crops in the store; every used row must point into it.
    label_column : str or None
        Column of each cell's class; None for label-free training.
    split : Series, array-like or str, optional
        As for :func:`napari_hcs.learn.labels.check_split`; None: by well.
    seed : int
        Seed of the default split.

    Raises
    ------
    TrainingError
        A missing ``crop_index`` or label column (listing the columns), rows past
        the crop store, and every problem :func:`check_labels` finds.
    """
    if CROP_INDEX not in table.columns:
        raise TrainingError(f"The cell table has no {CROP_INDEX!r} column tying rows to crops; "
                            f"columns are: {suggest(CROP_INDEX, table.columns)}.")
    if label_column is not None and label_column not in table.columns:
        raise TrainingError(f"Label column {label_column!r} is not in the cell table; "
                            f"columns are: {suggest(label_column, table.columns)}.")
    from ..learn import LabelError, check_labels  # scikit-learn is imported when training starts

    if split is None:
        split = _split_by_well(table, label_column, seed)
    try:
        cells = check_labels(table, label_column, split)
    except LabelError as error:
        raise TrainingError(str(error)) from error
    crop_index = table[CROP_INDEX].to_numpy(dtype=np.int64)
    _check_in_store(crop_index, cells.used.to_numpy(), n_crops)
    subsets = {}
    for name in SPLIT_NAMES:
        rows = cells.rows(name).to_numpy()
        if rows.any():
            subsets[name] = Subset(crop_index[rows], _codes(cells, rows))
    return Prepared(
        classes=cells.classes,
        subsets=subsets,
        split_counts=cells.counts(),
        split_groups=_split_groups(table, cells),
        describe=_describer(table),
    )


def _split_by_well(table: pd.DataFrame, label_column: str | None, seed: int) -> pd.Series:
    """The default split: 20 % of each class's wells for validation, none for test."""
    from ..learn import split_by_well

    if label_column is None:  # label-free models: hold out wells without stratifying
        label_column = "_all_cells"
        table = table.assign(_all_cells="cells")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = split_by_well(table, label_column, val_fraction=0.2, test_fraction=0.0, seed=seed)
    for warning in caught:  # raised again where train_model was called
        warnings.warn(str(warning.message), UserWarning, stacklevel=4)
    return split


def _check_in_store(crop_index: np.ndarray, used: np.ndarray, n_crops: int) -> None:
    out_of_range = used & ((crop_index < 0) | (crop_index >= n_crops))
    if out_of_range.any():
        raise TrainingError(
            f"{int(out_of_range.sum())} row(s) point past the crop store (e.g. crop_index "
            f"{int(crop_index[out_of_range][0])}; the store holds {n_crops} crops)."
        )


def _codes(cells: LabelledCells, rows: np.ndarray) -> np.ndarray:
    """Class code of each row (0 for label-free training)."""
    if not cells.classes:
        return np.zeros(int(rows.sum()), dtype=np.int64)
    labels = cells.labels.to_numpy()[rows]
    return pd.Categorical(labels, categories=cells.classes).codes.astype(np.int64)


def _split_groups(table: pd.DataFrame, cells: LabelledCells) -> dict:
    if "well" not in table.columns:
        return {}
    groups = table["well"].astype(str)
    if "plate" in table.columns and table["plate"].nunique() > 1:
        groups = table["plate"].astype(str) + "/" + groups
    groups = groups.to_numpy()
    return {name: sorted(pd.unique(groups[cells.rows(name).to_numpy()]).tolist()) for name in SPLIT_NAMES}


def _describer(table: pd.DataFrame) -> Callable[[int], str]:
    columns = [c for c in IDENTITY_COLUMNS if c in table.columns]
    lookup = table.set_index(CROP_INDEX)[columns] if columns else None

    def describe(crop_index: int) -> str:
        if lookup is None or crop_index not in lookup.index:
            return "cell not in the table"
        row = lookup.loc[crop_index]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        return ", ".join(f"{c} {row[c]}" for c in columns)

    return describe
