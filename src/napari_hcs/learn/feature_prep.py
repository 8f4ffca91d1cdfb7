"""Feature preparation of the classical classifiers, learned on the train cells only.

A scikit-learn :class:`~sklearn.pipeline.Pipeline`: median imputation, a
filter of constant features, :class:`CorrelationFilter` (drops features that
repeat an earlier one), z-scoring. :func:`prepare_features` fits it on the
train cells and applies it to every other set of cells. Before it,
:func:`normalise_features` may z-score each plate's features by that plate's
own cells (or control cells), which uses no label and removes plate effects.

Examples
--------
>>> table = pd.DataFrame({"feat_a": [1.0, 2.0, np.nan, 4.0], "feat_b": [2.0, 4.0, 4.0, 8.0],
...                       "feat_c": [5.0] * 4, "feat_d": [1.0, 0.0, 1.0, 0.0]})
>>> train, _, info = prepare_features(table)
>>> info["features"], info["dropped_constant"], info["imputed"]
(['feat_a', 'feat_d'], ['feat_c'], {'feat_a': 1})
>>> info["dropped_correlated"]
['feat_b']
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin, VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from ..project import feature_columns
from .plates import Controls, Normalisation, normalise_per_plate

__all__ = [
    "NO_FEATURES",
    "CorrelationFilter",
    "check_normalisation",
    "feature_pipeline",
    "normalise_features",
    "prepare_features",
]

#: Message of a cell table without feature columns.
NO_FEATURES = "The cell table has no feature columns (feat_*): run 'napari-hcs features' first."


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop each feature whose absolute correlation with an earlier kept one exceeds a threshold.

    Going through the features in order, a feature is dropped when its absolute
    Pearson correlation with a feature kept before it is above ``threshold``; so
    of two copies the first stays. ``threshold=None`` keeps every feature.

    Parameters
    ----------
    threshold : float or None
        Absolute correlation above which a later feature is dropped.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 0.0], [2.0, 4.1, 1.0], [3.0, 6.0, 0.0]])
    >>> CorrelationFilter(threshold=0.95).fit(x).get_support().tolist()
    [True, False, True]
    """

    def __init__(self, threshold: float | None = 0.95):
        self.threshold = threshold

    def fit(self, X, y=None):
        """Learn which features to keep from ``X`` (samples x features)."""
        values = check_array(X, dtype=np.float64)
        self.n_features_in_ = values.shape[1]
        keep = np.ones(values.shape[1], dtype=bool)
        if self.threshold is not None and values.shape[1] > 1:
            keep = ~_correlated(values, self.threshold)
        self.support_ = keep
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_


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


def feature_pipeline(*, corr_threshold: float | None = 0.95) -> Pipeline:
    """Return the unfitted preparation: impute medians, drop constant and correlated, scale.

    Steps are named ``impute``, ``constant``, ``correlated`` and ``scale``.
    """
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("constant", VarianceThreshold(threshold=0.0)),
            ("correlated", CorrelationFilter(threshold=corr_threshold)),
            ("scale", StandardScaler()),
        ]
    )


def _as_float_frame(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"{what} lacks feature column(s) {', '.join(missing[:10])} that the train cells have."
        )
    values = frame[columns].apply(pd.to_numeric, errors="coerce").astype(float)
    return values.replace([np.inf, -np.inf], np.nan)


def check_normalisation(normalisation: str) -> None:
    """Raise ValueError unless ``normalisation`` is one of :data:`~napari_hcs.vocabulary.NORMALISATIONS`.

    Examples
    --------
    >>> check_normalisation("per-well")
    Traceback (most recent call last):
    ...
    ValueError: Unknown normalisation 'per-well'; normalisations are: plate, global.
    """
    Normalisation(normalisation)


