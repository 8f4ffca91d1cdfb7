"""Classical baselines on the per-cell features: random forest, LDA, linear SVM.

The baselines read the ``feat_*`` columns of the cell table (written by
``napari-hcs features``) and use the very split a CNN is trained on, so their
scores compare directly. Everything that is learned from data (which features
to keep, the scaling, the SVM's ``C``) is learned on the train cells only.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..project.cell_store import feature_columns
from .metrics import classification_metrics
from .splits import SPLIT_VALUES, UNUSED, group_labels

__all__ = [
    "METHODS",
    "SVM_C_GRID",
    "choose_svm_c",
    "prepare_features",
    "run_baselines",
]

#: Baseline methods run by :func:`run_baselines`.
METHODS = ("random_forest", "lda", "svm")
#: Coarse grid of the SVM's C (every other power of two, 2^-10 .. 2^10); the
#: search then tries the odd powers next to the best one.
SVM_C_GRID = tuple(2.0**k for k in range(-10, 11, 2))

_NO_FEATURES = "The cell table has no feature columns (feat_*): run 'napari-hcs features' first."


# -- features ---------------------------------------------------------------
def _as_float_frame(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"{what} lacks feature column(s) {', '.join(missing[:10])} that the train cells have."
        )
    values = frame[columns].apply(pd.to_numeric, errors="coerce").astype(float)
    return values.replace([np.inf, -np.inf], np.nan)


def _correlated(values: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of columns to drop: each column whose |r| with an earlier kept one exceeds threshold."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.abs(np.corrcoef(values, rowvar=False))
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
    drop = np.zeros(values.shape[1], dtype=bool)
    for j in range(values.shape[1]):
        kept_before = ~drop[:j]
        if np.any(corr[j, :j][kept_before] > threshold):
            drop[j] = True
    return drop


def prepare_features(
    train_df: pd.DataFrame,
    other_dfs: Sequence[pd.DataFrame] = (),
    *,
    corr_threshold: float | None = 0.95,
    nan_policy: str = "impute",
) -> tuple[pd.DataFrame, list[pd.DataFrame], dict]:
    """Select and scale the classical features, learning everything on train.

    Steps, each fitted on ``train_df`` and applied to every frame:

    1. take the ``feat_*`` columns; non-numeric values and +/-inf count as missing;
    2. missing values: with ``nan_policy="impute"`` replaced by the train
       median of the feature (features missing on every train cell are
       dropped); with ``nan_policy="raise"`` a ValueError names the features;
    3. drop constant features (zero variance on train);
    4. correlation filter: going through the features in table order, drop each
       one whose absolute Pearson correlation with a feature kept before it
       exceeds ``corr_threshold`` (``None`` keeps all);
    5. z-score with the train mean and standard deviation.

    Parameters
    ----------
    train_df : DataFrame
        Training cells (a cell table or just its feature columns).
    other_dfs : sequence of DataFrame
        Other cells (validation, test, ...) to transform the same way.
    corr_threshold : float or None
        Absolute correlation above which a later feature is dropped.
    nan_policy : {"impute", "raise"}
        What to do with missing or infinite values.

    Returns
    -------
    train : DataFrame
        Scaled kept features of the train cells (index of ``train_df``).
    others : list of DataFrame
        The same for each frame of ``other_dfs``.
    info : dict
        ``features`` (kept names), ``dropped_constant``, ``dropped_correlated``,
        ``dropped_missing``, ``imputed`` (feature -> number of values replaced,
        over all frames), ``mean``, ``std``.

    Raises
    ------
    ValueError
        If there are no feature columns or no train cells, if ``nan_policy`` is
        ``"raise"`` and values are missing, or if no feature is left.
    KeyError
        If an other frame lacks a feature column of the train cells.
    """
    if nan_policy not in ("impute", "raise"):
        raise ValueError(f"nan_policy must be 'impute' or 'raise'; got {nan_policy!r}.")
    columns = feature_columns(train_df)
    if not columns:
        raise ValueError(_NO_FEATURES)
    if len(train_df) == 0:
        raise ValueError("No train cells to fit the features on.")
    train = _as_float_frame(train_df, columns, "train cells")
    others = [_as_float_frame(df, columns, f"frame {i}") for i, df in enumerate(other_dfs)]

    n_missing = sum(frame.isna().sum() for frame in [train, *others])
    if nan_policy == "raise" and n_missing.any():
        bad = n_missing[n_missing > 0]
        listed = ", ".join(f"{c} ({n})" for c, n in bad.head(10).items())
        raise ValueError(
            f"{int(bad.sum())} missing or infinite feature value(s) in {len(bad)} feature(s): "
            f"{listed}. Use nan_policy='impute' to replace them by the train median."
        )
    medians = train.median()
    dropped_missing = medians.index[medians.isna()].tolist()
    usable = [c for c in columns if c not in dropped_missing]
    train = train[usable].fillna(medians[usable])
    others = [frame[usable].fillna(medians[usable]) for frame in others]

    std = train.std(ddof=0)
    dropped_constant = std.index[~(std > 0)].tolist()
    usable = [c for c in usable if c not in dropped_constant]
    dropped_correlated: list[str] = []
    if corr_threshold is not None and len(usable) > 1:
        drop = _correlated(train[usable].to_numpy(), corr_threshold)
        dropped_correlated = [c for c, d in zip(usable, drop) if d]
        usable = [c for c, d in zip(usable, drop) if not d]
    if not usable:
        raise ValueError(
            f"No usable feature left of {len(columns)}: all are constant, missing or "
            "correlated on the train cells."
        )
    mean, std = train[usable].mean(), train[usable].std(ddof=0)
    info = {
        "features": usable,
        "dropped_constant": dropped_constant,
        "dropped_correlated": dropped_correlated,
        "dropped_missing": dropped_missing,
        "imputed": {c: int(n) for c, n in n_missing.items() if n and c not in dropped_missing},
        "mean": {c: float(v) for c, v in mean.items()},
        "std": {c: float(v) for c, v in std.items()},
    }

    def scale(frame: pd.DataFrame) -> pd.DataFrame:
        return (frame[usable] - mean) / std

    return scale(train), [scale(frame) for frame in others], info


# -- the SVM's C ------------------------------------------------------------
class _Cancelled(InterruptedError):
    """Raised between fits when the caller cancels."""


def _linear_svm(c: float, seed: int):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=c, dual="auto", max_iter=5000, random_state=seed)


def _cv_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int):
    """Folds that hold out whole groups when every class spans two groups or more."""
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


def choose_svm_c(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    grid: Sequence[float] = SVM_C_GRID,
    refine: bool = True,
    n_splits: int = 5,
    seed: int = 0,
    cancel: Callable[[], bool] | None = None,
) -> tuple[float, dict]:
    """Choose the linear SVM's C by cross-validation that holds out whole wells.

    Each C of ``grid`` is scored by the mean balanced accuracy over the folds
    (``StratifiedGroupKFold`` over ``groups``; when a class has a single group,
    stratified folds over cells, with a warning). With ``refine``, the
    geometric midpoints next to the best C (for the default grid: the odd
    powers of two beside the best even one) are tried as well. Ties go to the
    smaller C (stronger regularisation).

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
    cancel : callable, optional
        Returns True to stop; checked between fits (raises ``InterruptedError``).

    Returns
    -------
    best_c : float
    info : dict
        ``cv`` (how the folds were made) and ``scores`` (``{C: mean balanced accuracy}``).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import balanced_accuracy_score

    folds, how = _cv_folds(np.asarray(y), np.asarray(groups), n_splits, seed)
    scores: dict[float, float] = {}

    def score(c: float) -> float:
        values = []
        for train_idx, test_idx in folds:
            if cancel is not None and cancel():
                raise _Cancelled
            model = _linear_svm(c, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x[train_idx], y[train_idx])
            values.append(balanced_accuracy_score(y[test_idx], model.predict(x[test_idx])))
        return float(np.mean(values))

    grid = sorted(float(c) for c in grid)
    for c in grid:
        scores[c] = score(c)
    if refine and len(grid) > 1:
        best = _best(scores)
        i = grid.index(best)
        for j in (i - 1, i + 1):
            if 0 <= j < len(grid):
                middle = float(np.sqrt(grid[i] * grid[j]))
                scores[middle] = score(middle)
    best = _best(scores)
    return best, {"cv": how, "scores": {repr(c): s for c, s in sorted(scores.items())}}


