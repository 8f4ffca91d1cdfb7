"""The cells a classifier is trained on, their classes, and how validation is carved.

A cell's training class is the class a user gave it (``cell_class``) where there
is one, else its well's class (``class``, from the plate map). The validation
cells are held out as whole wells when every class has two wells or more; a
screen labelled from the plate map often has one well per class, so then whole
sites (well, field, timepoint) are held out, and with a single site per class,
single cells. The sentence :func:`interactive_split` returns says which, for the
user.

Examples
--------
>>> table = pd.DataFrame({"crop_index": range(8), "well": ["B02"] * 4 + ["B04"] * 4,
...                       "field": 0, "timepoint": [1, 1, 2, 2] * 2,
...                       "class": ["ctrl"] * 4 + ["drug"] * 4, "cell_class": ""})
>>> table = with_training_class(table)
>>> split, how = interactive_split(table)
>>> split.tolist().count("val"), how
(4, 'Validation: 1 of 2 sites of each class, held out within wells (a class has a single well).')
"""

from __future__ import annotations

import warnings

import pandas as pd

from ..images.site_exclusions import drop_excluded_cells
from ..learn import MIN_WHOLE_WELLS, group_labels, is_missing, split_by_well
from ..project import LABEL_COLUMN, feature_columns
from ..vocabulary import CELL_CLASS_COLUMN, CROP_INDEX, TRAINING_CLASS_COLUMN

__all__ = [
    "TrainingSetError",
    "check_training_set",
    "class_counts",
    "forest_cells",
    "interactive_split",
    "labelled_classes",
    "training_table",
    "with_training_class",
]

#: Columns that name a site, as far as the cell table has them.
SITE_COLUMNS = ("well", "field", "timepoint")
#: Fraction of each class's wells (sites, cells) held out for validation.
VAL_FRACTION = 0.2
#: How a user gives cells a class, for the messages.
HOW_TO_LABEL = "label wells on the plate map or click cells on the image to give them a class"
#: How a user measures features, for the messages.
HOW_TO_MEASURE = ("measure features: run the plate again with 'measure features' ticked (Segment tab) "
                  "or 'napari-hcs features --project DIR'; or train the CNN, which needs none")


class TrainingSetError(ValueError):
    """Raised when the labelled cells cannot be trained on; says why and what to do."""


def _text(values: pd.Series) -> pd.Series:
    """Stripped text, ``""`` where missing."""
    return values.where(~is_missing(values), "").astype(str).str.strip()


def with_training_class(table: pd.DataFrame) -> pd.DataFrame:
    """Add :data:`TRAINING_CLASS_COLUMN`: ``cell_class`` where given, else the well's ``class``.

    Rows with neither get ``""`` (unlabelled). Either column may be absent.

    Examples
    --------
    >>> table = pd.DataFrame({"class": ["ctrl", "ctrl", None], "cell_class": ["", "drug", ""]})
    >>> with_training_class(table)["training_class"].tolist()
    ['ctrl', 'drug', '']
    """
    blank = pd.Series("", index=table.index, dtype=object)
    cell = _text(table[CELL_CLASS_COLUMN]) if CELL_CLASS_COLUMN in table else blank
    well = _text(table[LABEL_COLUMN]) if LABEL_COLUMN in table else blank
    return table.assign(**{TRAINING_CLASS_COLUMN: cell.where(cell != "", well).astype(object)})


def training_table(project) -> pd.DataFrame:
    """The project's cell table with each cell's training class (:data:`TRAINING_CLASS_COLUMN`).

    Cells of sites quality control excluded (and the user did not keep) are left
    out; ``table.attrs["qc_excluded"]`` says how many cells of which sites
    (:func:`~napari_hcs.images.site_exclusions.drop_excluded_cells`).

    Raises
    ------
    TrainingSetError
        When the project has no cells yet (segment the plate first), or every
        cell lies in an excluded site.
    """
    try:
        table = project.cell_table()
    except FileNotFoundError as error:
        raise TrainingSetError(f"The project {project.folder} has no cells yet: segment the plate first "
                               "(Segment tab).") from error
    if table.empty:
        raise TrainingSetError(f"The project {project.folder} has no cells yet: segment the plate first "
                               "(Segment tab).")
    table, dropped = drop_excluded_cells(table, project.folder)
    if table.empty:
        raise TrainingSetError(f"Every cell of the project {project.folder} lies in one of the {len(dropped)} "
                               "sites quality control excluded; keep some of them (napari-hcs qc PLATE --keep "
                               "SITE_KEY) to train.")
    table = with_training_class(table)
    table.attrs["qc_excluded"] = dropped
    return table


