"""Confusion counts, confused cells, most uncertain cells and class fractions: right and fast."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from napari_hcs.classify.inspection import class_fractions, confused_cells, confusion_counts, most_uncertain
from napari_hcs.project import Project
from napari_hcs.vocabulary import UNCERTAINTY_MEASURES

from predicted_sample import CLASSES, plausible_predictions, segmented_sample


def _evaluation() -> pd.DataFrame:
    return pd.DataFrame({
        "crop_index": [10, 11, 12, 13, 14, 15],
        "split": ["val", "val", "val", "test", "test", "val"],
        "true_class": ["a", "a", "b", "b", "a", "b"],
        "pred_class": ["a", "b", "b", "a", "b", "a"],
        "pred_confidence": [0.9, 0.6, 0.7, 0.8, 0.95, 0.55],
    })


def test_confusion_counts_rows_true_columns_predicted_in_class_order():
    counts = confusion_counts(_evaluation(), ["b", "a", "c"])
    assert counts.index.tolist() == ["b", "a", "c"] and counts.columns.tolist() == ["b", "a", "c"]
    assert counts.loc["a", "b"] == 2 and counts.loc["b", "a"] == 2 and counts.loc["a", "a"] == 1
    assert counts.loc["c"].sum() == 0 and counts.to_numpy().sum() == 6
    val = confusion_counts(_evaluation(), ["a", "b"], split="val")
    assert val.to_numpy().tolist() == [[1, 1], [1, 1]]


def test_confusion_counts_refuses_a_class_outside_the_list():
    with pytest.raises(ValueError, match="'b', not among the classes 'a'"):
        confusion_counts(_evaluation(), ["a"])
    with pytest.raises(ValueError, match="no column 'true_class'"):
        confusion_counts(_evaluation().drop(columns="true_class"), ["a", "b"])


def test_confused_cells_most_confident_first():
    cells = confused_cells(_evaluation(), "a", "b")
    assert cells["crop_index"].tolist() == [14, 11]
    assert confused_cells(_evaluation(), "a", "c").empty


def test_most_uncertain_by_margin_and_entropy_excluding_labelled_cells():
    predictions = pd.DataFrame({
        "crop_index": [0, 1, 2, 3, 4],
        "prob_a": [0.34, 0.5, 0.9, 0.4, np.nan],
        "prob_b": [0.33, 0.45, 0.05, 0.4, np.nan],
        "prob_c": [0.33, 0.05, 0.05, 0.2, np.nan],
    })
    margin = most_uncertain(predictions, n=3)
    assert margin["crop_index"].tolist() == [3, 0, 1]  # margins 0, 0.01, 0.05; NaN left out
    assert margin["margin"].tolist() == pytest.approx([0.0, 0.01, 0.05], abs=1e-6)
    entropy = most_uncertain(predictions, n=2, by="entropy")
    assert entropy["crop_index"].tolist() == [0, 3]  # near uniform first
    assert most_uncertain(predictions, n=10, exclude=[3, 0])["crop_index"].tolist() == [1, 2]
    assert most_uncertain(predictions, n=0).empty
    with pytest.raises(ValueError, match="margin, entropy"):
        most_uncertain(predictions, by="variance")
    assert UNCERTAINTY_MEASURES == ("margin", "entropy")


def test_most_uncertain_uses_pred_margin_without_probabilities():
    predictions = pd.DataFrame({"crop_index": [5, 6, 7], "pred_margin": [0.5, 0.1, 0.3]})
    assert most_uncertain(predictions, n=2)["crop_index"].tolist() == [6, 7]
    with pytest.raises(ValueError, match="prob_<class>"):
        most_uncertain(predictions, by="entropy")


def test_class_fractions_per_well_leave_out_unpredicted_wells():
    table = pd.DataFrame({"well": ["A01", "A01", "A01", "A01", "B02", "C03"],
                          "pred_class": ["a", "b", "b", None, "b", ""]})
    fractions = class_fractions(table, ["a", "b"])
    assert fractions.index.tolist() == ["A01", "B02"] and fractions.index.name == "well"
    assert fractions.loc["A01"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert fractions.loc["B02"].tolist() == [0.0, 1.0]


def test_a_million_cells_in_well_under_a_second_each():
    n = 1_000_000
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], n).astype(np.float32)
    table = pd.DataFrame({"crop_index": np.arange(n), "well": rng.choice([f"A{i:02d}" for i in range(1, 25)], n),
                          "pred_class": np.asarray(["a", "b", "c"])[probs.argmax(axis=1)]})
    for index, name in enumerate("abc"):
        table[f"prob_{name}"] = probs[:, index]
    evaluation = table[["crop_index", "pred_class"]].assign(true_class=table["pred_class"].to_numpy()[::-1],
                                                            pred_confidence=probs.max(axis=1))
    for name, call in [("margin", lambda: most_uncertain(table, n=48, exclude=range(5000))),
                       ("entropy", lambda: most_uncertain(table, n=48, by="entropy")),
                       ("fractions", lambda: class_fractions(table, ["a", "b", "c"])),
                       ("confusion", lambda: confusion_counts(evaluation, ["a", "b", "c"]))]:
        start = time.perf_counter()
        result = call()
        assert time.perf_counter() - start < 1.0, name
        assert len(result) in (48, 24, 3), name


def test_on_the_real_sample(tmp_path):
    project = Project(segmented_sample(tmp_path / "project"))
    predictions = plausible_predictions(project)
    table = project.cell_table()
    fractions = class_fractions(table, CLASSES)
    assert fractions.index.tolist() == ["B02", "B04"]
    assert fractions.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])
    assert fractions.loc["B02", "Unstimulated"] > 0.5 and fractions.loc["B04", "Unstimulated"] < 0.5
    assert fractions.loc["B02", "Dividing"] == 0.0
    labelled = predictions["crop_index"].iloc[:5].tolist()
    proposed = most_uncertain(table, n=10, exclude=labelled)
    assert len(proposed) == 10 and not set(proposed["crop_index"]) & set(labelled)
    assert proposed["margin"].is_monotonic_increasing
    assert proposed["margin"].iloc[-1] <= np.sort(predictions["pred_margin"])[15] + 1e-6
