"""Classical baselines on the per-cell features: random forest, LDA, linear SVM.

The baselines read the ``feat_*`` columns of the cell table (written by
``napari-hcs features``) and use the very split a CNN is trained on, so their
scores compare directly. The features are normalised per plate first (no
label used); everything else that is learned from data (which features to
keep, the scaling, the SVM's ``C``) is learned on the fitted cells only (train,
and val when test cells are evaluated), never on the evaluated ones.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..cancel import CancelCheck, Cancelled, is_cancelled
from ..project import feature_columns
from ..vocabulary import BASELINE_METHODS
from .feature_prep import NO_FEATURES, normalise_features, prepare_features
from .groups import group_labels
from .labels import LabelledCells, check_labels
from .metrics import classification_metrics
from .model_selection import choose_svm_c, linear_svm
from .plates import Normalisation

__all__ = ["METHODS", "run_baselines"]

#: Baseline methods run by :func:`run_baselines`.
METHODS = BASELINE_METHODS


@dataclass(frozen=True)
class _TrainSet:
    """Prepared train cells: scaled features, classes, groups; and the run's settings."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    seed: int
    n_jobs: int | None
    cancel: CancelCheck


def _random_forest(train: _TrainSet):
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=500, n_jobs=train.n_jobs, random_state=train.seed)
    return model, {"n_estimators": 500}


def _lda(train: _TrainSet):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    return model, {"solver": "lsqr", "shrinkage": "ledoit-wolf"}


def _svm(train: _TrainSet):
    c, cv_info = choose_svm_c(train.x, train.y, train.groups, seed=train.seed, cancel=train.cancel)
    return linear_svm(c, train.seed), {"C": c, "log2_C": float(np.log2(c)), **cv_info}


#: Each method's model (and the parameters reported), by name of :data:`METHODS`.
_BUILDERS: dict[str, Callable[[_TrainSet], tuple[object, dict]]] = {
    "random_forest": _random_forest,
    "lda": _lda,
    "svm": _svm,
}


def _fit_predict(method: str, train: _TrainSet, x_eval: np.ndarray) -> tuple[np.ndarray, dict]:
    """Fit one baseline; return its predictions of the evaluated cells, and its params."""
    from sklearn.exceptions import ConvergenceWarning

    model, params = _BUILDERS[method](train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train.x, train.y)
    return model.predict(x_eval), params


def _check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown baseline method(s) {', '.join(map(repr, unknown))}; methods are: "
            f"{', '.join(METHODS)}."
        )


def _feature_counts(info: dict) -> dict:
    return {
        "n_features": len(info["features"]),
        "n_dropped_constant": len(info["dropped_constant"]),
        "n_dropped_correlated": len(info["dropped_correlated"]),
        "n_dropped_missing": len(info["dropped_missing"]),
        "n_imputed_values": int(sum(info["imputed"].values())),
    }


def _fit_rows(cells: LabelledCells) -> tuple[pd.Series, list[str], str]:
    """The rows each method is fitted on, their splits, and the split it is evaluated on.

    With test cells: fitted on train and val (the classical methods choose
    their settings by cross-validation inside), evaluated on test. Without:
    fitted on train, evaluated on val.
    """
    if cells.rows("test").any():
        fitted_on = ["train", "val"] if cells.rows("val").any() else ["train"]
        return cells.rows("train") | cells.rows("val"), fitted_on, "test"
    if not cells.rows("val").any():
        raise ValueError("The split has neither test nor val cells to evaluate on.")
    return cells.rows("train"), ["train"], "val"


def _train_set(table, cells, fit_rows, *, group_column, corr_threshold, seed, n_jobs, cancel):
    """Prepare the fitted cells' features; return the train set, the prepared evaluation frame, info."""
    eval_rows = cells.rows("test") if cells.rows("test").any() else cells.rows("val")
    x_fit, (x_eval,), info = prepare_features(table[fit_rows], [table[eval_rows]], corr_threshold=corr_threshold)
    train = _TrainSet(
        x=x_fit.to_numpy(),
        y=cells.labels[fit_rows].to_numpy(),
        groups=group_labels(table[fit_rows], group_column).to_numpy(),
        seed=seed,
        n_jobs=n_jobs,
        cancel=cancel,
    )
    return train, x_eval.to_numpy(), info


