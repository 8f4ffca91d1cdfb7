"""Train / validation / test splits that do not leak between wells.

Every split here holds out whole groups (wells, or plates for batch effects; see
:mod:`napari_hcs.learn.groups`): the cells of one group are never on both sides,
with one exception, said by a warning: a class with fewer than
:data:`MIN_WHOLE_WELLS` wells on a plate gives validation whole sites of its
wells (or, with fewer than three sites, some of its cells), since taking one of its two
wells would leave the plate's class one well, or none, to train on.
Split values are ``"train"``, ``"val"`` and ``"test"``; ``""``
(:data:`~napari_hcs.learn.labels.UNUSED`) marks rows that take no part (missing
label, or left unassigned in a given split column). :func:`build_split` is the
one entry point of the command line and the learners: a given split column, a
held-out plate or well, or a split stratified by class (and plate).

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
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from .groups import (group_columns, group_labels, group_name, groups_are_cells, identity_order, parse_column_values,
                     require_columns)
from .labels import UNUSED, check_split, label_values
from .plates import PLATE_COLUMN, SINGLE_PLATE, plate_keys

__all__ = ["MIN_TRAIN_SITES", "MIN_WHOLE_WELLS", "build_split", "holdout_split", "parse_holdout", "split_by_well", "split_summary"]

#: Fewest wells of a class on a plate for validation to take whole wells; with
#: fewer it takes whole sites within them (or, with fewer than three sites, cells).
MIN_WHOLE_WELLS = 3
#: Sites a well keeps in training when validation takes some of its sites: with fewer
#: (a well of one or two sites), validation takes cells instead, since training on a
#: single site of a well loses half its cells and all of its site-to-site variation
#: (scPortrait, timepoint 3 held out: balanced accuracy 0.829 against 0.876 by cells).
MIN_TRAIN_SITES = 2
#: Columns naming a site within a well: ``site``, else ``field`` and / or ``timepoint``.
SITE_COLUMNS = ("site",)
FIELD_COLUMNS = ("field", "timepoint")


@dataclass
class _Carving:
    """One call's carving of held-out groups: its settings, and the warnings it will give."""

    val_fraction: float
    test_fraction: float
    rng: np.random.Generator
    group_word: str
    within_wells: bool
    site_columns: list[str]
    notes: list[str] = field(default_factory=list)
    by_sites: list[str] = field(default_factory=list)
    by_cells: list[str] = field(default_factory=list)

    @property
    def held_out(self) -> str:
        """What a class that cannot be held out lacks: ``"val"``, ``"test"`` or ``"val or test"``."""
        if self.test_fraction == 0:
            return "val"
        return "test" if self.val_fraction == 0 else "val or test"


def _site_columns(table: pd.DataFrame) -> list[str]:
    """The columns naming a site within a well: ``site``, else ``field`` and / or ``timepoint``."""
    if SITE_COLUMNS[0] in table.columns:
        return list(SITE_COLUMNS)
    return [column for column in FIELD_COLUMNS if column in table.columns]


def _carving(table: pd.DataFrame, group_column, *, val_fraction, test_fraction, seed) -> tuple[_Carving, bool]:
    """The carving of this table and group column, and whether strata are per plate."""
    wells = group_columns(group_column) == ["well"]
    cells = groups_are_cells(table, group_column)
    by_plate = wells and PLATE_COLUMN in table.columns and table[PLATE_COLUMN].nunique() > 1
    carving = _Carving(
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        rng=np.random.default_rng(seed),
        group_word="cell" if cells else group_name(group_column),
        within_wells=wells and not cells,
        site_columns=_site_columns(table),
    )
    return carving, by_plate


def _dominant_class(labels: pd.Series, groups: pd.Series) -> pd.Series:
    """Most frequent label of each group (ties: first in sorted order), indexed by sorted group."""
    counts = pd.DataFrame({"group": groups.to_numpy(), "label": labels.to_numpy()}).groupby(["group", "label"]).size()
    top = counts.sort_values(ascending=False, kind="stable").groupby(level="group").head(1)
    dominant = pd.Series(top.index.get_level_values("label"), index=top.index.get_level_values("group"))
    return dominant.sort_index()


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


