"""Self-training: the cells a model is asked to predict join its training, with the classes it gives them.

A plate imaged on another day, or a timepoint the labelled wells do not cover,
shifts how cells look, and a network trained on the labelled cells alone learns
what separates them there. One round of self-training lets it see the new cells:
the trained model classifies the *pool* (the test split and every cell without
a label), the pool cells it classifies with at least ``confidence`` join the
training cells with their predicted class, and the network is trained again
from its initial weights. Each round starts again from the labelled training
cells, adding the pool cells the latest model is confident of. The validation
cells stay as they were, so the epoch kept is still chosen on labelled cells;
the test split's labels are never read, its images are.

Examples
--------
>>> prepared = Prepared(classes=["a", "b"], split_counts={}, split_groups={}, describe=str,
...                     subsets={"train": Subset(np.array([0, 1]), np.array([0, 1])),
...                              "test": Subset(np.array([2, 3, 4]), np.array([0, 1, 1]))})
>>> probabilities = np.array([[0.99, 0.01], [0.6, 0.4], [0.02, 0.98]])
>>> added = confident_cells(probabilities, np.array([2, 3, 4]), confidence=0.95)
>>> added.crop_indices.tolist(), added.labels.tolist()
([2, 4], [0, 1])
>>> with_training_cells(prepared, added).subsets["train"].crop_indices.tolist()
[0, 1, 2, 4]
>>> round_record(1, added, prepared.classes, pool_size=3)
{'round': 1, 'pool_cells': 3, 'added_cells': 2, 'added_per_class': {'a': 1, 'b': 1}}
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..learn.labels import is_missing
from ..vocabulary import CROP_INDEX
from .prepare import Prepared, Subset

__all__ = ["confident_cells", "pool_crop_indices", "round_record", "with_training_cells"]


def pool_crop_indices(prepared: Prepared, table: pd.DataFrame, label_column: str) -> np.ndarray:
    """Crop store rows of the cells to pseudo-label: the test split and every cell without a label.

    Cells of the training and validation splits are never in the pool. A label
    is missing where it is NaN, None or blank text (the viewer's unlabelled cells).

    Parameters
    ----------
    prepared : Prepared
        The subsets of the run (:func:`napari_hcs.nn.prepare.prepare_subsets`).
    table : DataFrame
        The cell table trained on (``crop_index`` and ``label_column``).
    label_column : str
        The column of the classes.

    Returns
    -------
    ndarray of int64
        Sorted, unique crop store rows.
    """
    with_crops = table[table[CROP_INDEX].notna()]
    unlabelled = with_crops.loc[is_missing(with_crops[label_column]), CROP_INDEX].to_numpy(dtype=np.int64)
    test = prepared.subsets["test"].crop_indices if "test" in prepared.subsets else np.empty(0, np.int64)
    labelled = [prepared.subsets[name].crop_indices for name in ("train", "val") if name in prepared.subsets]
    pool = np.union1d(test.astype(np.int64), unlabelled)
    return np.setdiff1d(pool, np.concatenate(labelled).astype(np.int64))


def confident_cells(probabilities: np.ndarray, pool: np.ndarray, *, confidence: float) -> Subset:
    """The pool cells whose highest class probability is at least ``confidence``, labelled with that class.

    Parameters
    ----------
    probabilities : ndarray, shape (N, K)
        Class probabilities of the pool cells, in the order of ``pool``.
    pool : ndarray of int, shape (N,)
        Their crop store rows.
    confidence : float
        The lowest probability that labels a cell.

    Returns
    -------
    Subset
        Crop store rows and class codes of the cells kept.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.shape[0] != len(pool):
        raise ValueError(f"{probabilities.shape[0]} rows of probabilities for {len(pool)} pool cells.")
    keep = probabilities.max(axis=1) >= confidence if len(pool) else np.zeros(0, dtype=bool)
    return Subset(np.asarray(pool, dtype=np.int64)[keep], probabilities.argmax(axis=1)[keep].astype(np.int64))


def with_training_cells(prepared: Prepared, added: Subset) -> Prepared:
    """``prepared`` with the ``added`` cells after its training cells (validation and test unchanged)."""
    train = prepared.subsets["train"]
    subsets = dict(prepared.subsets)
    subsets["train"] = Subset(np.concatenate([train.crop_indices, added.crop_indices]),
                              np.concatenate([train.labels, added.labels]).astype(train.labels.dtype))
    return replace(prepared, subsets=subsets)


def round_record(number: int, added: Subset, classes: list[str], *, pool_size: int) -> dict:
    """What one round added, as recorded in the checkpoint (``meta["self_training"]["rounds"]``)."""
    counts = np.bincount(added.labels, minlength=len(classes))
    return {"round": number, "pool_cells": int(pool_size), "added_cells": int(len(added.crop_indices)),
            "added_per_class": {name: int(n) for name, n in zip(classes, counts)}}
