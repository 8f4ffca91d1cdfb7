"""Train / validation / test splits that do not leak between wells.

Every split here holds out whole groups (wells, or plates for batch effects; see
:mod:`napari_hcs.learn.groups`): the cells of one group are never on both sides.
Split values are ``"train"``, ``"val"`` and ``"test"``; ``""``
(:data:`~napari_hcs.learn.labels.UNUSED`) marks rows that take no part (missing
label, or left unassigned in a given split column). :func:`build_split` is the
one entry point of the command line and the learners: a given split column, a
held-out plate or well, or a split stratified by class.

Examples
--------
>>> table = pd.DataFrame({"plate": ["P1"] * 6 + ["P2"] * 6,
...                       "well": ["B02", "B02", "B03", "B03", "B04", "B04"] * 2,
...                       "moa": ["DMSO", "DMSO", "taxol", "taxol", "taxol", "taxol"] * 2})
>>> split = build_split(table, label_column="moa", holdout="plate=P2", val_fraction=0)
>>> split.groupby(table["plate"]).unique().map(list).to_dict()
{'P1': ['train'], 'P2': ['test']}
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from .groups import group_labels, group_name, require_columns
from .labels import UNUSED, check_split, label_values

__all__ = ["build_split", "holdout_split", "parse_holdout", "split_by_well", "split_summary"]


def _dominant_class(labels: pd.Series, groups: pd.Series) -> pd.Series:
    """Most frequent label of each group (ties: first in sorted order)."""
    counts = pd.crosstab(groups, labels)
    return counts.idxmax(axis=1)


def _held_out_counts(n_groups: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Return (val, test) group counts of a class with ``n_groups`` groups.

    Val comes first: at least one val group as soon as the class has two. Test
    gets at least one when a group is left for it, and one group always stays
    in train.
    """
    n_val = n_test = 0
    if val_fraction > 0 and n_groups >= 2:
        n_val = min(max(1, round(val_fraction * n_groups)), n_groups - 1)
    room = n_groups - 1 - n_val
    if test_fraction > 0 and room >= 1:
        n_test = min(max(1, round(test_fraction * n_groups)), room)
    return n_val, n_test


def _assign_groups(
    group_class: pd.Series,
    *,
    val_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
    group_word: str,
    held_out: str,
) -> dict[str, str]:
    """Assign each group to train/val/test, stratified by its dominant class."""
    assignment: dict[str, str] = {}
    for cls in sorted(group_class.unique(), key=str):
        members = sorted(group_class.index[group_class == cls], key=str)
        members = [members[i] for i in rng.permutation(len(members))]
        if len(members) == 1:
            warnings.warn(
                f"Class {cls!r} has a single {group_word} ({members[0]}): it cannot be held "
                f"out by {group_word}, so all its cells go to train and it has no {held_out} "
                "cells.",
                UserWarning,
                stacklevel=3,
            )
        n_val, n_test = _held_out_counts(len(members), val_fraction, test_fraction)
        if test_fraction > 0 and n_test == 0 and len(members) > 1:
            warnings.warn(
                f"Class {cls!r} has only {len(members)} {group_word}s: none is left to hold "
                "out for test, so the class is not tested.",
                UserWarning,
                stacklevel=3,
            )
        for i, member in enumerate(members):
            if i < n_test:
                assignment[member] = "test"
            elif i < n_test + n_val:
                assignment[member] = "val"
            else:
                assignment[member] = "train"
    return assignment


def _warn_leaks(split: pd.Series, groups: pd.Series, holder: str) -> None:
    used = split != UNUSED
    sides = split[used].groupby(groups[used]).nunique()
    leaking = sorted(sides.index[sides > 1])
    if leaking:
        shown = ", ".join(leaking[:10]) + (" ..." if len(leaking) > 10 else "")
        warnings.warn(
            f"{holder} puts cells of {len(leaking)} group(s) on both "
            f"sides of the split ({shown}); scores on such a split are optimistic.",
            UserWarning,
            stacklevel=3,
        )


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1); got {value}.")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1; got {val_fraction + test_fraction}."
        )