def _on_plate(plate: str) -> str:
    return "" if plate == SINGLE_PLATE else f" on plate {plate}"


def _note_untested(n_groups: int, plate: str, cls, carving: _Carving) -> None:
    word = carving.group_word
    carving.notes.append(
        f"Class {cls!r} has only {n_groups} {word}{'s' if n_groups > 1 else ''}{_on_plate(plate)}: "
        "none is left to hold out for test, so the class is not tested."
    )


def _whole_groups(members: list[str], plate: str, cls, carving: _Carving) -> dict[str, str]:
    """Assign the (shuffled) groups of one stratum to train / val / test, whole."""
    word = carving.group_word
    if len(members) == 1:
        carving.notes.append(
            f"Class {cls!r} has a single {word} ({members[0]}): it cannot be held out by {word}, "
            f"so all its cells go to train and it has no {carving.held_out} cells."
        )
    n_val, n_test = _held_out_counts(len(members), carving.val_fraction, carving.test_fraction)
    if carving.test_fraction > 0 and n_test == 0 and len(members) > 1:
        _note_untested(len(members), plate, cls, carving)
    sides = ["test"] * n_test + ["val"] * n_val
    return {member: sides[i] if i < len(sides) else "train" for i, member in enumerate(members)}


def _val_sites(sites: pd.Series, wells: pd.Series, carving: _Carving) -> tuple[list[str], int]:
    """Sites for val: about ``val_fraction`` of each well's, at least one, two left; and the count."""
    chosen, total = [], 0
    for well in sorted(wells.unique()):
        names = sorted(sites[wells == well].unique())
        total += len(names)
        if len(names) > MIN_TRAIN_SITES:
            n_val = min(max(1, round(carving.val_fraction * len(names))), len(names) - MIN_TRAIN_SITES)
            chosen += [names[i] for i in carving.rng.permutation(len(names))[:n_val]]
    return chosen, total


def _val_within_wells(frame: pd.DataFrame, wells: pd.Series, plate: str, cls, carving: _Carving) -> np.ndarray:
    """Sides of the cells of a stratum with few wells: val takes whole sites, else cells."""
    sides = np.full(len(frame), "train", dtype=object)
    n_wells = wells.nunique()
    stratum = f"Class {cls!r} has {n_wells} well{'s' if n_wells > 1 else ''}{_on_plate(plate)}"
    if carving.site_columns:
        sites = wells
        for column in carving.site_columns:
            sites = sites + "/" + frame[column].astype(str)
        chosen, n_sites = _val_sites(sites, wells, carving)
        if chosen:
            sides[sites.isin(chosen).to_numpy()] = "val"
            carving.by_sites.append(f"{stratum}: validation takes {len(chosen)} of its {n_sites} sites")
            return sides
    if len(frame) < 2:
        carving.notes.append(f"{stratum} with a single cell: it cannot be validated, so it goes to train.")
        return sides
    n_val = min(max(1, round(carving.val_fraction * len(frame))), len(frame) - 1)
    sides[identity_order(frame)[carving.rng.permutation(len(frame))[:n_val]]] = "val"
    why = (f" with fewer than {MIN_TRAIN_SITES + 1} sites" + (" each" if n_wells > 1 else "")) \
        if carving.site_columns else \
        " and the table has no site column"
    carving.by_cells.append(f"{stratum}{why}: validation takes {n_val} of its {len(frame)} cells at random")
    return sides


