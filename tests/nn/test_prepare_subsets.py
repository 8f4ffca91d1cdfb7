"""From a cell table to train / val / test subsets: the shared label check, the default split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_hcs.learn.labels import LabelError
from napari_hcs.nn.prepare import TrainingError, check_crops, prepare_subsets
from training_cells import make_crops


def test_subsets_codes_counts_and_groups():
    table, _ = make_crops(24, n_wells=3)
    split = np.where(table.well.str.endswith("03"), "test", np.where(table.well.str.endswith("02"), "val", "train"))
    prepared = prepare_subsets(table, 24, label_column="cls", split=split)
    assert prepared.classes == ["a", "b"]
    assert set(prepared.subsets) == {"train", "val", "test"}
    train = prepared.subsets["train"]
    assert np.array_equal(train.labels, (table.cls[table.well.str.endswith("01")] == "b").to_numpy().astype(int))
    assert prepared.split_counts["test"] == {"a": 4, "b": 4}
    assert prepared.split_groups == {"train": ["A01", "B01"], "val": ["A02", "B02"], "test": ["A03", "B03"]}
    assert prepared.describe(5) == "plate P1, well B03, site 1"


def test_unlabelled_and_unassigned_rows_are_left_out():
    table, _ = make_crops(12)
    table.loc[[0, 1], "cls"] = [None, " "]
    split = pd.Series("train", index=table.index)
    split[2] = ""
    prepared = prepare_subsets(table, 12, label_column="cls", split=split)
    assert prepared.subsets["train"].crop_indices.tolist() == list(range(3, 12))


def test_default_split_holds_out_wells_for_validation():
    table, _ = make_crops(48, n_wells=4)
    prepared = prepare_subsets(table, 48, label_column="cls", seed=0)
    val, train = set(prepared.split_groups["val"]), set(prepared.split_groups["train"])
    assert val and not val & train and {w[0] for w in val} == {"A", "B"}


def test_label_free_subsets_have_no_classes():
    table, _ = make_crops(16)
    prepared = prepare_subsets(table.drop(columns="cls"), 16, label_column=None, split=["train"] * 16)
    assert prepared.classes == [] and prepared.subsets["train"].labels.tolist() == [0] * 16


def test_label_problems_are_training_errors_and_label_errors():
    table, _ = make_crops(16)
    with pytest.raises(TrainingError, match="single class") as info:
        prepare_subsets(table.assign(cls="a"), 16, label_column="cls", split=["train"] * 16)
    assert isinstance(info.value.__cause__, LabelError)
    with pytest.raises(TrainingError, match=r"The split holds 'holdout'; expected train, val, test or empty"):
        prepare_subsets(table, 16, label_column="cls", split=["holdout"] * 16)
    with pytest.raises(TrainingError, match="No labelled cell is in the train split"):
        prepare_subsets(table, 16, label_column="cls", split=["val"] * 16)


def test_rows_past_the_store_are_an_error():
    table, _ = make_crops(16)
    with pytest.raises(TrainingError, match=r"16 row\(s\) point past the crop store \(e.g. crop_index 0; "
                                            r"the store holds 0 crops\)"):
        prepare_subsets(table, 0, label_column="cls", split=["train"] * 16)


def test_crop_shape_and_channel_names_are_checked():
    with pytest.raises(TrainingError, match=r"shape \(cells, channels, size, size\); got \(4, 8, 8\)"):
        check_crops(np.zeros((4, 8, 8)), None)
    with pytest.raises(TrainingError, match=r"2 channel names \(DNA, GFP\) for crops with 3 channels"):
        check_crops(np.zeros((4, 3, 8, 8)), ["DNA", "GFP"])
