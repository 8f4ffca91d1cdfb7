"""Well profiles: cells aggregated per well, normalised against control wells, features selected.

The steps of the profiling field's recipe, each a pycytominer call:

1. :func:`aggregate_wells`: the median (or mean) of each well's cells
   (``pycytominer.aggregate``), with the number of cells (``n_cells``) and the
   well annotations (compound, concentration, class, ...).
2. :func:`normalise_profiles`: every feature is scaled by the control wells
   (``pycytominer.normalize`` with ``samples`` set to the controls), of each
   plate (``scope="plate"``) or of the whole screen (``scope="global"``):
   ``standardize`` (z-score), ``robustize`` (median and inter-quartile range),
   ``mad_robustize`` (median and median absolute deviation) or ``spherize``.
   Without controls, by all the wells.
3. :func:`select_features`: ``pycytominer.feature_select`` (low variance,
   correlated, mostly missing and outlier features are dropped).
4. :func:`spherize_profiles`: optionally, ZCA whitening fitted on all control
   wells together (``pycytominer.normalize(method="spherize")``), which removes
   the correlations the controls share (the nuisance directions).

The defaults are what measured best on BBBC021 (``benchmarks/profiles_nsc.py``,
docs/profiles.md): a global z-score, the four selections, and sphering on the
controls (NSC 0.95, against 0.88 for the z-score alone). Per-plate scaling by
a handful of control wells (6 per BBBC021 plate) is noisier than the plate
effect it removes there; it remains an option for screens with more controls.

:func:`profile_wells` runs 2-4 on a table of wells; :func:`build_well_profiles`
runs all of them on a project's cells (or a stored embedding) and stores the
result (:mod:`~napari_hcs.profiles.profile_store`).

Examples
--------
>>> cells = pd.DataFrame({"plate": ["P1"] * 6, "well": ["B02", "B02", "B03", "B03", "B04", "B04"],
...                       "compound": ["DMSO"] * 4 + ["taxol"] * 2,
...                       "feat_a": [1.0, 2.0, 3.0, 4.0, 9.0, 9.0]})
>>> wells = aggregate_wells(cells, ["feat_a"])
>>> wells[["well", "compound", "n_cells", "feat_a"]].values.tolist()
[['B02', 'DMSO', 2, 1.5], ['B03', 'DMSO', 2, 3.5], ['B04', 'taxol', 2, 9.0]]
>>> options = ProfileOptions(normalisation="standardize", scope="plate", controls="compound=DMSO",
...                          feature_selection=(), spherize=False)
>>> profile_wells(wells, ["feat_a"], options).table["feat_a"].round(2).tolist()
[-1.0, 1.0, 6.5]
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..cancel import CancelCheck, check_cancel
from ..learn.plates import PLATE_COLUMN, controls_text, parse_controls, plate_keys
from ..names import shorten, suggest
from ..vocabulary import (AGGREGATIONS, CROP_INDEX, EMBEDDING_PREFIX, FEATURE_PREFIX, FEATURE_SELECTIONS,
                          NORMALISATIONS, PROFILE_NORMALISATIONS)
from .profile_store import WellProfiles, write_well_profiles

__all__ = [
    "CELL_COUNT_COLUMN",
    "ProfileOptions",
    "aggregate_wells",
    "build_well_profiles",
    "control_wells",
    "normalise_profiles",
    "profile_wells",
    "select_features",
    "spherize_profiles",
]

#: Column of the well profiles holding the number of cells aggregated.
CELL_COUNT_COLUMN = "n_cells"
#: Columns of a cell table that describe one cell, never its well (not carried to the profile).
_CELL_COLUMNS = {"site", "field", "timepoint", "label", "centroid_y", "centroid_x", "bbox_y0", "bbox_x0",
                 "bbox_y1", "bbox_x1", "nucleus_area", "cell_area", CROP_INDEX, "cell_class", "cluster",
                 "split"}
_CELL_PREFIXES = ("pred_", "prob_", EMBEDDING_PREFIX, FEATURE_PREFIX)
#: The recipe of the profiling field (pycytominer's operations, in its order).
DEFAULT_FEATURE_SELECTION = ("variance_threshold", "correlation_threshold", "drop_na_columns", "drop_outliers")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ProfileOptions:
    """How well profiles are made.

    Attributes
    ----------
    aggregation : str
        How a well's cells are summarised (:data:`~napari_hcs.vocabulary.AGGREGATIONS`).
    normalisation : str
        Normalisation against the controls (:data:`~napari_hcs.vocabulary.PROFILE_NORMALISATIONS`).
    scope : str
        ``"global"``: one normalisation fitted on the controls of all plates;
        ``"plate"``: each plate by its own controls (:data:`~napari_hcs.vocabulary.NORMALISATIONS`).
    controls : str or None
        Control wells as ``"COLUMN=VALUE[,VALUE]"`` (``"compound=DMSO"``); None:
        every well is a reference.
    feature_selection : tuple of str
        pycytominer ``feature_select`` operations
        (:data:`~napari_hcs.vocabulary.FEATURE_SELECTIONS`), applied in order.
    spherize : bool
        Whiten the profiles with ZCA fitted on all control wells (after selection).
    correlation_threshold : float
        Of the ``correlation_threshold`` operation.
    spherize_regularisation : float
        Added to the square root of each eigenvalue of the controls' correlation
        matrix before inverting it: 0 whitens fully (unstable with fewer control
        wells than features), large values leave the profiles as they are.

    Examples
    --------
    >>> ProfileOptions(normalisation="zscore")
    Traceback (most recent call last):
    ...
    ValueError: Profile normalisation 'zscore': choose among standardize, robustize, mad_robustize, spherize, none.
    """

    aggregation: str = "median"
    normalisation: str = "standardize"
    scope: str = "global"
    controls: str | None = None
    feature_selection: tuple[str, ...] = DEFAULT_FEATURE_SELECTION
    spherize: bool = True
    correlation_threshold: float = 0.9
    spherize_regularisation: float = 0.25

    def __post_init__(self):
        _check_choice("Aggregation", self.aggregation, AGGREGATIONS)
        _check_choice("Profile normalisation", self.normalisation, PROFILE_NORMALISATIONS)
        _check_choice("Normalisation scope", self.scope, NORMALISATIONS)
        object.__setattr__(self, "feature_selection", tuple(self.feature_selection))
        for operation in self.feature_selection:
            _check_choice("Feature selection", operation, FEATURE_SELECTIONS)
        parse_controls(self.controls)
        if not 0 < self.correlation_threshold <= 1:
            raise ValueError(f"Correlation threshold {self.correlation_threshold}: expected a number in (0, 1].")
        if not self.spherize_regularisation >= 0:
            raise ValueError(f"Sphering regularisation {self.spherize_regularisation}: expected a number >= 0.")

    def to_dict(self) -> dict:
        """The options as plain values (what a profile's provenance records)."""
        values = asdict(self)
        values["feature_selection"] = list(self.feature_selection)
        return values


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{what} {value!r}: choose among {', '.join(choices)}.")


def _require_features(table: pd.DataFrame, features: Sequence[str], what: str) -> None:
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise KeyError(f"The {what} lack{'s' if len(missing) == 1 else ''} the feature column(s) "
                       f"{shorten(missing, quote=True)}; columns are: {suggest(missing[0], table.columns)}.")
    if not len(features):
        raise ValueError(f"No feature columns given to profile the {what}.")


def _well_columns(table: pd.DataFrame, keys: list[pd.Series], features: Sequence[str]) -> list[str]:
    """Columns with one value in every well (the well's annotations), cell-level columns left out."""
    chosen = set(features) | {key.name for key in keys}
    candidates = [c for c in table.columns if c not in chosen and c not in _CELL_COLUMNS
                  and not str(c).startswith(_CELL_PREFIXES)]
    if not candidates:
        return []
    distinct = table[candidates].groupby(keys, dropna=False).nunique(dropna=False)
    return [c for c in candidates if (distinct[c] <= 1).all()]


def aggregate_wells(table: pd.DataFrame, features: Sequence[str], *, aggregation: str = "median",
                    strata: Sequence[str] = ("plate", "well")) -> pd.DataFrame:
    """Summarise the cells of each well: one row per well (``pycytominer.aggregate``).

    Parameters
    ----------
    table : DataFrame
        One row per cell, with the ``strata`` columns and the features.
    features : sequence of str
        Numeric columns to aggregate.
    aggregation : {"median", "mean"}
        Median (the default, robust to the odd mis-segmented cell) or mean.
    strata : sequence of str
        Columns that name a well; a missing ``plate`` column means one plate.

    Returns
    -------
    DataFrame
        The strata, the well annotations (columns with one value per well),
        :data:`CELL_COUNT_COLUMN`, then the aggregated features.

    Raises
    ------
    KeyError
        If a feature or stratum column is missing.
    ValueError
        If the table has no cells or the aggregation is unknown.

    Examples
    --------
    >>> cells = pd.DataFrame({"well": ["B02", "B02", "B03"], "feat_a": [1.0, 5.0, 2.0]})
    >>> aggregate_wells(cells, ["feat_a"], aggregation="mean").values.tolist()
    [['(one plate)', 'B02', 2, 3.0], ['(one plate)', 'B03', 1, 2.0]]
    """
    from pycytominer import aggregate

    _check_choice("Aggregation", aggregation, AGGREGATIONS)
    features = list(features)
    _require_features(table, features, "cells")
    if table.empty:
        raise ValueError("There are no cells to aggregate into well profiles.")
    strata = list(strata)
    missing = [s for s in strata if s not in table.columns and s != PLATE_COLUMN]
    if missing:
        raise KeyError(f"The cell table has no {missing[0]!r} column to group its cells into wells.")
    keys = [plate_keys(table) if s == PLATE_COLUMN else table[s].rename(s) for s in strata]
    population = pd.concat(keys + [table[features]], axis=1).assign(_cells=1)
    wells = aggregate(population, strata=strata, features=features, operation=aggregation,
                      compute_object_count=True, object_feature="_cells")
    wells = wells.rename(columns={"Metadata_Object_Count": CELL_COUNT_COLUMN})
    del population
    annotations = _well_columns(table, keys, features)
    if annotations:
        first = table[annotations].groupby(keys, dropna=False).first().reset_index()
        wells = wells.merge(first, on=strata, how="left")
    order = strata + annotations + [CELL_COUNT_COLUMN] + features
    return wells[order].sort_values(strata, kind="stable").reset_index(drop=True)


def control_wells(wells: pd.DataFrame, controls, *, per_plate: bool = True) -> pd.Series | None:
    """Which wells are controls; None without controls.

    Parameters
    ----------
    wells : DataFrame
        One row per well, with the control column (and ``plate``).
    controls : str, (str, list of str) or None
        ``"compound=DMSO"`` or ``("compound", ["DMSO"])``.
    per_plate : bool
        Require control wells on every plate (they normalise it).

    Raises
    ------
    KeyError
        If the control column is not there (the message lists the columns).
    ValueError
        If a control value matches no well (the message lists the values there
        are), or a plate has no control well (the message names it).

    Examples
    --------
    >>> wells = pd.DataFrame({"plate": ["P1", "P1"], "compound": ["DMSO", "taxol"]})
    >>> control_wells(wells, "compound=DMSO").tolist()
    [True, False]
    >>> control_wells(wells, "compound=dmso")
    Traceback (most recent call last):
    ...
    ValueError: Control value 'dmso' matches no well in column 'compound'; the values there are: DMSO, taxol.
    """
    parsed = parse_controls(controls) if controls is None or isinstance(controls, str) else \
        (str(controls[0]), [str(v) for v in controls[1]])
    if parsed is None:
        return None
    column, values = parsed
    if column not in wells.columns:
        raise KeyError(f"Control column {column!r} is not a column of the wells; columns are: "
                       f"{suggest(column, wells.columns)}.")
    text = wells[column].astype(str).where(wells[column].notna())
    present = sorted(text.dropna().unique())
    unknown = [v for v in values if v not in present]
    if unknown:
        raise ValueError(f"Control value{'s' if len(unknown) > 1 else ''} {shorten(unknown, quote=True)} "
                         f"match{'' if len(unknown) > 1 else 'es'} no well in column {column!r}; "
                         f"the values there are: {shorten(present)}.")
    mask = text.isin(values).rename("control")
    counts = mask.groupby(plate_keys(wells)).sum()
    lacking = [str(p) for p in counts.index[counts == 0]]
    if lacking and per_plate:
        raise ValueError(f"Plate{'s' if len(lacking) > 1 else ''} {shorten(lacking)} "
                         f"ha{'ve' if len(lacking) > 1 else 's'} no control wells ({column}={','.join(values)}); "
                         "every plate needs some to be normalised by its own controls: normalise globally, "
                         "or leave out the controls.")
    return mask


def _reference_query(frame: pd.DataFrame, mask: pd.Series | None) -> tuple[pd.DataFrame, str]:
    """``frame`` with a marker column and the pycytominer ``samples`` query of its reference wells."""
    if mask is None:
        return frame, "all"
    return frame.assign(_control=mask.loc[frame.index].to_numpy()), "_control == True"


def _numbers(wells: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The features as one float block (a frame of hundreds of columns from merges is fragmented)."""
    return pd.DataFrame(wells[features].to_numpy(dtype=float), index=wells.index, columns=features)


def _flat_features(reference: pd.DataFrame, groups: np.ndarray) -> list[str]:
    """Features with no spread among the reference wells of some group (nothing can scale them)."""
    grouped = reference.groupby(groups)
    flat = ((grouped.max() - grouped.min()).fillna(0) <= 0).any(axis=0)
    return [f for f in reference.columns if flat[f]]


def normalise_profiles(wells: pd.DataFrame, features: Sequence[str], *, method: str = "standardize",
                       scope: str = "global", controls=None, progress: Progress | None = None,
                       cancel: CancelCheck = None) -> tuple[pd.DataFrame, list[str]]:
    """Normalise every feature by the control wells, of each plate or of all plates.

    Parameters
    ----------
    wells : DataFrame
        One row per well (see :func:`aggregate_wells`).
    features : sequence of str
        The profile's feature columns.
    method : str
        pycytominer's method (:data:`~napari_hcs.vocabulary.PROFILE_NORMALISATIONS`); ``"none"``
        leaves the values as they are.
    scope : {"global", "plate"}
        One normalisation fitted on the reference wells of all plates, or one per plate.
    controls : str, (str, list of str) or None
        Control wells (see :func:`control_wells`); None: all wells are the reference.
    progress : callable, optional
        ``progress(plates_done, plates)``.
    cancel : callable or Event, optional
        Checked between plates.

    Returns
    -------
    table : DataFrame
        ``wells`` with the normalised features.
    features : list of str
        The features kept: those with no spread among some plate's reference
        wells (among all of them for ``global``) are dropped, since nothing scales them.

    Raises
    ------
    ValueError
        If no feature varies among the reference wells, or as :func:`control_wells`.

    Examples
    --------
    >>> wells = pd.DataFrame({"plate": ["P1", "P1", "P1"], "compound": ["DMSO", "DMSO", "taxol"],
    ...                       "feat_a": [1.0, 3.0, 10.0], "feat_b": [1.0, 1.0, 2.0]})
    >>> table, kept = normalise_profiles(wells, ["feat_a", "feat_b"], method="standardize",
    ...                                  controls="compound=DMSO")
    >>> table["feat_a"].tolist(), kept
    ([-1.0, 1.0, 8.0], ['feat_a'])
    """
    from pycytominer import normalize

    _check_choice("Profile normalisation", method, PROFILE_NORMALISATIONS)
    _check_choice("Normalisation scope", scope, NORMALISATIONS)
    features = list(features)
    _require_features(wells, features, "wells")
    mask = control_wells(wells, controls, per_plate=scope == "plate")
    if method == "none":
        return wells.copy(), features
    plates = plate_keys(wells) if scope == "plate" else pd.Series("all", index=wells.index)
    reference = wells[features] if mask is None else wells.loc[mask.to_numpy(), features]
    flat = set(_flat_features(reference, plates.loc[reference.index].to_numpy()))
    kept = [f for f in features if f not in flat]
    if not kept:
        fewest = int(plates.loc[reference.index].value_counts().min()) if len(reference) else 0
        described = f"control wells ({controls_text(controls)})" if mask is not None else "wells"
        raise ValueError(f"No feature varies among the {described}{' of some plate' if scope == 'plate' else ''}: "
                         f"there {'is' if fewest == 1 else 'are'} {fewest}; normalising against them needs at "
                         "least 2 different ones (give more control values, or --profile-normalisation none).")
    values = _numbers(wells, kept)
    groups = list(plates.groupby(plates, sort=True).groups.items())
    parts = []
    for done, (plate, index) in enumerate(groups):
        check_cancel(cancel, f"Normalisation was cancelled at plate {plate}.")
        frame, query = _reference_query(values.loc[index], mask)
        normalised = normalize(frame, features=kept, meta_features=[], samples=query, method=method)
        parts.append(pd.DataFrame(normalised[kept].to_numpy(dtype=float), index=index, columns=kept))
        if progress is not None:
            progress(done + 1, len(groups))
    metadata = wells.drop(columns=features)
    return pd.concat([metadata, pd.concat(parts).loc[wells.index]], axis=1), kept


def select_features(wells: pd.DataFrame, features: Sequence[str], operations: Sequence[str], *,
                    correlation_threshold: float = 0.9) -> list[str]:
    """The features ``pycytominer.feature_select`` keeps after ``operations``, in order.

    Examples
    --------
    >>> wells = pd.DataFrame({"feat_a": [1.0, 2.0, 3.0], "feat_b": [2.0, 4.0, 6.1], "feat_c": [1.0, 1.0, 1.0]})
    >>> select_features(wells, ["feat_a", "feat_b", "feat_c"], ["variance_threshold", "correlation_threshold"])
    ['feat_a']
    """
    from pycytominer import feature_select

    features = list(features)
    for operation in operations:
        _check_choice("Feature selection", operation, FEATURE_SELECTIONS)
    if not operations:
        return features
    selected = feature_select(wells[features], features=features, operation=list(operations),
                              corr_threshold=correlation_threshold)
    kept = [f for f in features if f in selected.columns]
    if not kept:
        raise ValueError(f"Feature selection ({', '.join(operations)}) left no feature of {len(features)}.")
    return kept


def spherize_profiles(wells: pd.DataFrame, features: Sequence[str], *, controls=None,
                      regularisation: float = 0.25) -> pd.DataFrame:
    """Whiten the profiles with ZCA (correlation form) fitted on all control wells together.

    ``regularisation`` is added to the square root of each eigenvalue of the
    reference wells' correlation matrix (pycytominer's ``spherize_epsilon`` is
    that times the square root of their number less one), so that the many
    directions in which a few control wells barely vary are not blown up.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> wells = pd.DataFrame(rng.normal(size=(40, 3)), columns=["feat_a", "feat_b", "feat_c"])
    >>> wells["feat_b"] += wells["feat_a"]
    >>> out = spherize_profiles(wells, ["feat_a", "feat_b", "feat_c"], regularisation=0.0)
    >>> np.allclose(np.corrcoef(out[["feat_a", "feat_b", "feat_c"]].T.to_numpy()), np.eye(3), atol=1e-6)
    True
    """
    from pycytominer import normalize

    features = list(features)
    mask = control_wells(wells, controls, per_plate=False)
    frame, query = _reference_query(_numbers(wells, features), mask)
    reference = frame if query == "all" else frame.query(query)
    if len(reference) < 2 or (reference[features].std().fillna(0) <= 0).any():
        raise ValueError(f"Sphering needs at least 2 reference wells (there are {len(reference)}) and every "
                         "feature varying among them; select features first (variance_threshold), or do "
                         "not spherize.")
    epsilon = max(float(regularisation) * np.sqrt(len(reference) - 1), 1e-6)
    out = normalize(frame, features=features, meta_features=[], samples=query, method="spherize",
                    spherize_method="ZCA-cor", spherize_epsilon=epsilon)
    return pd.concat([wells.drop(columns=features), out[features].astype(float)], axis=1)


def profile_wells(wells: pd.DataFrame, features: Sequence[str], options: ProfileOptions | None = None, *,
                  progress: Progress | None = None, cancel: CancelCheck = None) -> WellProfiles:
    """Normalise, select and (optionally) sphere well profiles: steps 2-4 of the recipe.

    Returns
    -------
    WellProfiles
        The table (metadata columns, then the kept features), the kept features,
        and provenance (``normalisation``, ``scope``, ``controls``, ``feature_selection``,
        ``spherize``, ``features_in``, ``dropped_constant``, ``dropped_by_selection``).
    """
    options = options or ProfileOptions()
    features = list(features)
    table, kept = normalise_profiles(wells, features, method=options.normalisation, scope=options.scope,
                                     controls=options.controls, progress=progress, cancel=cancel)
    normalised = len(kept)
    kept = select_features(table, kept, options.feature_selection,
                           correlation_threshold=options.correlation_threshold)
    if options.spherize:
        check_cancel(cancel, "Sphering was cancelled.")
        table = spherize_profiles(table, kept, controls=options.controls,
                                  regularisation=options.spherize_regularisation)
    metadata = [c for c in wells.columns if c not in set(features)]
    provenance = {"aggregation": options.aggregation, "normalisation": options.normalisation,
                  "scope": options.scope, "controls": options.controls,
                  "feature_selection": list(options.feature_selection), "spherize": options.spherize,
                  "options": options.to_dict(), "features_in": len(features),
                  "dropped_constant": len(features) - normalised, "dropped_by_selection": normalised - len(kept)}
    return WellProfiles(table=table[metadata + kept].reset_index(drop=True), features=kept,
                        provenance=provenance)


def _cells_of(project_dir: Path, source: str) -> tuple[pd.DataFrame, list[str], dict]:
    """The cells to profile with their value columns: the classical features or a stored embedding."""
    from ..project import Project
    from .embedding_store import EmbeddingStore

    project = Project(project_dir)
    if source == "features":
        table = project.cell_table()
        features = [c for c in table.columns if c.startswith(FEATURE_PREFIX)]
        if table.empty:
            raise ValueError(f"Project {project_dir} has no cells; run 'napari-hcs segment' on its plate first.")
        if not features:
            raise ValueError(f"Project {project_dir} has no classical features (feat_* columns); run "
                             f"'napari-hcs features --project {project_dir}' first, or profile an embedding.")
        return table, features, {}
    embedding = EmbeddingStore(project_dir).read(source)
    cells = project.cell_store().cells()
    if cells.empty:
        raise ValueError(f"Project {project_dir} has no cells; run 'napari-hcs segment' on its plate first.")
    annotations = project.well_annotations()
    if annotations is not None and len(annotations) and "well" in cells:
        extra = [c for c in annotations.columns if c not in cells.columns]
        cells = cells.join(annotations[extra], on="well")
    columns = [f"{EMBEDDING_PREFIX}{i:03d}" for i in range(embedding.dimensions)]
    values = pd.DataFrame(np.asarray(embedding.values[:], dtype=np.float64), columns=columns)
    values[CROP_INDEX] = embedding.crop_index
    table = cells.drop(columns=[c for c in cells.columns if c.startswith(EMBEDDING_PREFIX)])
    table = table.merge(values, on=CROP_INDEX, how="inner")
    if table.empty:
        raise ValueError(f"Embedding {source!r} has no row for any cell of project {project_dir}.")
    return table, columns, {"embedding": {k: embedding.provenance.get(k) for k in ("source", "model", "dimensions")}}


def build_well_profiles(project_dir: str | os.PathLike, *, source: str = "features",
                        options: ProfileOptions | None = None, progress: Progress | None = None,
                        cancel: CancelCheck = None) -> WellProfiles:
    """Make and store the well profiles of a project (``profiles/wells.parquet``).

    Parameters
    ----------
    project_dir : path
        Project folder with cells (and features, or the embedding ``source``).
    source : str
        ``"features"`` (the classical ``feat_*`` columns) or the name of a stored
        embedding (:class:`~napari_hcs.profiles.embedding_store.EmbeddingStore`).
    options : ProfileOptions, optional
        Aggregation, normalisation, controls, feature selection, sphering.
    progress : callable, optional
        ``progress(done, total)`` over the steps (reading, aggregating, each plate, storing).
    cancel : callable or Event, optional
        Checked between steps; nothing is stored when cancelled.

    Returns
    -------
    WellProfiles
        As stored; provenance adds ``source``, ``cells``, ``excluded_cells`` and ``excluded_sites``
        (sites quality control left out).

    Raises
    ------
    FileNotFoundError
        If the project or the embedding is missing.
    ValueError, KeyError
        If there are no cells or features, or the controls match no well.
    """
    from ..images.site_exclusions import drop_excluded_cells

    options = options or ProfileOptions()
    folder = Path(project_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"Project folder {folder} does not exist.")
    report = progress or (lambda done, total: None)
    table, features, extra = _cells_of(folder, source)
    table, dropped = drop_excluded_cells(table, folder)
    if table.empty:
        raise ValueError(f"Every cell of project {folder} lies in a site quality control excluded "
                         f"({len(dropped)} sites); keep some sites to profile the wells.")
    check_cancel(cancel, "Profiling was cancelled before aggregating.")
    wells = aggregate_wells(table, features, aggregation=options.aggregation)
    plates = int(plate_keys(wells).nunique())
    total = plates + 2
    report(1, total)
    profiles = profile_wells(wells, features, options, cancel=cancel,
                             progress=lambda done, _: report(1 + done, total))
    profiles.provenance.update({"source": source, "cells": int(len(table)), "wells": int(len(wells)),
                                "plates": plates, "excluded_cells": int(sum(dropped.values())),
                                "excluded_sites": len(dropped), **extra})
    check_cancel(cancel, "Profiling was cancelled before storing.")
    write_well_profiles(folder, profiles.table, features=profiles.features, provenance=profiles.provenance)
    report(total, total)
    return profiles