def _carve(table, labels, groups, rows: np.ndarray, carving: _Carving, *, by_plate: bool,
           mixed: frozenset = frozenset()) -> np.ndarray:
    """Sides of the ``rows`` (train so far): val and test carved per (plate, class) stratum.

    Groups in ``mixed`` also have cells outside train (a given split): they never
    go whole to val, but give it sites or cells when their stratum has too few
    other wells.
    """
    frame, groups = table[rows], groups[rows]
    group_class = _dominant_class(labels[rows], groups)
    plates = plate_keys(frame).groupby(groups).first() if by_plate else pd.Series(SINGLE_PLATE, group_class.index)
    strata = pd.DataFrame({"plate": plates.reindex(group_class.index), "class": group_class})
    order = sorted(strata.groupby(["plate", "class"]).groups.items(), key=lambda item: tuple(map(str, item[0])))
    code = {group: i for i, (_, members) in enumerate(order) for group in members}
    positions = pd.Series(np.arange(len(groups))).groupby(groups.map(code).to_numpy()).indices
    sides = np.full(len(frame), "train", dtype=object)
    for i, ((plate, cls), members) in enumerate(order):
        members = sorted(members, key=str)
        members = [members[j] for j in carving.rng.permutation(len(members))]
        where = positions[i]
        whole = [member for member in members if member not in mixed]
        if carving.within_wells and carving.val_fraction > 0 and len(whole) < MIN_WHOLE_WELLS:
            if carving.test_fraction > 0:  # test takes whole wells only, and none of these
                _note_untested(len(members), plate, cls, carving)
            sides[where] = _val_within_wells(frame.iloc[where], groups.iloc[where], plate, cls, carving)
        else:
            assignment = _whole_groups(whole, plate, cls, carving)
            sides[where] = groups.iloc[where].map(assignment).fillna("train").to_numpy()
    return sides


def _joined(clauses: list[str], ending: str) -> str:
    """``"Class 'a' ...; class 'b' ..., <ending>"``: one sentence for all strata."""
    text = "; ".join([clauses[0]] + [clause[0].lower() + clause[1:] for clause in clauses[1:]])
    return f"{text}, {ending}"


def _warn(carving: _Carving) -> None:
    """Give the warnings of a carving: classes left out, then one each for sites and cells."""
    messages = list(carving.notes)
    if carving.by_sites:
        whose = "its" if len(carving.by_sites) == 1 else "their"
        messages.append(_joined(
            carving.by_sites, f"not whole wells; {whose} validation cells share a well with training cells."
        ))
    if carving.by_cells:
        whose = "its" if len(carving.by_cells) == 1 else "their"
        messages.append(_joined(
            carving.by_cells, f"not whole wells or sites; {whose} validation scores are optimistic."
        ))
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)


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
            stacklevel=4,
        )


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1); got {value}.")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1; got {val_fraction + test_fraction}."
        )