def _best(scores: dict[float, float]) -> float:
    top = max(scores.values())
    return min(c for c, s in scores.items() if s >= top - 1e-12)


# -- baselines --------------------------------------------------------------
def _check_inputs(table: pd.DataFrame, label_column: str, split: pd.Series) -> pd.Series:
    if label_column not in table.columns:
        raise KeyError(
            f"Label column {label_column!r} is not in the cell table; columns are: "
            f"{', '.join(map(str, table.columns))}."
        )
    if not feature_columns(table):
        raise ValueError(_NO_FEATURES)
    if not isinstance(split, pd.Series):
        split = pd.Series(np.asarray(split), index=table.index)
    if not split.index.equals(table.index):
        if len(split.index.difference(table.index)) or len(table.index.difference(split.index)):
            raise ValueError("The split's index does not match the cell table's index.")
        split = split.reindex(table.index)
    split = split.fillna(UNUSED).astype(str)
    bad = sorted(set(split.unique()) - set(SPLIT_VALUES) - {UNUSED})
    if bad:
        raise ValueError(
            f"The split holds {', '.join(map(repr, bad))}; expected "
            f"{', '.join(map(repr, SPLIT_VALUES))} or '' (see napari_hcs.learn.splits.split_by_well)."
        )
    return split


def _used_rows(table, label_column, split) -> tuple[pd.Series, pd.Series]:
    labels = table[label_column]
    labelled = ~(labels.isna() | (labels.astype(str).str.strip() == ""))
    return labels.astype(str), labelled & (split != UNUSED)


