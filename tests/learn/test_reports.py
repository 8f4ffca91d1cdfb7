"""Reports: metrics as JSON, the confusion matrix as PNG, comparison tables of methods."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_hcs.learn import classification_metrics, format_table, metrics_table, save_confusion_matrix_png, save_metrics

CLASSES = ["DMSO", "taxol", "nocodazole"]


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y_true = rng.choice(CLASSES, size=300, p=[0.6, 0.3, 0.1])
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.choice(CLASSES, size=300))
    return y_true, y_pred


def test_save_metrics_and_confusion_png(tmp_path, labels):
    m = classification_metrics(*labels, CLASSES)
    path = save_metrics(m, tmp_path / "out" / "metrics.json")
    assert json.loads(path.read_text()) == m
    png = save_confusion_matrix_png(m, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000


def test_save_metrics_writes_numpy_values(tmp_path):
    path = save_metrics({"n": np.int64(3), "scores": np.array([0.5, 1.0])}, tmp_path / "m.json")
    assert json.loads(path.read_text()) == {"n": 3, "scores": [0.5, 1.0]}


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
