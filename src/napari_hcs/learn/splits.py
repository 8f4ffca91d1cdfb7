"""Train / validation / test splits that do not leak between wells.

Cells of one well share their culture, their staining and their imaging, so a
classifier that has seen some cells of a well recognises its neighbours for
reasons unrelated to the phenotype. Every split here therefore holds out whole
wells (or whole plates, for batch effects): the cells of one group are never on
both sides of a split.

Split values are ``"train"``, ``"val"`` and ``"test"``; ``""`` marks rows that
take no part (missing label, or left unassigned in a given split column).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = [
    "SPLIT_VALUES",
    "UNUSED",
    "group_labels",
    "holdout_split",
    "split_by_well",
    "split_summary",
]

#: The values a split may take, besides :data:`UNUSED`.
SPLIT_VALUES = ("train", "val", "test")
#: Split value of rows that take no part (missing label or unassigned).
UNUSED = ""


def _require_columns(table: pd.DataFrame, *columns: str) -> None:
    for column in columns:
        if column not in table.columns:
            raise KeyError(
                f"Column {column!r} is not in the cell table; columns are: "
                f"{', '.join(map(str, table.columns))}."
            )


def _missing_labels(labels: pd.Series) -> pd.Series:
    return labels.isna() | (labels.astype(str).str.strip() == "")


def group_labels(table: pd.DataFrame, group_column: str = "well") -> pd.Series:
    """Return the group of each row that a split must keep together.

    Wells are named per plate (``B02`` exists on every plate), so when
    ``group_column`` is ``"well"`` and the table has a ``plate`` column with more
    than one plate, the group is ``"<plate>/<well>"``.

    Parameters
    ----------
    table : DataFrame
        Cell table.
    group_column : str
        Column naming the group (``"well"``, ``"plate"``, ...).

    Returns
    -------
    Series of str
        Group name of each row, index aligned with ``table``.

    Raises
    ------
    KeyError
        If ``group_column`` is not in the table (the message lists the columns).
    ValueError
        If some rows have no group.
    """
    _require_columns(table, group_column)
    groups = table[group_column]
    if groups.isna().any():
        raise ValueError(
            f"{int(groups.isna().sum())} row(s) have no {group_column!r}; every cell "
            "needs one to be split without leakage."
        )
    groups = groups.astype(str)
    if group_column == "well" and "plate" in table.columns and table["plate"].nunique() > 1:
        groups = table["plate"].astype(str) + "/" + groups
    return groups.rename("group")


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
    group_name: str,
    held_out: str,
) -> dict[str, str]:
    """Assign each group to train/val/test, stratified by its dominant class."""
    assignment: dict[str, str] = {}
    for cls in sorted(group_class.unique(), key=str):
        members = sorted(group_class.index[group_class == cls], key=str)
        members = [members[i] for i in rng.permutation(len(members))]
        if len(members) == 1:
            warnings.warn(
                f"Class {cls!r} has a single {group_name} ({members[0]}): it cannot be held "
                f"out by {group_name}, so all its cells go to train and it has no {held_out} "
                "cells.",
                UserWarning,
                stacklevel=3,
            )
        n_val, n_test = _held_out_counts(len(members), val_fraction, test_fraction)
        if test_fraction > 0 and n_test == 0 and len(members) > 1:
            warnings.warn(
                f"Class {cls!r} has only {len(members)} {group_name}s: none is left to hold "
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


def _validated_split(table: pd.DataFrame, split_column: str) -> pd.Series:
    _require_columns(table, split_column)
    raw = table[split_column]
    missing = _missing_labels(raw)
    split = raw.astype(str).str.strip().str.lower().where(~missing, UNUSED)
    bad = sorted(set(split.unique()) - set(SPLIT_VALUES) - {UNUSED})
    if bad:
        raise ValueError(
            f"Split column {split_column!r} holds {', '.join(map(repr, bad))}; "
            f"expected only {', '.join(map(repr, SPLIT_VALUES))} (or empty for unused rows). "
            "To hold out a plate or a well, see napari_hcs.learn.splits.holdout_split."
        )
    return split


def _warn_leaks(split: pd.Series, groups: pd.Series, split_column: str) -> None:
    used = split != UNUSED
    sides = split[used].groupby(groups[used]).nunique()
    leaking = sorted(sides.index[sides > 1])
    if leaking:
        shown = ", ".join(leaking[:10]) + (" ..." if len(leaking) > 10 else "")
        warnings.warn(
            f"Split column {split_column!r} puts cells of {len(leaking)} group(s) on both "
            f"sides of the split ({shown}); scores on such a split are optimistic.",
            UserWarning,
            stacklevel=3,
        )


def split_by_well(
    table: pd.DataFrame,
    label_column: str,
    *,
    split_column: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    group_column: str = "well",
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
    wells are carved from the train wells as above (``test_fraction`` is then
    not used).

    Parameters
    ----------
    table : DataFrame
        Cell table, one row per cell.
    label_column : str
        Column with the class of each cell. Rows with a missing or empty label
        get the split value ``""`` (unused).
    split_column : str, optional
        Column holding a predefined split.
    val_fraction, test_fraction : float
        Fraction of each class's wells held out for validation and test.
    group_column : str
        What is held out whole: ``"well"`` (default; combined with ``plate``
        when the table spans plates, see :func:`group_labels`) or ``"plate"``
        (for batch effects), or any other column.
    seed : int
        Seed of the random well assignment; the same seed gives the same split.

    Returns
    -------
    Series of str
        ``"train"``, ``"val"``, ``"test"`` or ``""`` per row, index aligned with
        ``table``, named ``"split"``.

    Raises
    ------
    KeyError
        If a named column is missing (the message lists the columns).
    ValueError
        If the fractions are out of range or the split column holds other values.

    Warns
    -----
    UserWarning
        When a class has a single well, or when a given split column puts one
        well on both sides.

    Examples
    --------
    >>> split = split_by_well(table, "class", val_fraction=0.25, seed=1)
    >>> train = table[split == "train"]
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1); got {value}.")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1; got {val_fraction + test_fraction}."
        )
    _require_columns(table, label_column)
    labels = table[label_column]
    unlabelled = _missing_labels(labels)
    groups = group_labels(table, group_column)
    rng = np.random.default_rng(seed)

    if split_column is None:
        split = pd.Series("train", index=table.index, dtype=object)
        carve_from = ~unlabelled
        test_fraction_used = test_fraction
    else:
        split = _validated_split(table, split_column).astype(object)
        _warn_leaks(split.where(~unlabelled, UNUSED), groups, split_column)
        if (split == "val").any() or val_fraction == 0:
            return split.where(~unlabelled, UNUSED).rename("split")
        # Only groups wholly in train may give cells to val.
        mixed = split.groupby(groups).agg(lambda s: set(s) - {UNUSED} != {"train"})
        carve_from = (split == "train") & ~unlabelled & ~groups.map(mixed).astype(bool)
        test_fraction_used = 0.0

    labelled = carve_from
    if labelled.any():
        group_class = _dominant_class(labels[labelled].astype(str), groups[labelled])
        assignment = _assign_groups(
            group_class,
            val_fraction=val_fraction,
            test_fraction=test_fraction_used,
            rng=rng,
            group_name=group_column,
            held_out="val" if split_column is not None or test_fraction == 0 else "val or test",
        )
        split[labelled] = groups[labelled].map(assignment)
    return split.where(~unlabelled, UNUSED).rename("split")


def holdout_split(table: pd.DataFrame, column: str, test_values) -> pd.Series:
    """Return a split column holding out the rows whose ``column`` is in ``test_values``.

    Use it to test on another plate (``holdout_split(table, "plate",
    ["Week4_27821"])``), then pass the result as a split column to
    :func:`split_by_well`, which carves validation wells from the train side.

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
    _require_columns(table, column)
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
    table: pd.DataFrame, split: pd.Series, label_column: str, *, group_column: str = "well"
) -> pd.DataFrame:
    """Count cells and groups of each class on each side of a split.

    Returns
    -------
    DataFrame
        One row per (split, class) with columns ``cells`` and ``groups``.
    """
    used = split != UNUSED
    frame = pd.DataFrame(
        {
            "split": split[used],
            "class": table.loc[used, label_column].astype(str),
            "group": group_labels(table, group_column)[used],
        }
    )
    return frame.groupby(["split", "class"]).agg(
        cells=("group", "size"), groups=("group", "nunique")
    )