def split_by_well(
    table: pd.DataFrame,
    label_column: str | None,
    *,
    split_column: str | pd.Series | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    group_column: str | Sequence[str] = "well",
    seed: int = 0,
) -> pd.Series:
    """Split the cells of a table into train / val / test by whole wells.

    Without ``split_column``, each well goes entirely to one side. Wells are
    stratified by their (most frequent) class: of the wells of each class, a
    ``val_fraction`` goes to val and a ``test_fraction`` to test, rounded, with
    at least one val well as soon as the class has two wells, at least one
    test well when a third is left for it, and at least one well always in
    train. A class with a single well cannot be held out: its cells go to
    train, with a warning naming the class.

    With ``split_column``, that column gives the split (``train``, ``val``,
    ``test``, or empty for unused rows); when it holds no ``val`` row, val
    wells are carved from the wells wholly in train as above (``test_fraction``
    is then not used).

    Parameters
    ----------
    table : DataFrame
        Cell table, one row per cell.
    label_column : str or None
        Column with the class of each cell. Rows with a missing or empty label
        get the split value ``""`` (unused). None: every cell counts as one
        class (label-free learning), wells are held out unstratified.
    split_column : str or Series, optional
        Column holding a predefined split, or such a split itself.
    val_fraction, test_fraction : float
        Fraction of each class's wells held out for validation and test.
    group_column : str or sequence of str
        What is held out whole: ``"well"`` (default; combined with ``plate``
        when the table spans plates), ``"plate"`` (for batch effects), any
        other column, or several (``"plate,well,site"``); see
        :func:`~napari_hcs.learn.groups.group_labels`.
    seed : int
        Seed of the random well assignment; the same seed gives the same split.

    Returns
    -------
    Series of str
        ``"train"``, ``"val"``, ``"test"`` or ``""`` per row, index aligned with
        ``table``, named ``"split"``.

    Raises
    ------
    LabelError
        If the label or split column is missing, or the split column holds
        other values (the messages name the column).
    KeyError
        If a group column is missing (the message lists the columns).
    ValueError
        If the fractions are out of range.

    Warns
    -----
    UserWarning
        When a class has a single well, or when a given split column puts one
        well on both sides.

    Examples
    --------
    >>> table = pd.DataFrame({"well": [f"B{w:02d}" for w in range(2, 10) for _ in range(3)],
    ...                       "class": ["ctrl"] * 12 + ["drug"] * 12})
    >>> split = split_by_well(table, "class", val_fraction=0.25, seed=1)
    >>> table[split == "val"].groupby("class")["well"].nunique().to_dict()
    {'ctrl': 1, 'drug': 1}
    >>> int((split.groupby(table["well"]).nunique() > 1).sum())  # no well on both sides
    0
    """
    _check_fractions(val_fraction, test_fraction)
    labels, labelled = label_values(table, label_column)
    groups = group_labels(table, group_column)
    rng = np.random.default_rng(seed)
    if split_column is None:
        split = pd.Series("train", index=table.index, dtype=object)
        carve_from = labelled
    else:
        split = check_split(table, split_column).astype(object)
        holder = f"Split column {split_column!r}" if isinstance(split_column, str) else "The given split"
        _warn_leaks(split.where(labelled, UNUSED), groups, holder)
        if (split == "val").any() or val_fraction == 0:
            return split.where(labelled, UNUSED).rename("split")
        # Only groups wholly in train may give cells to val.
        mixed = split.groupby(groups).agg(lambda s: set(s) - {UNUSED} != {"train"})
        carve_from = (split == "train") & labelled & ~groups.map(mixed).astype(bool)
    if carve_from.any():
        given = split_column is not None
        assignment = _assign_groups(
            _dominant_class(labels[carve_from], groups[carve_from]),
            val_fraction=val_fraction,
            test_fraction=0.0 if given else test_fraction,
            rng=rng,
            group_word=group_name(group_column),
            held_out="val" if given or test_fraction == 0 else "val or test",
        )
        split[carve_from] = groups[carve_from].map(assignment)
    return split.where(labelled, UNUSED).rename("split")


def parse_holdout(text: str) -> tuple[str, list[str]]:
    """Read ``"COLUMN=VALUE[,VALUE]"`` as the column and the values held out for test.

    Examples
    --------
    >>> parse_holdout("plate=Week4_27821, Week4_27809")
    ('plate', ['Week4_27821', 'Week4_27809'])
    >>> parse_holdout("plate")
    Traceback (most recent call last):
    ...
    ValueError: Holdout 'plate': expected COLUMN=VALUE[,VALUE], e.g. plate=Week4_27821.
    """
    column, sep, values = str(text).partition("=")
    held_out = [value.strip() for value in values.split(",") if value.strip()]
    if not sep or not column.strip() or not held_out:
        raise ValueError(f"Holdout {text!r}: expected COLUMN=VALUE[,VALUE], e.g. plate=Week4_27821.")
    return column.strip(), held_out


