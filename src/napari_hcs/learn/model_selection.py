"""The linear SVM's C, chosen by cross-validation that holds out whole wells.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> y = np.repeat(["ctrl", "drug"], 40)
>>> x = rng.normal(size=(80, 3)) + (y == "drug")[:, None] * 2.0
>>> wells = np.repeat([f"B{w:02d}" for w in range(2, 10)], 10)
>>> c, info = choose_svm_c(x, y, wells, grid=[0.01, 1.0], refine=False)
>>> info["cv"], sorted(info["scores"])
('grouped 4-fold', ['0.01', '1.0'])
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ..cancel import CancelCheck, check_cancel

__all__ = ["SVM_C_GRID", "choose_svm_c", "grouped_folds", "linear_svm"]

#: Coarse grid of the SVM's C (every other power of two, 2^-10 .. 2^10); the
#: search then tries the odd powers next to the best one.
SVM_C_GRID = tuple(2.0**k for k in range(-10, 11, 2))


def linear_svm(c: float, seed: int):
    """Return the unfitted linear SVM (one-vs-rest ``LinearSVC``) with regularisation ``c``."""
    from sklearn.svm import LinearSVC

    return LinearSVC(C=c, dual="auto", max_iter=5000, random_state=seed)


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, *, n_splits: int = 5, seed: int = 0
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Return cross-validation folds that hold out whole groups, and how they were made.

    ``StratifiedGroupKFold`` when every class spans two groups or more (with as
    many folds as the class with fewest groups allows, at most ``n_splits``);
    otherwise stratified folds over cells, with a warning naming the classes.

    Raises
    ------
    ValueError
        If a class has a single cell, so that no fold can hold it out.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    groups_per_class = pd.Series(groups).groupby(y).nunique()
    fewest_groups = int(groups_per_class.min())
    if fewest_groups >= 2:
        k = min(n_splits, fewest_groups)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y, groups)), f"grouped {k}-fold"
    single = sorted(groups_per_class.index[groups_per_class < 2].astype(str))
    warnings.warn(
        f"Class(es) {', '.join(single)} have a single training well, so the SVM's C cannot "
        "be chosen by cross-validation over wells; it is chosen by stratified "
        "cross-validation over cells, which may favour a weaker regularisation.",
        UserWarning,
        stacklevel=3,
    )
    k = int(min(n_splits, pd.Series(y).value_counts().min()))
    if k < 2:
        raise ValueError("A class has a single training cell: the SVM's C cannot be chosen.")
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y)), f"stratified {k}-fold over cells"


def _cv_score(c, x, y, folds, *, seed: int, cancel: CancelCheck) -> float:
    """Mean balanced accuracy of the linear SVM with ``c`` over the folds."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import balanced_accuracy_score

    values = []
    for train_idx, test_idx in folds:
        check_cancel(cancel, "The search of the SVM's C was cancelled.")
        model = linear_svm(c, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[train_idx], y[train_idx])
        values.append(balanced_accuracy_score(y[test_idx], model.predict(x[test_idx])))
    return float(np.mean(values))


def choose_svm_c(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    grid: Sequence[float] = SVM_C_GRID,
    refine: bool = True,
    n_splits: int = 5,
    seed: int = 0,
    cancel: CancelCheck = None,
) -> tuple[float, dict]:
    """Choose the linear SVM's C by cross-validation that holds out whole wells.

    Each C of ``grid`` is scored by the mean balanced accuracy over the folds
    of :func:`grouped_folds`. With ``refine``, the geometric midpoints next to
    the best C (for the default grid: the odd powers of two beside the best
    even one) are tried as well. Ties go to the smaller C (stronger
    regularisation).

    Parameters
    ----------
    x : ndarray
        ``(n, p)`` scaled training features.
    y : ndarray
        ``(n,)`` class of each training cell.
    groups : ndarray
        ``(n,)`` well (group) of each training cell.
    grid : sequence of float
        Values of C to try first, ascending.
    refine : bool
        Whether to try the midpoints beside the best value.
    n_splits : int
        Largest number of folds.
    seed : int
        Seed of the fold assignment.
    cancel : callable or Event, optional
        Says stop; checked between fits (see :func:`napari_hcs.cancel.check_cancel`).

    Returns
    -------
    best_c : float
    info : dict
        ``cv`` (how the folds were made) and ``scores`` (``{repr(C): mean balanced accuracy}``).

    Raises
    ------
    napari_hcs.cancel.Cancelled
        When ``cancel`` says stop.
    """
    x, y = np.asarray(x), np.asarray(y)
    folds, how = grouped_folds(y, np.asarray(groups), n_splits=n_splits, seed=seed)
    scores: dict[float, float] = {}
    grid = sorted(float(c) for c in grid)
    for c in grid:
        scores[c] = _cv_score(c, x, y, folds, seed=seed, cancel=cancel)
    if refine and len(grid) > 1:
        i = grid.index(_best(scores))
        for j in (i - 1, i + 1):
            if 0 <= j < len(grid):
                middle = float(np.sqrt(grid[i] * grid[j]))
                scores[middle] = _cv_score(middle, x, y, folds, seed=seed, cancel=cancel)
    best = _best(scores)
    return best, {"cv": how, "scores": {repr(c): s for c, s in sorted(scores.items())}}


def _best(scores: dict[float, float]) -> float:
    top = max(scores.values())
    return min(c for c, s in scores.items() if s >= top - 1e-12)