def labelled_classes(table: pd.DataFrame) -> pd.Series:
    """Labelled cells per training class, sorted by class name."""
    labels = table[TRAINING_CLASS_COLUMN]
    return labels[labels != ""].value_counts().sort_index()


def _classes_without_cells(table: pd.DataFrame, annotations: pd.DataFrame | None, class_list) -> dict:
    """Classes given to wells that have no cells: ``{class: [wells]}``."""
    if annotations is None or LABEL_COLUMN not in annotations or not len(annotations):
        return {}
    well_class = _text(annotations[LABEL_COLUMN])
    with_cells = set(table["well"].astype(str)) if "well" in table else set()
    present = set(labelled_classes(table).index)
    wanted = set(well_class[well_class != ""]) | set(class_list)
    empty = {}
    for name in sorted(wanted - present):
        wells = sorted(str(w) for w in well_class.index[well_class == name] if str(w) not in with_cells)
        if wells:
            empty[name] = wells
    return empty


def check_training_set(table: pd.DataFrame, *, kind: str = "forest", annotations: pd.DataFrame | None = None,
                       class_list=()) -> list[str]:
    """Refuse a training set that cannot be trained on; return warnings for the user.

    Parameters
    ----------
    table : DataFrame
        Cell table with :data:`TRAINING_CLASS_COLUMN` (:func:`training_table`).
    kind : {"forest", "cnn"}
        The forest also needs ``feat_*`` columns.
    annotations : DataFrame, optional
        The well annotations (``Project.well_annotations()``), to name classes given
        to wells without cells.
    class_list : sequence of str
        The class names of the project's class list.

    Returns
    -------
    list of str
        Warnings: classes whose labelled wells have no cells (named, with the wells),
        when the other classes are enough to train.

    Raises
    ------
    TrainingSetError
        No cells; fewer than two classes with labelled cells (naming the classes
        present, those without cells, and how to label); no features for the forest.

    Examples
    --------
    >>> table = pd.DataFrame({"well": ["B02", "B04"], "training_class": ["ctrl", ""],
    ...                       "feat_area": [1.0, 2.0]})
    >>> check_training_set(table)
    Traceback (most recent call last):
    ...
    napari_hcs.classify.training_set.TrainingSetError: Training needs labelled cells of at least two classes; the cells have only class 'ctrl' (1 cell). To add a class, label wells on the plate map or click cells on the image to give them a class.
    """
    if table.empty:
        raise TrainingSetError("The project has no cells yet: segment the plate first (Segment tab).")
    counts = labelled_classes(table)
    empty = _classes_without_cells(table, annotations, class_list)
    lacking = [f"class {name!r} is given to well(s) {', '.join(wells)}, which have no cells"
               for name, wells in empty.items()]
    if len(counts) < 2:
        shown = ", ".join(f"{name!r} ({n} cell{'s' if n != 1 else ''})" for name, n in counts.items())
        have = f"the cells have only class {shown}" if len(counts) else "no cell has a class yet"
        also = f" ({'; '.join(lacking)})" if lacking else ""
        raise TrainingSetError(f"Training needs labelled cells of at least two classes; {have}{also}. "
                               f"To add a class, {HOW_TO_LABEL}.")
    if kind == "forest" and not feature_columns(table):
        raise TrainingSetError(f"The cells have no classical features (feat_* columns) for the random forest; "
                               f"{HOW_TO_MEASURE}.")
    return [f"Left out: {text} (not segmented yet?)." for text in lacking]