def _given_split(table, split_column, labelled: pd.Series, groups: pd.Series) -> tuple[pd.Series, frozenset]:
    """The checked given split, and the groups that also have cells outside train."""
    split = check_split(table, split_column).astype(object)
    holder = f"Split column {split_column!r}" if isinstance(split_column, str) else "The given split"
    _warn_leaks(split.where(labelled, UNUSED), groups, holder)
    elsewhere = ((split != "train") & (split != UNUSED)).groupby(groups).any()
    return split, frozenset(elsewhere.index[elsewhere.to_numpy()])


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

    Without ``split_column``, wells are held out stratified by plate and class:
    each well counts for its (most frequent) class, and the wells of each
    class on each plate (each class alone with one plate, or with another
    ``group_column``) form a stratum. Of a stratum's wells, a ``val_fraction``
    goes to val and a ``test_fraction`` to test, rounded, with at least one
    val well, at least one test well when a well is left for it, and at least
    one well always in train; so every plate keeps training cells of each of
    its classes.

    A stratum with fewer than :data:`MIN_WHOLE_WELLS` wells gives val whole
    sites instead (the ``site`` column, else ``field`` and / or
    ``timepoint``): about ``val_fraction`` of each well's sites, at least one,
    with :data:`MIN_TRAIN_SITES` (two) sites of each well left in train. When
    its wells have fewer than three sites each (or the table no site column),
    val takes ``val_fraction`` of its cells at random. A warning names such strata. Test always takes whole wells (such
    a stratum has none to spare). Other group columns (``"plate"``,
    ``"plate,well,site"``, ...) are held out whole, stratified by class alone;
    a class with a single group then goes to train, with a warning.

    A table without a ``well`` column (cells imported without wells) holds out
    single cells, stratified by plate and class, with the default
    ``group_column``.

    With ``split_column``, that column gives the split (``train``, ``val``,
    ``test``, or empty for unused rows); when it holds no ``val`` row, val is
    carved as above from the wells wholly in train (``test_fraction`` is then
    not used).

    Parameters
    ----------
    table : DataFrame
        Cell table, one row per cell.
    label_column : str or None
        Column with the class of each cell. Rows with a missing or empty label
        get the split value ``""`` (unused). None: every cell counts as one
        class (label-free learning), wells are held out unstratified by class.
    split_column : str or Series, optional
        Column holding a predefined split, or such a split itself.
    val_fraction, test_fraction : float
        Fraction of each stratum's wells held out for validation and test.
    group_column : str or sequence of str
        What is held out whole: ``"well"`` (default; combined with ``plate``
        when the table spans plates), ``"plate"`` (for batch effects), any
        other column, or several (``"plate,well,site"``); see
        :func:`~napari_hcs.learn.groups.group_labels`.
    seed : int
        Seed of the random assignment; the same seed gives the same split.

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
        If a group column other than the default ``well`` is missing (the
        message lists the columns).
    ValueError
        If the fractions are out of range, or some rows have no plate or group.

    Warns
    -----
    UserWarning
        When validation takes sites or cells of a stratum's wells (naming the
        class and plate), when a class cannot be held out or tested, or when a
        given split column puts one group on both sides.

    Examples
    --------
    >>> table = pd.DataFrame({"well": [f"B{w:02d}" for w in range(2, 10) for _ in range(3)],
    ...                       "class": ["ctrl"] * 12 + ["drug"] * 12})
    >>> split = split_by_well(table, "class", val_fraction=0.25, seed=1)
    >>> table[split == "val"].groupby("class")["well"].nunique().to_dict()
    {'ctrl': 1, 'drug': 1}
    >>> int((split.groupby(table["well"]).nunique() > 1).sum())  # no well on both sides
    0

    With a single well of DMSO, validation takes one of its sites:

    >>> table = pd.DataFrame({"well": ["B02"] * 8, "site": [1, 1, 2, 2, 3, 3, 4, 4], "moa": "DMSO"})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     split = split_by_well(table, "moa")
    >>> table.site[split == "val"].unique().tolist(), str(caught[0].message)[:62]
    ([3], "Class 'DMSO' has 1 well: validation takes 1 of its 4 sites, no")
    """
    _check_fractions(val_fraction, test_fraction)
    labels, labelled = label_values(table, label_column)
    groups = group_labels(table, group_column)
    mixed = frozenset()
    if split_column is None:
        split = pd.Series("train", index=table.index, dtype=object)
    else:
        split, mixed = _given_split(table, split_column, labelled, groups)
        if (split == "val").any():
            val_fraction = 0.0  # the given val is kept
        test_fraction = 0.0
    carving, by_plate = _carving(
        table, group_column, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    rows = ((split == "train") & labelled).to_numpy()
    if rows.any() and (val_fraction > 0 or test_fraction > 0):
        split[rows] = _carve(table, labels, groups, rows, carving, by_plate=by_plate, mixed=mixed)
        _warn(carving)
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
    return parse_column_values(text, what="Holdout", example="plate=Week4_27821")


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
    same options give the same split whichever learner is asked. Validation is
    carved from the train side by :func:`split_by_well`: whole wells of each
    plate and class, or whole sites (else cells) of a class with fewer than
    :data:`MIN_WHOLE_WELLS` wells on a plate.

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
        Fractions of each (plate, class) stratum's wells held out
        (``test_fraction`` only without a split column or holdout).
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

    Examples
    --------
    >>> table = pd.DataFrame({"plate": ["P1"] * 8 + ["P2"] * 4, "site": [1, 2, 3, 4] * 3,
    ...                       "well": ["B02"] * 4 + ["B03"] * 4 + ["B02"] * 4,
    ...                       "moa": ["DMSO"] * 4 + ["taxol"] * 4 + ["DMSO"] * 4})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # val takes a site of each well of P1
    ...     split = build_split(table, label_column="moa", holdout="plate=P2")
    >>> pd.crosstab([table.plate, table.moa], split)  # doctest: +NORMALIZE_WHITESPACE
    split        test  train  val
    plate moa
    P1    DMSO      0      3    1
          taxol     0      3    1
    P2    DMSO      4      0    0
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
