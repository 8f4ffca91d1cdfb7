"""Classification metrics in a fixed class order, as plain Python types.

The numbers come from :mod:`sklearn.metrics`; this module fixes the class
order, refuses labels outside the classes, and returns types that
:func:`json.dumps` writes as they are.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

__all__ = ["classification_metrics"]


def _check_known(values: np.ndarray, classes: list, what: str) -> None:
    unknown = sorted(set(values.tolist()) - set(classes), key=str)
    if unknown:
        raise ValueError(
            f"{what} holds {', '.join(map(repr, unknown[:10]))}, not among the classes "
            f"{', '.join(map(repr, classes))}."
        )


def _checked(y_true, y_pred, classes: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
    classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct; got {classes}.")
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D and of the same length; got shapes "
            f"{y_true.shape} and {y_pred.shape}."
        )
    if len(y_true) == 0:
        raise ValueError("No samples to evaluate (y_true is empty).")
    _check_known(y_true, classes, "y_true")
    _check_known(y_pred, classes, "y_pred")
    return y_true, y_pred, classes


def classification_metrics(y_true, y_pred, classes: Sequence) -> dict:
    """Return accuracy, balanced accuracy, per-class scores and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted class of each sample (same length).
    classes : sequence
        Class names, in the order of the confusion matrix rows and columns.

    Returns
    -------
    dict
        ``accuracy``; ``balanced_accuracy`` (mean recall over the classes that
        occur in ``y_true``); ``macro_f1`` (mean F1 over those classes);
        ``per_class`` ``{class: {precision, recall, f1, support}}`` (a score
        whose denominator is zero is 0); ``confusion_matrix`` (list of lists,
        rows true, columns predicted, in ``classes`` order); ``classes``; ``n``.
        Only plain Python types: ready for :func:`json.dumps`.

    Raises
    ------
    ValueError
        If the lengths differ, the input is empty, or a label is not in ``classes``.

    Examples
    --------
    >>> m = classification_metrics(["a", "b", "b"], ["a", "b", "a"], ["a", "b"])
    >>> m["accuracy"], m["confusion_matrix"]
    (0.6666666666666666, [[1, 0], [1, 1]])
    >>> m["per_class"]["b"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    from sklearn import metrics

    y_true, y_pred, classes = _checked(y_true, y_pred, classes)
    # Class positions, so that scikit-learn sees one label type whatever the names are.
    position = {c: i for i, c in enumerate(classes)}
    y_true = np.array([position[v] for v in y_true])
    y_pred = np.array([position[v] for v in y_pred])
    labels = list(range(len(classes)))
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = [i for i in labels if support[i] > 0]
    with warnings.catch_warnings():
        # Predicted classes absent from y_true are left out of the mean recall, as intended.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = metrics.balanced_accuracy_score(y_true, y_pred)
    per_class = {
        str(cls): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, cls in enumerate(classes)
    }
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "classes": [str(c) for c in classes],
        "n": int(matrix.sum()),
    }