def _classes(labels: pd.Series, split: pd.Series, used: pd.Series) -> list[str]:
    classes = sorted(labels[used].unique())
    if len(classes) < 2:
        raise ValueError(
            f"The labelled cells hold a single class ({', '.join(classes) or 'none'}); "
            "a classifier needs two classes or more."
        )
    in_train = set(labels[used & (split == "train")])
    if not in_train:
        raise ValueError("The split has no train cells.")
    untrained = [c for c in classes if c not in in_train]
    if untrained:
        raise ValueError(
            f"Class(es) {', '.join(map(repr, untrained))} have no training cells: the split "
            "puts all their wells in val/test. Give each class at least one train well."
        )
    return classes


def _fit_predict(method, x_train, y_train, groups, x_eval, *, seed, n_jobs, cancel):
    """Fit one baseline; return (predictions per eval frame, params)."""
    if method == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=500, n_jobs=n_jobs, random_state=seed)
        params = {"n_estimators": 500}
    elif method == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        params = {"solver": "lsqr", "shrinkage": "ledoit-wolf"}
    elif method == "svm":
        c, cv_info = choose_svm_c(x_train, y_train, groups, seed=seed, cancel=cancel)
        model = _linear_svm(c, seed)
        params = {"C": c, "log2_C": float(np.log2(c)), **cv_info}
    else:
        raise ValueError(f"Unknown baseline method {method!r}; methods are: {', '.join(METHODS)}.")
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return [model.predict(x) if len(x) else np.array([]) for x in x_eval], params


