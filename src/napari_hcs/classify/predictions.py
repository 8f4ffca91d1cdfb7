"""Predicting cells with a saved model, and keeping the predictions in the project.

:func:`predict_with` classifies the cells of a site, of some wells or of the
whole plate with a model of the project's catalog (a forest from the cells'
features, a CNN from their crops) and returns the ``predictions`` columns:
``crop_index``, ``pred_class``, ``pred_confidence`` (top probability),
``pred_margin`` (top minus second probability), ``pred_model`` and
``prob_<class>``. :func:`save_predictions` merges them into the project's
``predictions`` column group, so that the cell table holds the latest
prediction of each cell by one model.

Examples
--------
>>> table = pd.DataFrame({"crop_index": [0, 1, 2, 3], "well": ["B02", "B02", "B04", "B04"],
...                       "field": 0, "timepoint": [1, 2, 1, 2]})
>>> from napari_hcs.plate import Site
>>> scope_indices(table, site=Site("B04", 0, 2)).tolist(), scope_indices(table, wells=["B02"]).tolist()
([3], [0, 1])
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..cancel import check_cancel
from ..vocabulary import CROP_INDEX
from .classifiers import feature_matrix

__all__ = ["PREDICTIONS_GROUP", "predict_and_save", "predict_with", "read_predictions", "save_predictions",
           "scope_indices"]

#: The column group of the cell store holding the predictions.
PREDICTIONS_GROUP = "predictions"
#: Cells a forest classifies between two progress reports (and cancel checks).
FOREST_BATCH = 20000


def scope_indices(table: pd.DataFrame, *, site=None, wells: Sequence[str] | None = None) -> np.ndarray:
    """Crop indices of the cells of a site, of some wells, or of the whole table.

    Parameters
    ----------
    table : DataFrame
        Cell table (``crop_index``, ``well``, ``field``, ``timepoint``).
    site : Site, optional
        A :class:`~napari_hcs.plate.Site` (well, field, timepoint).
    wells : sequence of str, optional
        Well names; with ``site`` too, the cells of the site that lie in the wells.

    Returns
    -------
    ndarray of int64
        Sorted crop indices.
    """
    rows = pd.Series(True, index=table.index)
    if site is not None:
        rows &= (table["well"].astype(str) == str(site.well)) & (table["field"] == site.field) \
            & (table["timepoint"] == site.timepoint)
    if wells is not None:
        rows &= table["well"].astype(str).isin([str(w) for w in wells])
    return np.sort(table.loc[rows, CROP_INDEX].to_numpy(dtype=np.int64))


def _crop_indices(store, crop_indices) -> np.ndarray:
    if crop_indices is None:
        return store.cells()[CROP_INDEX].to_numpy(dtype=np.int64)
    return np.asarray(crop_indices, dtype=np.int64).reshape(-1)


def predict_with(project, name: str, *, crop_indices=None, catalog=None, device: str = "auto",
                 progress: Callable[[int, int], None] | None = None, cancel=None) -> pd.DataFrame:
    """Classify cells with a model of the project's catalog.

    Parameters
    ----------
    project : Project
        The project whose cells are classified (the model may come from another).
    name : str
        The model's name in ``project.models()``.
    crop_indices : array of int, optional
        The cells (see :func:`scope_indices`); every cell by default.
    catalog : ModelCatalog, optional
        Where the model is (another project's ``models()``); default ``project.models()``.
    device : str
        Where a CNN runs (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
    progress : callable, optional
        ``progress(done, total)`` after each batch of cells.
    cancel : callable or threading.Event, optional
        Checked before each batch; raises :class:`napari_hcs.cancel.Cancelled`.

    Returns
    -------
    DataFrame
        The ``predictions`` columns (see the module docstring), one row per cell,
        in the order of ``crop_indices``.

    Raises
    ------
    ModelMismatchError
        If the model's channels or crop size do not fit the project (naming both).
    ValueError
        If cells lack the features a forest needs (how many, and to measure them).
    """
    store = project.cell_store()
    catalog = project.models() if catalog is None else catalog
    catalog.check_fits(name, channels=store.channels, crop_size=store.crop_size, project=project.folder)
    record = catalog.record(name)
    indices = _crop_indices(store, crop_indices)
    if record.kind == "forest":
        return _predict_forest(store, catalog, name, indices, progress, cancel)
    from ..nn import load_checkpoint, predict_cells
    from ..nn.predict import normalisation_table

    model, meta = load_checkpoint(record.path, device="cpu")
    table = normalisation_table(project.folder, store.cells(), meta)
    result = predict_cells(model, meta, store.crops, indices=indices, device=device, channels=store.channels,
                           embeddings=False, table=table, progress=progress, cancel=cancel)
    return result.predictions_frame(name)


def _predict_forest(store, catalog, name: str, indices: np.ndarray, progress, cancel) -> pd.DataFrame:
    from ..nn.predict import PredictResult

    pipeline, record = catalog.load(name)
    table = store.table().set_index(CROP_INDEX)
    columns = list(record.feature_columns or [])
    lacking = [c for c in columns if c not in table.columns]
    if lacking:
        raise ValueError(f"Model {name!r} needs {len(lacking)} feature(s) that the cells do not have "
                         f"({', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}); measure features "
                         "with the same settings, or train a model on this project.")
    unknown = np.setdiff1d(indices, table.index.to_numpy())
    if len(unknown):
        raise ValueError(f"{len(unknown)} crop indices are not cells of the project (e.g. {int(unknown[0])}).")
    features = feature_matrix(table.loc[indices], columns)
    unmeasured = int(features.isna().all(axis=1).sum())
    if unmeasured:
        raise ValueError(f"{unmeasured} of the {len(indices)} cells have no features (their sites were not "
                         "measured); measure features first (Segment tab, 'measure features', or "
                         "'napari-hcs features --project DIR'), or predict with a CNN.")
    probabilities = np.empty((len(indices), len(record.classes)), dtype=np.float32)
    for start in range(0, len(indices), FOREST_BATCH):
        check_cancel(cancel, f"Prediction was cancelled after {start} of {len(indices)} cells.")
        stop = min(start + FOREST_BATCH, len(indices))
        probabilities[start:stop] = pipeline.predict_proba(features.iloc[start:stop])
        if progress is not None:
            progress(stop, len(indices))
    result = PredictResult(crop_index=indices, class_names=record.classes)
    result.set_probabilities(probabilities)
    return result.predictions_frame(name)


def read_predictions(project) -> pd.DataFrame | None:
    """The project's ``predictions`` column group, or None when there is none."""
    path = project.folder / "columns" / f"{PREDICTIONS_GROUP}.parquet"
    if not path.is_file():
        return None
    return pd.read_parquet(path)


def save_predictions(project, frame: pd.DataFrame) -> pd.DataFrame:
    """Merge predictions into the project's ``predictions`` column group; return the whole group.

    Rows of ``frame`` replace the saved rows of the same cells; saved rows of the
    same model for other cells are kept; rows of another model are dropped (the
    group holds one model's predictions).

    Raises
    ------
    ValueError
        If ``frame`` lacks ``crop_index`` or ``pred_model``, or holds several models.
    napari_hcs.project.ProjectLockedError
        If another run writes the project (its lock is held).
    """
    for column in (CROP_INDEX, "pred_model"):
        if column not in frame.columns:
            raise ValueError(f"Predictions to save need a {column!r} column; got {', '.join(frame.columns)}.")
    models = frame["pred_model"].astype(str).unique()
    if len(models) > 1:
        raise ValueError(f"Predictions of several models ({', '.join(models)}) cannot be saved together.")
    old = read_predictions(project)
    merged = frame
    if old is not None and len(models) and "pred_model" in old.columns:
        kept = old[(old["pred_model"].astype(str) == models[0]) & ~old[CROP_INDEX].isin(frame[CROP_INDEX])]
        if len(kept):
            merged = pd.concat([kept[[c for c in frame.columns if c in kept.columns]], frame], ignore_index=True)
    merged = merged.drop_duplicates(CROP_INDEX, keep="last").sort_values(CROP_INDEX).reset_index(drop=True)
    with project.lock(wait=False, command="napari-hcs: saving predictions"):
        project.cell_store().write_columns(PREDICTIONS_GROUP, merged)
    return merged


def predict_and_save(project, name: str, *, crop_indices=None, device: str = "auto",
                     progress: Callable[[int, int], None] | None = None, cancel=None):
    """Predict cells with a model of the project and save them (:func:`predict_with`, :func:`save_predictions`).

    Returns
    -------
    tuple of pandas.DataFrame
        The rows predicted now, and the project's whole ``predictions`` group after saving.
    """
    frame = predict_with(project, name, crop_indices=crop_indices, device=device, progress=progress, cancel=cancel)
    return frame, save_predictions(project, frame)
