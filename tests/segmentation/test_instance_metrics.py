"""Instance matching scores (Data Science Bowl 2018 rules)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hcs.segmentation import (
    average_precision,
    foreground_iou,
    instance_f1,
    match_instances,
)
from napari_hcs.segmentation.metrics import DSB_THRESHOLDS


def test_matching_metrics():
    truth = np.zeros((20, 40), np.int32)
    truth[2:10, 2:10] = 1
    truth[2:10, 20:28] = 2
    truth[12:18, 30:36] = 3
    pred = np.zeros_like(truth)
    pred[2:10, 3:11] = 7  # IoU 56/72 with 1
    pred[2:10, 20:24] = 8  # IoU 0.5 with 2: not above 0.5
    pred[15:19, 2:6] = 9  # nothing there
    assert match_instances(truth, pred, 0.5) == (1, 2, 2)
    assert match_instances(truth, pred, 0.45) == (2, 1, 1)
    assert instance_f1(truth, truth) == 1.0
    assert average_precision(truth, truth) == 1.0
    assert average_precision(truth, pred) == pytest.approx(
        np.mean([1 / 5 if t < 56 / 72 else 0.0 for t in np.arange(0.5, 1.0, 0.05)])
    )
    assert instance_f1(np.zeros((5, 5), int), np.zeros((5, 5), int)) == 1.0
    assert foreground_iou(truth, pred) == pytest.approx(
        np.logical_and(truth, pred).sum() / np.logical_or(truth, pred).sum()
    )
    with pytest.raises(ValueError, match="shape"):
        match_instances(truth, pred[:10])
    with pytest.raises(ValueError, match="shape"):
        foreground_iou(truth, pred[:10])


def test_dsb_thresholds():
    assert DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    truth = np.array([[1, 1, 1, 1, 0]])
    assert average_precision(truth, np.array([[1, 1, 1, 0, 0]]), thresholds=[0.7, 0.8]) == 0.5
