"""Metrics agree with scikit-learn, serialise to JSON, and tabulate per method."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from napari_hcs.learn.metrics import (
    classification_metrics,
    format_table,
    metrics_table,
    save_confusion_matrix_png,
    save_metrics,
)

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


def test_unknown_label_or_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="'z', not among the classes"):
        classification_metrics(["a", "z"], ["a", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="same length"):
        classification_metrics(["a", "b"], ["a"], ["a", "b"])


def test_save_metrics_and_confusion_png(tmp_path, labels):
    m = classification_metrics(*labels, CLASSES)
    path = save_metrics(m, tmp_path / "out" / "metrics.json")
    assert json.loads(path.read_text()) == m
    png = save_confusion_matrix_png(m, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000


def test_metrics_table_and_format(labels):
    y_true, y_pred = labels
    results = {
        "perfect": classification_metrics(y_true, y_true, CLASSES),
        "noisy": {"test": classification_metrics(y_true, y_pred, CLASSES), "seconds": 1.0},
    }
    table = metrics_table(results)
    assert table.index.tolist() == ["perfect", "noisy"]
    assert table.columns.tolist() == [
        "accuracy", "balanced accuracy", "F1 DMSO", "F1 taxol", "F1 nocodazole", "n"
    ]
    assert table.loc["perfect", "accuracy"] == 1.0
    text = format_table(table)
    lines = text.splitlines()
    assert lines[0].startswith("| method") and len(lines) == 4
    assert "| perfect" in text and "1.000" in text and "300" in text
    with pytest.raises(ValueError, match="'bad'"):
        metrics_table({"bad": {"accuracy": 1.0}})
