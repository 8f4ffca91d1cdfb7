"""Self-training: confident test and unlabelled cells join training, validation and test scores stay labelled.

Synthetic crops prove the bookkeeping (which cells are pooled, which join, what a
cancel keeps); the real BBBC021 plates prove that a model of one plate takes the
other plate's cells into its training with the classes it gives them
(``benchmarks/recipes.py`` measures the accuracy).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from napari_hcs.cli import main
from napari_hcs.nn import TrainConfig, load_checkpoint, train_model
from napari_hcs.nn.prepare import prepare_subsets
from napari_hcs.nn.self_training import confident_cells, pool_crop_indices

from training_cells import CHANNELS, make_crops, make_store, small


def _split(table: pd.DataFrame) -> np.ndarray:
    """Wells 01 train, 02 validation, 03 test."""
    return np.select([table.well.str.endswith("01"), table.well.str.endswith("02")], ["train", "val"], "test")


def test_the_pool_is_the_test_split_and_the_unlabelled_cells_never_training_or_validation():
    table, _ = make_crops(24)
    split = _split(table)
    unlabelled = np.flatnonzero(split == "train")[:2]
    table.loc[unlabelled[:1], "cls"] = None
    table.loc[unlabelled[1:], "cls"] = " "  # blank text: the viewer's unlabelled cells
    prepared = prepare_subsets(table, len(table), label_column="cls", split=split)
    pool = pool_crop_indices(prepared, table, "cls")
    expected = np.union1d(np.flatnonzero(split == "test"), unlabelled)
    np.testing.assert_array_equal(pool, expected)
    assert not np.isin(pool, prepared.subsets["val"].crop_indices).any()


def test_only_cells_at_the_confidence_join_with_their_most_probable_class():
    probabilities = np.array([[0.95, 0.05], [0.94, 0.06], [0.0, 1.0]])
    added = confident_cells(probabilities, np.array([7, 8, 9]), confidence=0.95)
    assert added.crop_indices.tolist() == [7, 9] and added.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="2 rows of probabilities for 3 pool cells"):
        confident_cells(probabilities[:2], np.array([7, 8, 9]), confidence=0.5)


def test_a_round_adds_the_confident_test_cells_and_the_test_scores_cover_every_test_cell():
    table, crops = make_crops(96)
    split = _split(table)
    seen = []
    result = train_model(table, crops, small(epochs=2, self_training=1, self_training_confidence=0.5, tta=False),
                         label_column="cls", split=split, channels=CHANNELS,
                         progress=lambda epoch, epochs, row: seen.append((epoch, epochs)))
    (record,) = result.meta["self_training"]["rounds"]
    assert record["pool_cells"] == (split == "test").sum()
    assert 0 < record["added_cells"] <= record["pool_cells"]
    assert sum(record["added_per_class"].values()) == record["added_cells"]
    assert result.metrics["test"]["n"] == (split == "test").sum()
    assert result.metrics["val"]["n"] == (split == "val").sum()
    assert seen[-1] == (4, 4)  # two fits of two epochs
    assert result.meta["hyperparameters"]["self_training"] == 1


def test_an_ensemble_self_trains_and_its_checkpoint_keeps_every_seed_and_the_rounds(tmp_path):
    table, crops = make_crops(96)
    split = _split(table)
    result = train_model(table, crops, small(epochs=1, ensemble=2, self_training=1, self_training_confidence=0.5,
                                             tta=False),
                         label_column="cls", split=split, channels=CHANNELS, checkpoint_path=tmp_path / "e.pt")
    (record,) = result.meta["self_training"]["rounds"]
    assert 0 < record["added_cells"] <= record["pool_cells"] == (split == "test").sum()
    assert [m["seed"] for m in result.meta["members"]] == [0, 1]
    model, meta = load_checkpoint(tmp_path / "e.pt")
    assert len(model.members) == 2 and meta["self_training"] == result.meta["self_training"]


def test_a_round_without_a_confident_cell_does_not_train_again():
    table, crops = make_crops(48)
    seen = []
    result = train_model(table, crops, small(epochs=1, self_training=2, self_training_confidence=1.0, tta=False),
                         label_column="cls", split=_split(table), channels=CHANNELS,
                         progress=lambda epoch, epochs, row: seen.append(row.get("self_training_round")))
    (record,) = result.meta["self_training"]["rounds"]
    assert record["added_cells"] == 0 and record["pool_cells"] == (_split(table) == "test").sum()
    assert seen == [0]


def test_a_cancel_during_a_round_keeps_the_model_of_the_round_before():
    table, crops = make_crops(96)
    stop = threading.Event()

    def progress(epoch, epochs, row):
        if row.get("self_training_round") == 1:
            stop.set()

    result = train_model(table, crops, small(epochs=2, self_training=2, self_training_confidence=0.5, tta=False),
                         label_column="cls", split=_split(table), channels=CHANNELS, progress=progress,
                         cancel=stop)
    assert result.cancelled
    assert result.meta["self_training"]["rounds"] == []
    assert len(result.history) == 2  # the first fit's epochs


def test_cli_train_self_trains_on_the_unlabelled_cells_and_says_what_each_round_added(tmp_path, capsys):
    table, crops = make_crops(96, n_wells=4)
    table.loc[table.well.str.endswith("04"), "cls"] = None  # one well of each class left unlabelled
    folder = tmp_path / "proj"
    make_store(folder, table, crops)
    model = tmp_path / "self.pt"
    assert main(["train", "--project", str(folder), "--label-column", "cls", "--depth", "1", "--width", "1",
                 "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-tta", "--self-training", "1",
                 "--self-training-confidence", "0.5", "--out", str(model)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    (record,) = summary["self_training"]["rounds"]
    assert record["pool_cells"] == table.cls.isna().sum() and record["added_cells"] > 0
    assert "x 2 fits (self-training)" in captured.err
    assert load_checkpoint(model)[1]["self_training"] == summary["self_training"]


def test_an_autoencoder_and_a_confidence_outside_0_1_are_refused():
    with pytest.raises(ValueError, match="self_training"):
        TrainConfig(model="ae", self_training=1)
    with pytest.raises(ValueError, match=r"self_training_confidence must be a number in \(0, 1\]"):
        TrainConfig(self_training=1, self_training_confidence=1.5)


@pytest.mark.slow
def test_bbbc021_model_of_one_plate_trains_again_on_the_confident_cells_of_the_other(shared_data):
    source = shared_data / "bbbc021_crops"
    meta_table = pd.read_csv(source / "bbbc021_crops.csv")
    crops = np.load(source / "bbbc021_crops.npz")["crops"][:, :, 18:50, 18:50]  # 32x32 centres, quick
    table = meta_table.assign(crop_index=np.arange(len(meta_table)))
    split = np.where(table.plate == "Week4_27801", "train", "test")
    result = train_model(table, crops, small(epochs=1, batch_size=64, tta=False, self_training=1),
                         label_column="moa", split=split, channels=CHANNELS)
    (record,) = result.meta["self_training"]["rounds"]
    assert record["pool_cells"] == (split == "test").sum()
    assert record["added_cells"] > 0
    assert set(record["added_per_class"]) == set(table.moa.dropna().unique())
    assert result.metrics["test"]["n"] == (split == "test").sum()
