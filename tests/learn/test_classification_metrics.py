"""Metrics come from scikit-learn, in a fixed class order, as plain JSON types."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from napari_hcs.learn import classification_metrics

CLASSES = ["DMSO", "taxol", "nocodazole"]


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y_true = rng.choice(CLASSES, size=300, p=[0.6, 0.3, 0.1])
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.choice(CLASSES, size=300))
    return y_true, y_pred


def test_metrics_match_sklearn(labels):
    y_true, y_pred = labels
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=CLASSES).tolist()
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=CLASSES)
    for i, cls in enumerate(CLASSES):
        assert m["per_class"][cls]["precision"] == pytest.approx(p[i])
        assert m["per_class"][cls]["recall"] == pytest.approx(r[i])
        assert m["per_class"][cls]["f1"] == pytest.approx(f[i])
        assert m["per_class"][cls]["support"] == s[i]
    assert m["classes"] == CLASSES and m["n"] == 300


def test_metrics_are_plain_json(labels):
    m = classification_metrics(*labels, np.array(CLASSES))
    assert json.loads(json.dumps(m)) == m


def test_absent_class_scores_zero_and_is_left_out_of_balanced_accuracy():
    m = classification_metrics(["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["macro_f1"] == pytest.approx(2 / 3)  # over a and b only


def test_a_predicted_class_absent_from_y_true_warns_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(["a", "a"], ["a", "b"], ["a", "b"])
    assert m["balanced_accuracy"] == 0.5 and m["per_class"]["b"]["precision"] == 0.0


def test_integer_classes():
    m = classification_metrics(np.array([0, 1, 1]), [0, 1, 0], np.array([0, 1]))
    assert m["classes"] == ["0", "1"] and m["confusion_matrix"] == [[1, 0], [1, 1]]


def test_unknown_label_or_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="'z', not among the classes"):
        classification_metrics(["a", "z"], ["a", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="same length"):
        classification_metrics(["a", "b"], ["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [], ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        classification_metrics(["a"], ["a"], ["a", "a"])
