"""Plates of a cell table, their control cells, and per-plate normalisation.

Each plate of a screen is stained and imaged on its own, so its intensities
(and every feature built on them) carry an offset and a scale of their own: a
classifier trained on one plate and tested on another learns the plate as
much as the phenotype. Normalising each plate by its own statistics, or by
those of its control cells (DMSO wells, say), removes that batch effect, as
profiling pipelines do (pycytominer's ``normalize`` with ``samples``).

Examples
--------
>>> table = pd.DataFrame({"plate": ["P1"] * 3 + ["P2"] * 3,
...                       "compound": ["DMSO", "DMSO", "taxol"] * 2,
...                       "feat_dna": [1.0, 3.0, 9.0, 11.0, 13.0, 19.0]})
>>> normalise_per_plate(table[["feat_dna"]], table, controls="compound=DMSO")["feat_dna"].tolist()
[-1.0, 1.0, 7.0, -1.0, 1.0, 7.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import pandas as pd

from ..names import shorten
from ..vocabulary import NORMALISATIONS
from .groups import group_columns, parse_column_values, require_columns

__all__ = [
    "Normalisation",
    "PLATE_COLUMN",
    "SINGLE_PLATE",
    "control_mask",
    "controls_text",
    "dividing_columns",
    "normalise_per_plate",
    "parse_controls",
    "plate_keys",
    "within_columns",
]

#: Column naming the plate of each cell.
PLATE_COLUMN = "plate"
#: Plate key of every row of a table without a plate column.
SINGLE_PLATE = "(one plate)"

#: Control cells as text (``"compound=DMSO"``), as ``(column, values)``, or None (every cell).
Controls = Union[str, tuple[str, Sequence[str]], None]


@dataclass(frozen=True)
class Normalisation:
    """How the classical features are normalised: per plate (by its cells or controls), or globally.

    Parameters
    ----------
    method : {"plate", "global"}
        One of :data:`~napari_hcs.vocabulary.NORMALISATIONS`.
    controls : str, (str, sequence of str) or None
        Control cells each plate is normalised by (``"compound=DMSO"``; kept
        as that text); None: all its cells. Only with ``"plate"``.
    within : str or sequence of str
        Columns dividing each plate into groups normalised on their own
        (``"timepoint"``; see :func:`plate_keys`). Only with ``"plate"``.

    Raises
    ------
    ValueError
        An unknown method, bad controls, or controls or groups with ``"global"``.

    Examples
    --------
    >>> Normalisation(controls=" compound = DMSO", within="timepoint").as_record()
    {'normalisation': 'plate', 'controls': 'compound=DMSO', 'normalise_within': ['timepoint']}
    >>> Normalisation("global", within=["timepoint"])
    Traceback (most recent call last):
    ...
    ValueError: Groups within plates are normalised by the 'plate' normalisation only; got 'global'.
    """

    method: str = "plate"
    controls: Controls = None
    within: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in NORMALISATIONS:
            raise ValueError(f"Unknown normalisation {self.method!r}; normalisations are: {', '.join(NORMALISATIONS)}.")
        object.__setattr__(self, "within", within_columns(self.within))
        object.__setattr__(self, "controls", controls_text(self.controls))
        if self.method == "global" and self.controls is not None:
            raise ValueError("Control cells are used by the 'plate' normalisation only; got 'global'.")
        if self.method == "global" and self.within:
            raise ValueError("Groups within plates are normalised by the 'plate' normalisation only; got 'global'.")

    @classmethod
    def of(cls, normalisation: "str | Normalisation") -> "Normalisation":
        """A :class:`Normalisation` as it is, or one of the method named."""
        return normalisation if isinstance(normalisation, Normalisation) else cls(normalisation)

    def as_record(self) -> dict:
        """JSON-ready, as result files record it."""
        return {"normalisation": self.method, "controls": self.controls, "normalise_within": list(self.within)}


def within_columns(within: str | Sequence[str] | None) -> tuple[str, ...]:
    """Read the columns that divide each plate: ``"timepoint, batch"`` or a list; none when empty.

    Examples
    --------
    >>> within_columns("timepoint, batch"), within_columns(["timepoint"]), within_columns("")
    (('timepoint', 'batch'), ('timepoint',), ())
    """
    if within is None or not (within.strip() if isinstance(within, str) else len(within)):
        return ()
    return tuple(group_columns(within))


def dividing_columns(plate, *, class_column: str = "class") -> list[str]:
    """The columns that could divide this plate for normalisation, as ``within`` takes them.

    ``timepoint`` when the plate holds more than one; then each well annotation
    with a value in every well (a cell without one cannot be normalised within
    it) whose every value spans wells of at least two classes of
    ``class_column``. A column whose parts each hold one class (the treatment of
    a two-well plate, say) would take away the very difference a classifier is
    to learn; without classes, no annotation is offered.

    Parameters
    ----------
    plate : Plate
        The plate (its timepoints, wells and annotations are read).
    class_column : str
        The wells' class, never offered itself.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_hcs.plate import Plate, Site
    >>> sites = {w: [Site(w, 0, t) for t in (1, 2)] for w in ("A01", "A02", "B01", "B02")}
    >>> plate = Plate(name="P", channels=["DNA"], sites=sites, loader=None, shape=(4, 4), dtype="uint16")
    >>> for well, batch, compound in [("A01", "b1", "DMSO"), ("A02", "b1", "taxol"),
    ...                               ("B01", "b2", "DMSO"), ("B02", "b2", "taxol")]:
    ...     plate.annotate(well, batch=batch, compound=compound, **{"class": compound})
    >>> dividing_columns(plate)
    ['timepoint', 'batch']
    """
    columns = ["timepoint"] if len(plate.timepoints) > 1 else []
    annotations = plate.annotations.reindex(plate.wells).astype(object)
    if class_column not in annotations:
        return columns
    classes = _texts(annotations[class_column])
    for column in annotations.columns.drop(class_column):
        parts = _texts(annotations[column])
        if column not in columns and (parts != "").all() and parts.nunique() >= 2 and _mixed(parts, classes):
            columns.append(str(column))
    return columns


def _mixed(parts: pd.Series, classes: pd.Series) -> bool:
    """Whether every part holds wells of at least two classes (wells without a class ignored)."""
    labelled = classes != ""
    classes_per_part = classes[labelled].groupby(parts[labelled]).nunique()
    return bool(classes_per_part.reindex(parts.unique(), fill_value=0).min() >= 2)


def _texts(values: pd.Series) -> pd.Series:
    """Values as stripped text, missing ones as ``""``."""
    return values.where(values.notna(), "").astype(str).str.strip()


def parse_controls(text: str | None) -> tuple[str, list[str]] | None:
    """Read ``"COLUMN=VALUE[,VALUE]"`` as the column and values of the control cells.

    The grammar of ``--holdout`` (:func:`~napari_hcs.learn.groups.parse_column_values`).

    Parameters
    ----------
    text : str or None
        ``"compound=DMSO"``, ``"moa=DMSO,control"``; None or blank: no controls.

    Returns
    -------
    (str, list of str) or None
        The column and its control values; None without controls.

    Raises
    ------
    ValueError
        If the text is not ``COLUMN=VALUE[,VALUE]``.

    Examples
    --------
    >>> parse_controls("compound=DMSO"), parse_controls("moa = DMSO, control"), parse_controls("")
    (('compound', ['DMSO']), ('moa', ['DMSO', 'control']), None)
    >>> parse_controls("compound")
    Traceback (most recent call last):
    ...
    ValueError: Controls 'compound': expected COLUMN=VALUE[,VALUE], e.g. compound=DMSO.
    """
    if text is None or not str(text).strip():
        return None
    return parse_column_values(text, what="Controls", example="compound=DMSO")


def controls_text(controls: Controls) -> str | None:
    """Return controls as ``"COLUMN=VALUE[,VALUE]"`` (what a result file records), or None.

    Examples
    --------
    >>> controls_text(("moa", ["DMSO", "control"])), controls_text(" compound = DMSO "), controls_text(None)
    ('moa=DMSO,control', 'compound=DMSO', None)
    """
    parsed = _controls(controls)
    return None if parsed is None else f"{parsed[0]}={','.join(parsed[1])}"


def _controls(controls: Controls) -> tuple[str, list[str]] | None:
    if controls is None or isinstance(controls, str):
        return parse_controls(controls)
    column, values = controls
    values = [values] if isinstance(values, str) else [str(value) for value in values]
    return str(column), values


def plate_keys(table: pd.DataFrame, *, within: Sequence[str] = ()) -> pd.Series:
    """Return the plate of each row as text; :data:`SINGLE_PLATE` without a plate column.

    With ``within``, each plate is divided by the values of those columns (a
    time course normalised per timepoint, say): the key becomes
    ``"P1 (timepoint=3)"``.

    Parameters
    ----------
    table : DataFrame
        Cell table, with or without a ``plate`` column.
    within : sequence of str
        Columns that divide each plate into groups of their own.

    Returns
    -------
    Series of str
        Index aligned with ``table``, named ``"plate"``.

    Raises
    ------
    ValueError
        If some rows have no plate, or no value in a ``within`` column (the
        message says how many).
    KeyError
        If a ``within`` column is missing (the message lists the columns).

    Examples
    --------
    >>> plate_keys(pd.DataFrame({"plate": ["P1", 2]})).tolist()
    ['P1', '2']
    >>> plate_keys(pd.DataFrame({"well": ["B02"]})).tolist()
    ['(one plate)']
    >>> plate_keys(pd.DataFrame({"plate": ["P1", "P1"], "timepoint": [1, 2]}), within=["timepoint"]).tolist()
    ['P1 (timepoint=1)', 'P1 (timepoint=2)']
    """
    if PLATE_COLUMN not in table.columns:
        keys = pd.Series(SINGLE_PLATE, index=table.index, dtype=object, name=PLATE_COLUMN)
    else:
        _refuse_missing(table, PLATE_COLUMN, "no plate")
        keys = table[PLATE_COLUMN].astype(str).rename(PLATE_COLUMN)
    within = list(within)
    if not within:
        return keys
    require_columns(table, *within)
    for position, column in enumerate(within):
        _refuse_missing(table, column, f"no {column!r}")
        keys = keys + (" (" if position == 0 else ", ") + column + "=" + table[column].astype(str)
    return (keys + ")").rename(PLATE_COLUMN)


def _refuse_missing(table: pd.DataFrame, column: str, what: str) -> None:
    missing = int(table[column].isna().sum())
    if missing:
        raise ValueError(
            f"{missing} of {len(table)} row(s) have {what} (column {column!r}); every cell "
            "needs one to be split or normalised by it."
        )


def control_mask(table: pd.DataFrame, controls: Controls = None, *, within: Sequence[str] = ()) -> pd.Series:
    """Return which rows are control cells; every row without controls.

    Parameters
    ----------
    table : DataFrame
        Cell table.
    controls : str, (str, sequence of str) or None
        ``"compound=DMSO"`` (see :func:`parse_controls`), ``("compound",
        ["DMSO"])``, or None: every row counts.
    within : sequence of str
        Columns dividing each plate (see :func:`plate_keys`): each of the
        groups needs control cells.

    Returns
    -------
    Series of bool
        Index aligned with ``table``, named ``"control"``.

    Raises
    ------
    KeyError
        If the control column is missing (the message lists the columns).
    ValueError
        If a control value is not in the column (the message lists its values),
        or a plate has no control cell.

    Examples
    --------
    >>> table = pd.DataFrame({"plate": ["P1", "P1", "P2"], "compound": ["DMSO", "taxol", "DMSO"]})
    >>> control_mask(table, "compound=DMSO").tolist()
    [True, False, True]
    >>> control_mask(table, ("compound", ["taxol"]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Plate P2 has no control cells (compound=taxol); every plate needs some to be normalised ...
    """
    parsed = _controls(controls)
    if parsed is None:
        return pd.Series(True, index=table.index, name="control")
    column, values = parsed
    require_columns(table, column)
    present = sorted(table[column].dropna().astype(str).unique())
    unknown = [value for value in values if value not in present]
    if unknown:
        raise ValueError(
            f"Control value(s) {', '.join(map(repr, unknown))} not found in column {column!r}; "
            f"its values are: {shorten(present)}."
        )
    mask = table[column].astype(str).isin(values) & table[column].notna()
    _check_every_plate_has_controls(plate_keys(table, within=within), mask, f"{column}={','.join(values)}")
    return mask.rename("control")


def _check_every_plate_has_controls(plates: pd.Series, mask: pd.Series, described: str) -> None:
    counts = mask.groupby(plates).sum()
    lacking = [str(plate) for plate in counts.index[counts == 0]]
    if lacking:
        listed = shorten(lacking)
        raise ValueError(
            f"Plate{'s' if len(lacking) > 1 else ''} {listed} ha{'ve' if len(lacking) > 1 else 's'} "
            f"no control cells ({described}); every plate needs some to be normalised against its "
            "controls, or leave out --controls."
        )


def _as_numbers(values: pd.DataFrame) -> pd.DataFrame:
    bad = [str(c) for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise ValueError(
            f"Column(s) {shorten(bad)} are not numeric; only numbers can be normalised per plate."
        )
    return values.astype(np.float64)


def normalise_per_plate(values: pd.DataFrame, table: pd.DataFrame, *, controls: Controls = None,
                        within: Sequence[str] = ()) -> pd.DataFrame:
    """Z-score every column within each plate, by the plate's control cells or all its cells.

    Each value becomes ``(value - mean) / std`` with the mean and population
    standard deviation (``ddof=0``, as scikit-learn's ``StandardScaler``) of
    the column over the plate's reference rows: its control cells with
    ``controls``, else all its cells. Missing values are ignored in the
    statistics (as are infinite ones) and stay missing. Where the standard
    deviation is 0 or undefined (a single reference cell), the column is only
    centred; a column without any value among a plate's reference rows
    becomes missing on that plate.

    Parameters
    ----------
    values : DataFrame
        Numeric columns (``feat_*`` features, say), index equal to ``table``'s.
    table : DataFrame
        Cell table with the ``plate`` column (without one, every row is one
        plate) and the control column.
    controls : str, (str, sequence of str) or None
        Control cells (see :func:`control_mask`); None: every cell of a plate.
    within : sequence of str
        Columns dividing each plate into groups normalised on their own
        (``["timepoint"]``: each timepoint of each plate; see :func:`plate_keys`).

    Returns
    -------
    DataFrame of float64
        Same index and columns as ``values``.

    Raises
    ------
    ValueError
        If the indexes differ, a column is not numeric, a row has no plate, or
        as :func:`control_mask`.
    KeyError
        As :func:`control_mask`.

    Examples
    --------
    >>> table = pd.DataFrame({"plate": ["P1", "P1", "P2", "P2"], "feat_a": [1.0, 3.0, 10.0, np.nan]})
    >>> normalise_per_plate(table[["feat_a"]], table)["feat_a"].tolist()
    [-1.0, 1.0, 0.0, nan]
    >>> table["timepoint"] = [1, 2, 1, 1]
    >>> normalise_per_plate(table[["feat_a"]], table, within=["timepoint"])["feat_a"].tolist()
    [0.0, 0.0, 0.0, nan]
    """
    if not values.index.equals(table.index):
        raise ValueError("The values to normalise and the cell table must have the same index (rows).")
    numbers = _as_numbers(values)
    plates = plate_keys(table, within=within)
    reference = control_mask(table, controls, within=within).to_numpy()
    finite = numbers.where(np.isfinite(numbers))[reference]
    grouped = finite.groupby(plates[reference].to_numpy())
    mean, std = grouped.mean(), grouped.std(ddof=0)
    std = std.where(std > 0, 1.0)
    centred = numbers - mean.reindex(plates).to_numpy()
    return centred / std.reindex(plates).to_numpy()
