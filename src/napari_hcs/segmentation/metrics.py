"""Scores of an instance segmentation against ground truth (the 2018 Data Science Bowl rules).

A predicted object matches a true object when their intersection over union
(IoU) is above a threshold; matching is one-to-one.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["DSB_THRESHOLDS", "average_precision", "foreground_iou", "instance_f1", "match_instances"]

#: IoU thresholds of the Data Science Bowl 2018 metric.
DSB_THRESHOLDS = tuple(np.round(np.arange(0.5, 1.0, 0.05), 2))


def _iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every (true object, predicted object) pair; rows truth, columns pred."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(
            f"truth and pred label images differ in shape: {truth.shape} vs {pred.shape}."
        )
    truth_values, truth_index = np.unique(truth, return_inverse=True)
    pred_values, pred_index = np.unique(pred, return_inverse=True)
    n_pred = len(pred_values)
    pairs = truth_index.ravel().astype(np.int64) * n_pred + pred_index.ravel()
    overlap = np.bincount(pairs, minlength=len(truth_values) * n_pred)
    overlap = overlap.reshape(len(truth_values), n_pred).astype(np.float64)
    truth_area = overlap.sum(axis=1)
    pred_area = overlap.sum(axis=0)
    is_truth = truth_values != 0
    is_pred = pred_values != 0
    overlap = overlap[is_truth][:, is_pred]
    union = truth_area[is_truth, None] + pred_area[None, is_pred] - overlap
    return overlap / np.maximum(union, 1.0)


def _count_matches(iou: np.ndarray, iou_threshold: float) -> int:
    if iou.size == 0:
        return 0
    if iou_threshold >= 0.5:
        # Above 0.5 an object can overlap at most one partner that much: matching is unique.
        return int((iou > iou_threshold).sum())
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(iou, maximize=True)
    return int((iou[rows, cols] > iou_threshold).sum())


def match_instances(
    truth: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5
) -> tuple[int, int, int]:
    """Match predicted to true objects one-to-one by intersection over union.

    A predicted object is a true positive when its IoU with a true object is
    above ``iou_threshold`` (the rule of the 2018 Data Science Bowl).

    Parameters
    ----------
    truth, pred : ndarray
        Instance label images of the same shape (0 is background).
    iou_threshold : float
        IoU a pair must exceed to match.

    Returns
    -------
    tp, fp, fn : int
        Matched pairs, unmatched predictions, unmatched true objects.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2, 0]])
    >>> pred = np.array([[5, 5, 0, 0, 7, 7]])
    >>> match_instances(truth, pred)
    (1, 1, 1)
    >>> match_instances(truth, pred, iou_threshold=0.3)
    (2, 0, 0)
    """
    iou = _iou_matrix(truth, pred)
    tp = _count_matches(iou, iou_threshold)
    n_truth, n_pred = iou.shape
    return tp, n_pred - tp, n_truth - tp


def instance_f1(truth: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5) -> float:
    """Return the F1 score ``2 TP / (2 TP + FP + FN)`` of an instance segmentation.

    Both images empty counts as a perfect score (1.0).

    Examples
    --------
    >>> instance_f1(np.array([[1, 1, 0, 2, 2, 0]]), np.array([[5, 5, 0, 0, 7, 7]]))
    0.5
    """
    tp, fp, fn = match_instances(truth, pred, iou_threshold)
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2.0 * tp + fp + fn)


def average_precision(
    truth: np.ndarray, pred: np.ndarray, *, thresholds: Sequence[float] = DSB_THRESHOLDS
) -> float:
    """Return the Data Science Bowl 2018 score of one image.

    For every IoU threshold the precision is ``TP / (TP + FP + FN)``; the score
    is their mean over ``thresholds`` (0.5, 0.55, ..., 0.95 by default).

    Parameters
    ----------
    truth, pred : ndarray
        Instance label images of the same shape (0 is background).
    thresholds : sequence of float
        IoU thresholds.

    Returns
    -------
    float
        Mean precision; 1.0 when both images are empty.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2, 0]])
    >>> average_precision(truth, truth)
    1.0
    >>> round(average_precision(truth, np.array([[5, 5, 0, 0, 7, 7]])), 3)
    0.333
    """
    iou = _iou_matrix(truth, pred)
    n_truth, n_pred = iou.shape
    scores = []
    for threshold in thresholds:
        tp = _count_matches(iou, threshold)
        total = n_truth + n_pred - tp
        scores.append(1.0 if total == 0 else tp / total)
    return float(np.mean(scores))


def foreground_iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """Return the IoU of two foreground masks (any nonzero pixel is foreground).

    Examples
    --------
    >>> foreground_iou(np.array([[1, 1, 0, 2, 2, 0]]), np.array([[5, 5, 0, 0, 7, 7]]))
    0.6
    """
    truth = np.asarray(truth) != 0
    pred = np.asarray(pred) != 0
    if truth.shape != pred.shape:
        raise ValueError(f"Masks differ in shape: {truth.shape} vs {pred.shape}.")
    union = np.logical_or(truth, pred).sum()
    return 1.0 if union == 0 else float(np.logical_and(truth, pred).sum() / union)
