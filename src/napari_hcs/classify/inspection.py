"""Looking at a classifier's results: confusion counts, mistakes, uncertain cells, class fractions.

Plain pandas and numpy, fast for a million cells (no Python loop over cells, no
full sort where only the top few are wanted). The tables come from
:meth:`~napari_hcs.project.ModelCatalog.evaluation` (``true_class``,
``pred_class``, ``pred_confidence``, ``split``) and from the ``predictions``
column group (``pred_class``, ``pred_margin``, ``prob_<class>``).

Examples
--------
>>> evaluation = pd.DataFrame({
...     "crop_index": [0, 1, 2, 3], "split": "val",
...     "true_class": ["ctrl", "ctrl", "drug", "drug"],
...     "pred_class": ["ctrl", "drug", "drug", "drug"],
...     "pred_confidence": [0.9, 0.6, 0.8, 0.7]})
>>> confusion_counts(evaluation, ["ctrl", "drug"]).to_dict("index")
{'ctrl': {'ctrl': 1, 'drug': 1}, 'drug': {'ctrl': 0, 'drug': 2}}
>>> confused_cells(evaluation, "drug", "drug")["crop_index"].tolist()
[2, 3]
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..vocabulary import CROP_INDEX, PROBABILITY_PREFIX, UNCERTAINTY_MEASURES

__all__ = ["class_fractions", "confused_cells", "confusion_counts", "most_uncertain", "probability_columns"]


def probability_columns(frame: pd.DataFrame) -> list[str]:
    """The ``prob_<class>`` columns of a frame, in their order.

    Examples
    --------
    >>> probability_columns(pd.DataFrame(columns=["crop_index", "prob_a", "prob_b", "pred_class"]))
    ['prob_a', 'prob_b']
    """
    return [c for c in frame.columns if str(c).startswith(PROBABILITY_PREFIX)]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"The {what} have no column {', '.join(map(repr, missing))}; "
                         f"columns are: {', '.join(map(str, frame.columns)) or 'none'}.")


def _codes(values: pd.Series, classes: list[str], what: str) -> np.ndarray:
    """Position of each value in ``classes``; refuses a value that is not a class."""
    codes = pd.Categorical(values.to_numpy(), categories=classes).codes
    if (codes < 0).any():
        unknown = sorted(set(values.astype(str)) - set(classes))
        raise ValueError(f"{what} holds {', '.join(map(repr, unknown[:10]))}, not among the classes "
                         f"{', '.join(map(repr, classes))}.")
    return codes.astype(np.int64)


def confusion_counts(evaluation: pd.DataFrame, classes: Sequence[str], *,
                     split: str | None = None) -> pd.DataFrame:
    """Count the evaluated cells of each true and predicted class.

    Parameters
    ----------
    evaluation : DataFrame
        One row per evaluated cell with ``true_class`` and ``pred_class``
        (and ``split`` when ``split`` is given).
    classes : sequence of str
        Class names, the order of the rows and columns.
    split : str, optional
        Count only the cells of this split (``"val"`` or ``"test"``).

    Returns
    -------
    DataFrame
        int64 counts, index ``true`` (true class), columns ``predicted``.

    Raises
    ------
    ValueError
        If a column is missing, or a true or predicted class is not in ``classes``.

    Examples
    --------
    >>> cells = pd.DataFrame({"true_class": ["a", "b", "b"], "pred_class": ["a", "a", "b"]})
    >>> confusion_counts(cells, ["a", "b"]).to_numpy().tolist()
    [[1, 0], [1, 1]]
    """
    classes = [str(c) for c in classes]
    _require(evaluation, ["true_class", "pred_class"] + (["split"] if split else []), "evaluated cells")
    if split is not None:
        evaluation = evaluation[evaluation["split"] == split]
    k = len(classes)
    true = _codes(evaluation["true_class"], classes, "true_class")
    pred = _codes(evaluation["pred_class"], classes, "pred_class")
    counts = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    return pd.DataFrame(counts, index=pd.Index(classes, name="true"),
                        columns=pd.Index(classes, name="predicted"))


def confused_cells(evaluation: pd.DataFrame, true_class: str, pred_class: str) -> pd.DataFrame:
    """The evaluated cells of one confusion-matrix cell, most confident first.

    Parameters
    ----------
    evaluation : DataFrame
        Evaluated cells (``true_class``, ``pred_class``, ``pred_confidence``).
    true_class, pred_class : str
        The row and column of the confusion matrix.

    Returns
    -------
    DataFrame
        Those rows, sorted by ``pred_confidence`` (highest first; ties keep
        their order), with a fresh index.

    Examples
    --------
    >>> cells = pd.DataFrame({"crop_index": [5, 6, 7], "true_class": ["a", "a", "b"],
    ...                       "pred_class": ["b", "b", "b"], "pred_confidence": [0.6, 0.9, 0.8]})
    >>> confused_cells(cells, "a", "b")["crop_index"].tolist()
    [6, 5]
    """
    _require(evaluation, ["true_class", "pred_class", "pred_confidence"], "evaluated cells")
    chosen = evaluation[(evaluation["true_class"] == str(true_class))
                        & (evaluation["pred_class"] == str(pred_class))]
    return chosen.sort_values("pred_confidence", ascending=False, kind="stable").reset_index(drop=True)


def _uncertainty(predictions: pd.DataFrame, by: str) -> tuple[np.ndarray, np.ndarray]:
    """``(score, value)``: the smaller the score the more uncertain; value is what is reported."""
    columns = probability_columns(predictions)
    if not columns:
        if by == "margin" and "pred_margin" in predictions:
            margin = predictions["pred_margin"].to_numpy(np.float64)
            return margin, margin
        raise ValueError(f"The predictions have no {PROBABILITY_PREFIX}<class> columns to measure "
                         f"the {by} of; predict the cells again.")
    probs = predictions[columns].to_numpy(np.float32)
    if by == "margin":
        if len(columns) == 1:
            margin = np.abs(2 * probs[:, 0] - 1)
        else:
            top = np.partition(probs, len(columns) - 2, axis=1)[:, -2:]
            margin = top[:, 1] - top[:, 0]
        return margin, margin
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log(probs), 0.0)
    entropy = -terms.sum(axis=1)
    entropy[np.isnan(probs).any(axis=1)] = np.nan
    return -entropy, entropy


def most_uncertain(predictions: pd.DataFrame, *, n: int = 48, by: str = "margin",
                   exclude: Iterable[int] = ()) -> pd.DataFrame:
    """The ``n`` cells whose prediction is least certain: what to label next.

    Parameters
    ----------
    predictions : DataFrame
        Predicted cells with ``crop_index`` and ``prob_<class>`` columns (or
        ``pred_margin`` alone, for ``by="margin"``).
    n : int
        How many cells.
    by : {"margin", "entropy"}
        ``margin``: the smallest difference between the two highest
        probabilities; ``entropy``: the highest entropy of the probabilities.
    exclude : iterable of int
        Crop indices left out (the cells already labelled).

    Returns
    -------
    DataFrame
        At most ``n`` rows of ``predictions``, most uncertain first, with a
        column named after ``by`` holding the measure. Cells without
        probabilities (not predicted) are left out.

    Raises
    ------
    ValueError
        If ``by`` is unknown, ``n`` is negative, or there are no probabilities.

    Examples
    --------
    >>> predictions = pd.DataFrame({"crop_index": [0, 1, 2, 3],
    ...                             "prob_a": [0.9, 0.55, 0.5, 0.2], "prob_b": [0.1, 0.45, 0.5, 0.8]})
    >>> most_uncertain(predictions, n=2)[["crop_index", "margin"]].round(2).to_numpy().tolist()
    [[2.0, 0.0], [1.0, 0.1]]
    >>> most_uncertain(predictions, n=2, by="entropy", exclude=[2])["crop_index"].tolist()
    [1, 3]
    """
    if by not in UNCERTAINTY_MEASURES:
        raise ValueError(f"Unknown uncertainty measure {by!r}; choose one of {', '.join(UNCERTAINTY_MEASURES)}.")
    if int(n) < 0:
        raise ValueError(f"n must be 0 or more, got {n}.")
    _require(predictions, [CROP_INDEX], "predictions")
    score, value = _uncertainty(predictions, by)
    keep = ~np.isnan(score)
    excluded = np.fromiter((int(i) for i in exclude), dtype=np.int64)
    if excluded.size:
        keep &= ~np.isin(predictions[CROP_INDEX].to_numpy(np.int64), excluded)
    rows = np.flatnonzero(keep)
    n = min(int(n), rows.size)
    if n < rows.size:
        rows = rows[np.argpartition(score[rows], n - 1)[:n]] if n else rows[:0]
    rows = rows[np.lexsort((predictions[CROP_INDEX].to_numpy()[rows], score[rows]))]
    chosen = predictions.iloc[rows].reset_index(drop=True)
    chosen[by] = value[rows].astype(np.float64)
    return chosen


def class_fractions(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """The fraction of each well's predicted cells in each class: the screen-level view.

    Parameters
    ----------
    table : DataFrame
        Cells with ``well`` and ``pred_class`` (empty or missing where a cell
        was not predicted).
    classes : sequence of str
        Class names, the order of the columns.

    Returns
    -------
    DataFrame
        Index ``well`` (wells in order of first appearance), one float column
        per class; each row's fractions are of the well's predicted cells.
        Wells without predicted cells are left out.

    Examples
    --------
    >>> cells = pd.DataFrame({"well": ["B02", "B02", "B02", "B04", "C01"],
    ...                       "pred_class": ["a", "b", "b", "a", None]})
    >>> class_fractions(cells, ["a", "b"]).round(2).to_dict("index")
    {'B02': {'a': 0.33, 'b': 0.67}, 'B04': {'a': 1.0, 'b': 0.0}}
    """
    classes = [str(c) for c in classes]
    _require(table, ["well", "pred_class"], "cells")
    pred = table["pred_class"]
    predicted = (pred.notna() & (pred != "")).to_numpy()
    well_codes, wells = pd.factorize(table["well"].to_numpy()[predicted], sort=False)
    class_codes = pd.Categorical(pred.to_numpy()[predicted], categories=classes).codes.astype(np.int64)
    k = len(classes)
    flat = well_codes * (k + 1) + np.where(class_codes < 0, k, class_codes)
    counts = np.bincount(flat, minlength=len(wells) * (k + 1)).reshape(len(wells), k + 1)
    totals = counts.sum(axis=1, keepdims=True)
    return pd.DataFrame(counts[:, :k] / np.maximum(totals, 1),
                        index=pd.Index([str(w) for w in wells], name="well"), columns=classes)