def forest_cells(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Unlabel the labelled cells without features (sites not measured); say how many.

    Raises
    ------
    TrainingSetError
        When the table has no ``feat_*`` columns, or no labelled cell has features.

    Examples
    --------
    >>> table = pd.DataFrame({"training_class": ["a", "b", "b"], "feat_area": [1.0, 2.0, np.nan]})
    >>> cells, notes = forest_cells(table)
    >>> cells["training_class"].tolist(), notes
    (['a', 'b', ''], ['Left out: 1 labelled cell without features (its site was not measured).'])
    """
    columns = feature_columns(table)
    if not columns:
        raise TrainingSetError(f"The cells have no classical features (feat_* columns) for the random forest; "
                               f"{HOW_TO_MEASURE}.")
    labelled = table[TRAINING_CLASS_COLUMN] != ""
    missing = labelled & table[columns].isna().all(axis=1)
    n = int(missing.sum())
    if not n:
        return table, []
    if n == int(labelled.sum()):
        raise TrainingSetError(f"None of the {n} labelled cells has classical features for the random forest; "
                               f"{HOW_TO_MEASURE}.")
    unlabelled = table[TRAINING_CLASS_COLUMN].where(~missing, "")
    cells = "1 labelled cell without features (its site was" if n == 1 else \
        f"{n} labelled cells without features (their sites were"
    return table.assign(**{TRAINING_CLASS_COLUMN: unlabelled}), [f"Left out: {cells} not measured)."]


def _groups_per_class(table: pd.DataFrame, labelled: pd.Series, columns: list[str]) -> pd.Series:
    groups = group_labels(table[labelled], columns)
    return groups.groupby(table.loc[labelled, TRAINING_CLASS_COLUMN]).nunique()


def _held_out(split: pd.Series, table: pd.DataFrame, columns: list[str], word: str) -> str:
    """``"1 of 3 wells of each class"`` or ``"1 of 3 wells of 'a', 2 of 5 of 'b'"``."""
    labelled = split != ""
    groups = group_labels(table[labelled], columns)
    classes = table.loc[labelled, TRAINING_CLASS_COLUMN]
    total = groups.groupby(classes).nunique()
    val = groups[split[labelled] == "val"].groupby(classes[split[labelled] == "val"]).nunique()
    pairs = [(int(val.get(name, 0)), int(n)) for name, n in total.items()]
    if len(set(pairs)) == 1:
        return f"{pairs[0][0]} of {pairs[0][1]} {word}s of each class"
    return ", ".join(f"{v} of {n} {word}s of {name!r}" for (v, n), name in zip(pairs, total.index))


def _site_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in SITE_COLUMNS if c in table.columns]


def interactive_split(table: pd.DataFrame, *, seed: int = 0) -> tuple[pd.Series, str]:
    """Carve validation cells: whole wells, else whole sites within wells, else single cells.

    Whole wells when every class has labelled cells in three wells or more
    (:data:`~napari_hcs.learn.MIN_WHOLE_WELLS`); else
    whole sites (well, field, timepoint) when every class has two sites or more;
    else single cells, stratified by class. Of each class, 20 % of its wells
    (sites, cells) are held out, at least one where it has two.

    Parameters
    ----------
    table : DataFrame
        Cell table with :data:`TRAINING_CLASS_COLUMN` (``""``: unlabelled).
    seed : int
        Seed of the choice of held-out wells (sites, cells).

    Returns
    -------
    split : Series of str
        ``"train"``, ``"val"`` or ``""`` (unlabelled) per row, on the table's index.
    description : str
        How validation was carved, for the user.
    """
    labelled = table[TRAINING_CLASS_COLUMN] != ""
    if not labelled.any():
        return pd.Series("", index=table.index, dtype=object, name="split"), "No labelled cells."
    options = dict(val_fraction=VAL_FRACTION, seed=seed)
    if _groups_per_class(table, labelled, ["well"]).min() >= MIN_WHOLE_WELLS:
        split = split_by_well(table, TRAINING_CLASS_COLUMN, group_column="well", **options)
        return split, f"Validation: {_held_out(split, table, ['well'], 'well')}, whole wells held out."
    sites = _site_columns(table)
    if len(sites) > 1 and _groups_per_class(table, labelled, sites).min() >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            split = split_by_well(table, TRAINING_CLASS_COLUMN, group_column=sites, **options)
        return split, (f"Validation: {_held_out(split, table, sites, 'site')}, held out within wells "
                       "(a class has a single well).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        split = split_by_well(table, TRAINING_CLASS_COLUMN, group_column=CROP_INDEX, **options)
    share = int(round(100 * VAL_FRACTION))
    return split, (f"Validation: {share} % of each class's cells, chosen cell by cell (a class has a single "
                   "site, so cells of one site are on both sides and the scores are optimistic).")


def class_counts(table: pd.DataFrame, split: pd.Series) -> dict:
    """Cells per class on each side: ``{"train": {"a": 10, ...}, "val": {...}}``."""
    counts = {}
    for side in ("train", "val"):
        rows = split == side
        if rows.any():
            counts[side] = {str(k): int(v) for k, v in
                            table.loc[rows, TRAINING_CLASS_COLUMN].value_counts().sort_index().items()}
    return counts
