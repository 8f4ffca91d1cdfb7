"""Classical baselines on the per-cell features: random forest, LDA, linear SVM.

The baselines read the ``feat_*`` columns of the cell table (written by
``napari-hcs features``) and use the very split a CNN is trained on, so their
scores compare directly. Everything that is learned from data (which features
to keep, the scaling, the SVM's ``C``) is learned on the train cells only.
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
from .feature_prep import NO_FEATURES, prepare_features
from .groups import group_labels
from .labels import LabelledCells, check_labels
from .metrics import classification_metrics
from .model_selection import choose_svm_c, linear_svm

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


def _fit_predict(method: str, train: _TrainSet, x_eval: Sequence[np.ndarray]):
    """Fit one baseline; return (predictions per eval frame, params)."""
    from sklearn.exceptions import ConvergenceWarning

    model, params = _BUILDERS[method](train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train.x, train.y)
    return [model.predict(x) if len(x) else np.array([]) for x in x_eval], params


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


def _scores(cells: LabelledCells, predictions: dict[str, np.ndarray]) -> dict:
    """Metrics on val and test (test falls back to val when the split has no test cells)."""
    scores = {}
    for name in ("val", "test"):
        rows = cells.rows(name)
        scores[name] = (
            classification_metrics(cells.labels[rows].to_numpy(), predictions[name], cells.classes)
            if rows.any()
            else None
        )
    return {"test": scores["test"] or scores["val"], "val": scores["val"]}


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
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelCheck = None,
) -> dict:
    """Train and evaluate the classical baselines on a split of the cell table.

    Each method is fitted on the ``train`` cells (features prepared by
    :func:`~napari_hcs.learn.feature_prep.prepare_features` on those cells
    alone) and evaluated on the ``test`` cells, or on the ``val`` cells when
    the split has no test cells.

    Methods: ``random_forest`` (500 trees), ``lda`` (linear discriminant
    analysis with Ledoit-Wolf shrinkage), ``svm`` (linear SVM, one-vs-rest,
    ``C`` chosen by :func:`~napari_hcs.learn.model_selection.choose_svm_c` on
    the train cells, folds holding out whole wells).

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
        :func:`~napari_hcs.learn.metrics.classification_metrics`. ``params``
        also holds ``n_train`` and the feature counts. After a cancel, only the
        methods that finished.

    Raises
    ------
    LabelError
        If the label column is missing (the message lists the columns), a
        single class, a class without training cells, or a bad split.
    KeyError
        If the group column is missing (the message lists the columns).
    ValueError
        If there are no feature columns, no cells to evaluate, or an unknown method.

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
    """
    _check_methods(methods)
    cells = check_labels(table, label_column, split)
    if not feature_columns(table):
        raise ValueError(NO_FEATURES)
    if not (cells.rows("test").any() or cells.rows("val").any()):
        raise ValueError("The split has neither test nor val cells to evaluate on.")
    train_rows = cells.rows("train")
    x_train, (x_val, x_test), info = prepare_features(
        table[train_rows],
        [table[cells.rows("val")], table[cells.rows("test")]],
        corr_threshold=corr_threshold,
    )
    train = _TrainSet(
        x=x_train.to_numpy(),
        y=cells.labels[train_rows].to_numpy(),
        groups=group_labels(table[train_rows], group_column).to_numpy(),
        seed=seed,
        n_jobs=n_jobs,
        cancel=cancel,
    )
    common = {"evaluated_on": "test" if cells.rows("test").any() else "val"}
    params = {"n_train": int(train_rows.sum()), **_feature_counts(info)}
    results = {}
    for done, method in enumerate(methods):
        if is_cancelled(cancel):
            break
        start = time.perf_counter()
        try:
            (pred_val, pred_test), method_params = _fit_predict(
                method, train, [x_val.to_numpy(), x_test.to_numpy()]
            )
        except Cancelled:
            break
        results[method] = {
            **_scores(cells, {"val": pred_val, "test": pred_test}),
            **common,
            "params": {**method_params, **params},
            "seconds": round(time.perf_counter() - start, 3),
        }
        if progress is not None:
            progress(done + 1, len(methods))
    return results