def run_baselines(
    table: pd.DataFrame,
    label_column: str,
    split: pd.Series,
    *,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    n_jobs: int | None = None,
    group_column: str = "well",
    corr_threshold: float | None = 0.95,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Train and evaluate the classical baselines on a split of the cell table.

    Each method is fitted on the ``train`` cells (features prepared by
    :func:`prepare_features` on those cells alone) and evaluated on the
    ``test`` cells, or on the ``val`` cells when the split has no test cells.

    Methods: ``random_forest`` (500 trees), ``lda`` (linear discriminant
    analysis with Ledoit-Wolf shrinkage), ``svm`` (linear SVM, one-vs-rest,
    ``C`` chosen by :func:`choose_svm_c` on the train cells, folds holding out
    whole wells).

    Parameters
    ----------
    table : DataFrame
        Cell table with ``feat_*`` columns, the label column and ``group_column``.
    label_column : str
        Column with the class of each cell; unlabelled rows are ignored.
    split : Series
        ``"train"``/``"val"``/``"test"``/``""`` per row, index aligned with
        ``table`` (see :func:`napari_hcs.learn.splits.split_by_well`).
    methods : sequence of str
        Any of :data:`METHODS`.
    seed : int
        Seed of the forest and of the SVM's folds.
    n_jobs : int, optional
        Parallel jobs of the random forest (None: one).
    group_column : str
        Group held out by the SVM's cross-validation (see
        :func:`napari_hcs.learn.splits.group_labels`).
    corr_threshold : float or None
        Correlation filter of :func:`prepare_features`.
    progress : callable, optional
        ``progress(n_done, n_total)`` after each method.
    cancel : callable, optional
        Returns True to stop; checked between methods and between the SVM's
        fits. The methods finished before it are returned.

    Returns
    -------
    dict
        ``{method: {"test": metrics, "val": metrics or None, "evaluated_on":
        "test" or "val", "params": {...}, "seconds": float}}``; metrics from
        :func:`napari_hcs.learn.metrics.classification_metrics`. ``params`` also
        holds ``n_train`` and the feature counts. After a cancel, only the
        methods that finished.

    Raises
    ------
    KeyError
        If the label or group column is missing (the message lists the columns).
    ValueError
        If there are no feature columns, a single class, a class without
        training cells, no cells to evaluate, or an unknown method.
    Examples
    --------
    >>> split = split_by_well(table, "class")
    >>> results = run_baselines(table, "class", split, methods=["lda"])
    >>> results["lda"]["test"]["accuracy"]
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown baseline method(s) {', '.join(map(repr, unknown))}; methods are: "
            f"{', '.join(METHODS)}."
        )
    split = _check_inputs(table, label_column, split)
    labels, used = _used_rows(table, label_column, split)
    classes = _classes(labels, split, used)
    train = used & (split == "train")
    val, test = used & (split == "val"), used & (split == "test")
    evaluated_on = "test" if test.any() else "val"
    if not (test.any() or val.any()):
        raise ValueError("The split has neither test nor val cells to evaluate on.")

    x_train, (x_val, x_test), info = prepare_features(
        table[train], [table[val], table[test]], corr_threshold=corr_threshold
    )
    groups = group_labels(table[train], group_column).to_numpy()
    y_train = labels[train].to_numpy()
    feature_counts = {
        "n_features": len(info["features"]),
        "n_dropped_constant": len(info["dropped_constant"]),
        "n_dropped_correlated": len(info["dropped_correlated"]),
        "n_dropped_missing": len(info["dropped_missing"]),
        "n_imputed_values": int(sum(info["imputed"].values())),
    }

    results = {}
    for done, method in enumerate(methods):
        if cancel is not None and cancel():
            break
        start = time.perf_counter()
        try:
            (pred_val, pred_test), params = _fit_predict(
                method,
                x_train.to_numpy(),
                y_train,
                groups,
                [x_val.to_numpy(), x_test.to_numpy()],
                seed=seed,
                n_jobs=n_jobs,
                cancel=cancel,
            )
        except _Cancelled:
            break
        val_metrics = (
            classification_metrics(labels[val].to_numpy(), pred_val, classes) if val.any() else None
        )
        test_metrics = (
            classification_metrics(labels[test].to_numpy(), pred_test, classes)
            if test.any()
            else val_metrics
        )
        results[method] = {
            "test": test_metrics,
            "val": val_metrics,
            "evaluated_on": evaluated_on,
            "params": {**params, "n_train": int(train.sum()), **feature_counts},
            "seconds": round(time.perf_counter() - start, 3),
        }
        if progress is not None:
            progress(done + 1, len(methods))
    return results