def normalise_features(
    table: pd.DataFrame, *, normalisation: str = "plate", controls: Controls = None, within: Sequence[str] = ()
) -> pd.DataFrame:
    """Return the table with its ``feat_*`` columns normalised per plate, or as they are.

    With ``"plate"``, every feature is z-scored within each plate by the
    plate's cells, all of them whatever their split (no label is used), or its
    control cells with ``controls``; see
    :func:`~napari_hcs.learn.plates.normalise_per_plate`. Non-numeric values
    and +/-inf count as missing and stay so. With ``"global"`` the table is
    returned as it is (:func:`prepare_features` then scales with the train
    cells' statistics alone).

    Parameters
    ----------
    table : DataFrame
        Cell table with ``feat_*`` columns (and ``plate``; without it the
        table is one plate).
    normalisation : {"plate", "global"}
        One of :data:`~napari_hcs.vocabulary.NORMALISATIONS`.
    controls : str, (str, sequence of str) or None
        Control cells of each plate (``"compound=DMSO"``); only with ``"plate"``.
    within : sequence of str
        Columns dividing each plate into groups normalised on their own
        (``["timepoint"]``); only with ``"plate"``.

    Returns
    -------
    DataFrame
        A copy of ``table`` with normalised (float) feature columns; with
        ``"global"``, ``table`` itself.

    Raises
    ------
    ValueError
        If the normalisation is unknown, ``controls`` or ``within`` come with
        ``"global"``, or as :func:`~napari_hcs.learn.plates.normalise_per_plate`.
    KeyError
        If the control column is missing.

    Examples
    --------
    >>> table = pd.DataFrame({"plate": ["P1", "P1", "P2", "P2"], "feat_a": [1.0, 3.0, 10.0, 30.0]})
    >>> normalise_features(table)["feat_a"].tolist()
    [-1.0, 1.0, -1.0, 1.0]
    >>> normalise_features(table, normalisation="global") is table
    True
    """
    Normalisation(normalisation, controls, within)  # checks the three together
    if normalisation == "global":
        return table
    columns = feature_columns(table)
    if not columns:
        return table
    values = _as_float_frame(table, columns, "the cell table")
    out = table.copy()
    out[columns] = normalise_per_plate(values, table, controls=controls, within=within)
    return out


def _refuse_missing(n_missing: pd.Series) -> None:
    bad = n_missing[n_missing > 0]
    if len(bad):
        listed = ", ".join(f"{c} ({n})" for c, n in bad.head(10).items())
        raise ValueError(
            f"{int(bad.sum())} missing or infinite feature value(s) in {len(bad)} feature(s): "
            f"{listed}. Use nan_policy='impute' to replace them by the train median."
        )


@contextmanager
def _dropping_empty_features():
    """Let the imputer drop features missing on every train cell quietly (``info`` names them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping features without any observed values")
        yield


def _fit(pipeline: Pipeline, train: pd.DataFrame) -> None:
    try:
        with _dropping_empty_features():
            pipeline.fit(train)
    except ValueError as error:  # every feature empty or constant: nothing left to select
        raise ValueError(
            f"No usable feature left of {train.shape[1]}: all are constant, missing or "
            "correlated on the train cells."
        ) from error


def _info(pipeline: Pipeline, columns: list[str], n_missing: pd.Series) -> dict:
    names = {"": list(columns)}
    kept = list(columns)
    for step in ("impute", "constant", "correlated"):
        kept = list(pipeline[step].get_feature_names_out(kept))
        names[step] = kept
    scaler = pipeline["scale"]
    return {
        "features": kept,
        "dropped_constant": [c for c in names["impute"] if c not in names["constant"]],
        "dropped_correlated": [c for c in names["constant"] if c not in names["correlated"]],
        "dropped_missing": [c for c in columns if c not in names["impute"]],
        "imputed": {c: int(n) for c, n in n_missing.items() if n and c in names["impute"]},
        "mean": {c: float(v) for c, v in zip(kept, scaler.mean_)},
        "std": {c: float(v) for c, v in zip(kept, scaler.scale_)},
    }


def prepare_features(
    train_df: pd.DataFrame,
    other_dfs: Sequence[pd.DataFrame] = (),
    *,
    corr_threshold: float | None = 0.95,
    nan_policy: str = "impute",
) -> tuple[pd.DataFrame, list[pd.DataFrame], dict]:
    """Select and scale the classical features, learning everything on train.

    Steps of :func:`feature_pipeline`, fitted on ``train_df`` and applied to every frame:

    1. take the ``feat_*`` columns; non-numeric values and +/-inf count as missing;
    2. missing values: with ``nan_policy="impute"`` replaced by the train
       median of the feature (features missing on every train cell are
       dropped); with ``nan_policy="raise"`` a ValueError names the features;
    3. drop constant features (zero variance on train);
    4. correlation filter (:class:`CorrelationFilter`; ``corr_threshold=None``
       keeps all);
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
        raise ValueError(NO_FEATURES)
    if len(train_df) == 0:
        raise ValueError("No train cells to fit the features on.")
    train = _as_float_frame(train_df, columns, "train cells")
    others = [_as_float_frame(df, columns, f"frame {i}") for i, df in enumerate(other_dfs)]
    n_missing = sum(frame.isna().sum() for frame in [train, *others])
    if nan_policy == "raise":
        _refuse_missing(n_missing)
    pipeline = feature_pipeline(corr_threshold=corr_threshold)
    _fit(pipeline, train)
    info = _info(pipeline, columns, n_missing)

    def transform(frame: pd.DataFrame) -> pd.DataFrame:
        values = np.empty((0, len(info["features"])))
        if len(frame):
            with _dropping_empty_features():
                values = pipeline.transform(frame)
        return pd.DataFrame(values, index=frame.index, columns=info["features"])

    return transform(train), [transform(frame) for frame in others], info