def run_baselines(
    table: pd.DataFrame,
    label_column: str,
    split: pd.Series,
    *,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    n_jobs: int | None = None,
    group_column: str | Sequence[str] = "well",
    corr_threshold: float | None = 0.95,
    normalisation: str | Normalisation = "plate",
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelCheck = None,
) -> dict:
    """Train and evaluate the classical baselines on a split of the cell table.

    The ``feat_*`` columns are first normalised per plate
    (:func:`~napari_hcs.learn.feature_prep.normalise_features`: each plate by
    all its cells, or by its control cells; no label is used), unless
    ``normalisation="global"``. When the split has test cells, each method
    is fitted on the ``train`` and ``val`` cells (val only picks the CNN's
    epochs; these methods choose their settings by cross-validation inside)
    and evaluated on the ``test`` cells; without test cells it is fitted on
    ``train`` and evaluated on ``val``. The features are prepared by
    :func:`~napari_hcs.learn.feature_prep.prepare_features` on the fitted
    cells alone.

    Methods: ``random_forest`` (500 trees), ``lda`` (linear discriminant
    analysis with Ledoit-Wolf shrinkage), ``svm`` (linear SVM, one-vs-rest,
    ``C`` chosen by :func:`~napari_hcs.learn.model_selection.choose_svm_c` on
    the fitted cells, folds holding out whole wells, or cells when the table
    has no wells).

    Parameters
    ----------
    table : DataFrame
        Cell table with ``feat_*`` columns, the label column and ``group_column``.
    label_column : str
        Column with the class of each cell; unlabelled rows are ignored.
    split : Series
        ``"train"``/``"val"``/``"test"``/``""`` per row, index aligned with
        ``table`` (see :func:`~napari_hcs.learn.splits.build_split`); checked by
        :func:`~napari_hcs.learn.labels.check_labels`.
    methods : sequence of str
        Any of :data:`METHODS`.
    seed : int
        Seed of the forest and of the SVM's folds.
    n_jobs : int, optional
        Parallel jobs of the random forest (None: one).
    group_column : str or sequence of str
        Group held out by the SVM's cross-validation (see
        :func:`~napari_hcs.learn.groups.group_labels`).
    corr_threshold : float or None
        Correlation filter of the feature preparation.
    normalisation : {"plate", "global"} or Normalisation
        One of :data:`~napari_hcs.vocabulary.NORMALISATIONS` (per plate by all
        its cells, or one scaling learned on the fitted cells), or a
        :class:`~napari_hcs.learn.plates.Normalisation` that also names each
        plate's control cells (``Normalisation(controls="compound=DMSO")``) or
        groups within plates (``Normalisation(within="timepoint")``).
    progress : callable, optional
        ``progress(n_done, n_total)`` after each method.
    cancel : callable or Event, optional
        Says stop; checked between methods and between the SVM's fits. The
        methods finished before it are returned.

    Returns
    -------
    dict
        ``{method: {"test": metrics, "val": metrics or None, "evaluated_on":
        "test" or "val", "params": {...}, "seconds": float}}``; metrics from
        :func:`~napari_hcs.learn.metrics.classification_metrics`, ``"test"``
        holding those of the evaluated cells, ``"val"`` the same when val was
        evaluated (None when it was fitted on). ``params`` also holds
        ``n_train`` (cells fitted on), ``fitted_on`` (``["train", "val"]`` or
        ``["train"]``), ``normalisation``, ``controls`` (text or None),
        ``normalise_within`` (:meth:`~napari_hcs.learn.plates.Normalisation.as_record`)
        and the feature counts. After a cancel, only the methods that finished.

    Raises
    ------
    LabelError
        If the label column is missing (the message lists the columns), a
        single class, a class without training cells, or a bad split.
    KeyError
        If the group column or the control column is missing (the message
        lists the columns).
    ValueError
        If there are no feature columns, no cells to evaluate, an unknown
        method or normalisation, or controls that a plate lacks.

    Examples
    --------
    >>> from napari_hcs.learn import build_split
    >>> rng = np.random.default_rng(0)
    >>> table = pd.DataFrame({"well": np.repeat([f"B{w:02d}" for w in range(2, 8)], 10),
    ...                       "class": np.repeat(["ctrl", "drug"], 30)})
    >>> table["feat_size"] = rng.normal(size=60) + (table["class"] == "drug") * 3
    >>> table["feat_dna"] = rng.normal(size=60)
    >>> split = build_split(table, label_column="class")
    >>> results = run_baselines(table, "class", split, methods=["lda"])
    >>> results["lda"]["evaluated_on"], results["lda"]["test"]["accuracy"]
    ('val', 0.95)
    >>> results["lda"]["params"]["fitted_on"], results["lda"]["params"]["normalisation"]
    (['train'], 'plate')
    """
    _check_methods(methods)
    normalisation = Normalisation.of(normalisation)
    cells = check_labels(table, label_column, split)
    if not feature_columns(table):
        raise ValueError(NO_FEATURES)
    fit_rows, fitted_on, evaluated_on = _fit_rows(cells)
    table = normalise_features(table, normalisation=normalisation.method, controls=normalisation.controls,
                               within=normalisation.within)
    train, x_eval, info = _train_set(
        table, cells, fit_rows,
        group_column=group_column, corr_threshold=corr_threshold, seed=seed, n_jobs=n_jobs, cancel=cancel,
    )
    params = {
        "n_train": int(fit_rows.sum()),
        "fitted_on": fitted_on,
        **normalisation.as_record(),
        **_feature_counts(info),
    }
    y_eval = cells.labels[cells.rows(evaluated_on)].to_numpy()
    results = {}
    for done, method in enumerate(methods):
        if is_cancelled(cancel):
            break
        start = time.perf_counter()
        try:
            predicted, method_params = _fit_predict(method, train, x_eval)
        except Cancelled:
            break
        metrics = classification_metrics(y_eval, predicted, cells.classes)
        results[method] = {
            "test": metrics,
            "val": metrics if evaluated_on == "val" else None,
            "evaluated_on": evaluated_on,
            "params": {**method_params, **params},
            "seconds": round(time.perf_counter() - start, 3),
        }
        if progress is not None:
            progress(done + 1, len(methods))
    return results