def build_split(
    table: pd.DataFrame,
    *,
    label_column: str | None,
    split_column: str | None = None,
    holdout: str | tuple[str, Sequence[str]] | None = None,
    group_column: str | Sequence[str] = "well",
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> pd.Series:
    """Build the split of a cell table: given, held out by a column, or by whole wells.

    ``train``, ``baseline`` and ``compare`` split with this one function, so the
    same options give the same split whichever learner is asked.

    Parameters
    ----------
    table : DataFrame
        Cell table.
    label_column : str or None
        Class of each cell (None: label-free, unstratified).
    split_column : str, optional
        Column holding a predefined split (see :func:`split_by_well`).
    holdout : str or (str, sequence of str), optional
        ``"COLUMN=VALUE[,VALUE]"`` (or ``(column, values)``): the rows whose
        column holds one of the values are test, the others train, with val
        groups carved from train (see :func:`holdout_split`).
    group_column : str or sequence of str
        What is held out whole: ``"well"``, ``"plate"``, ``"plate,well,site"``, ...
    val_fraction, test_fraction : float
        Fractions of each class's groups held out (``test_fraction`` only
        without a split column or holdout).
    seed : int
        Seed of the group assignment.

    Returns
    -------
    Series of str
        As :func:`split_by_well`.

    Raises
    ------
    ValueError
        If both ``split_column`` and ``holdout`` are given, ``holdout`` is
        malformed or names values the column does not hold, and as
        :func:`split_by_well`.
    """
    if holdout is not None:
        if split_column is not None:
            raise ValueError("Give either a split column or a holdout, not both.")
        column, values = parse_holdout(holdout) if isinstance(holdout, str) else holdout
        split_column = holdout_split(table, column, values)
    return split_by_well(
        table,
        label_column,
        split_column=split_column,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        group_column=group_column,
        seed=seed,
    )


def holdout_split(table: pd.DataFrame, column: str, test_values) -> pd.Series:
    """Return a split column holding out the rows whose ``column`` is in ``test_values``.

    Use it to test on another plate (``holdout_split(table, "plate",
    ["Week4_27821"])``), then pass the result as ``split_column`` to
    :func:`split_by_well`, which carves validation wells from the train side;
    :func:`build_split` does both from ``holdout="plate=Week4_27821"``.

    Parameters
    ----------
    table : DataFrame
        Cell table.
    column : str
        Column compared with ``test_values``.
    test_values : str or iterable of str
        Values whose rows form the test set; every other row is train.

    Returns
    -------
    Series of str
        ``"test"`` or ``"train"`` per row, index aligned with ``table``.

    Raises
    ------
    KeyError
        If ``column`` is missing.
    ValueError
        If a test value does not occur in the column, or every row would be test.
    """
    require_columns(table, column)
    if isinstance(test_values, str):
        test_values = [test_values]
    test_values = [str(v) for v in test_values]
    values = table[column].astype(str)
    present = set(values.unique())
    unknown = [v for v in test_values if v not in present]
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))} not found in column {column!r}; values are: "
            f"{', '.join(sorted(present))}."
        )
    is_test = values.isin(test_values)
    if is_test.all():
        raise ValueError(
            f"Holding out {', '.join(test_values)} of column {column!r} leaves no row to train on."
        )
    return pd.Series(np.where(is_test, "test", "train"), index=table.index, name="split")


def split_summary(
    table: pd.DataFrame,
    split: pd.Series,
    label_column: str | None,
    *,
    group_column: str | Sequence[str] = "well",
) -> pd.DataFrame:
    """Count cells and groups of each class on each side of a split.

    Returns
    -------
    DataFrame
        One row per (split, class) with columns ``cells`` and ``groups``.
    """
    used = split != UNUSED
    labels, _ = label_values(table, label_column)
    frame = pd.DataFrame(
        {
            "split": split[used],
            "class": labels[used],
            "group": group_labels(table, group_column)[used],
        }
    )
    return frame.groupby(["split", "class"]).agg(
        cells=("group", "size"), groups=("group", "nunique")
    )
