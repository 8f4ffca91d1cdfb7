"""Training: every architecture for one epoch, determinism, streaming, the metadata, clear errors."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

from napari_hcs.nn import TrainConfig, TrainingError, train_model
from napari_hcs.nn.precision import cpu_has_bfloat16
from training_cells import CHANNELS, make_crops, make_store, small

torch.set_num_threads(1)


def train(table, crops, config=None, *, label_column="cls", **options):
    return train_model(table, crops, config or small(), label_column=label_column, channels=CHANNELS, **options)


@pytest.mark.parametrize(
    "model, depth, width",
    [("wrn", 2, 1), ("wrn", 2, 2), ("wrn", 4, 2), ("cnn1", 2, 1), ("cnn2", 2, 1), ("cnn3", 2, 1)],
)
def test_every_architecture_trains_one_epoch(model, depth, width):
    table, crops = make_crops(48)
    result = train(table, crops, small(model=model, depth=depth, width=width))
    assert len(result.history) == 1
    assert np.isfinite(result.history[0]["train_loss"])
    assert set(result.metrics) == {"val"}
    assert result.meta["architecture"]["name"] == model
    assert result.meta["architecture"].get("depth", depth) == depth
    assert result.meta["classes"] == ["a", "b"]
    assert result.meta["hyperparameters"]["model"] == model


def test_training_learns_separable_classes():
    table, crops = make_crops(96)
    result = train(table, crops, small(model="cnn2", epochs=4, lr=3e-3))
    assert result.metrics["val"]["accuracy"] >= 0.9


def test_same_seed_same_model_and_streaming_from_zarr(tmp_path):
    table, crops = make_crops(48)
    store = make_store(tmp_path / "p", table, crops)
    cells = store.table()
    first = train(cells, store.crops, small(epochs=2, preload=False))
    second = train(cells, store.crops, small(epochs=2, preload=False))
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert first.meta["hyperparameters"]["preload"] is False


def test_metadata_records_the_config_as_run():
    table, crops = make_crops(32)
    config = small(epochs=2, intensity_jitter=0.1)
    result = train(table, crops, config)
    recorded = result.meta["hyperparameters"]
    assert recorded == {**config.to_dict(), "input_size": 16, "deterministic": True, "channels_last": True,
                        "preload": True, "world_size": 1, "device": "cpu",
                        "compute_dtype": "bfloat16" if cpu_has_bfloat16() else "float32"}
    assert TrainConfig.from_meta(result.meta).input_size == 16
    assert config.input_size is None  # the caller's config is left as it was


def test_split_with_test_rows_gives_test_metrics_and_history():
    table, crops = make_crops(64, n_wells=4)
    split = pd.Series("train", index=table.index)
    split[table.well.isin(["A04", "B04"])] = "test"
    split[table.well.isin(["A03", "B03"])] = "val"
    rows = []
    result = train(table, crops, small(epochs=2, early_stopping=0), split=split,
                   progress=lambda e, n, row: rows.append((e, n, row)))
    assert [r[:2] for r in rows] == [(1, 2), (2, 2)]
    assert result.metrics["test"]["n"] == 16
    assert result.meta["split"]["counts"]["test"] == {"a": 8, "b": 8}
    assert result.meta["split"]["groups"]["test"] == ["A04", "B04"]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "images_per_s"} <= set(result.history[0])


def test_autoencoder_trains_without_labels():
    table, crops = make_crops(32)
    result = train(table, crops, small(model="ae"), label_column=None)
    assert result.meta["task"] == "embedding"
    assert "reconstruction_mse" in result.metrics["val"]


def test_cancel_stops_training(tmp_path):
    table, crops = make_crops(32)
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError, match="was cancelled."):
        train(table, crops, cancel=stop, checkpoint_path=tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_cancel_after_an_epoch_keeps_the_best_epoch(tmp_path):
    table, crops = make_crops(48)
    stop = threading.Event()
    rows = []

    def progress(epoch, epochs, row):
        rows.append(row)
        if epoch == 2:
            stop.set()

    result = train(table, crops, small(epochs=6, early_stopping=0), cancel=stop, progress=progress,
                   checkpoint_path=tmp_path / "m.pt")
    assert result.cancelled and result.meta["cancelled"] is True
    assert len(result.history) == 2 and result.meta["best_epoch"] in (1, 2)
    assert result.metrics["val"]["n"] == 16 and (tmp_path / "m.pt").exists()
    assert {"train_accuracy", "val_accuracy", "train_loss", "val_loss", "seconds"} <= set(rows[0])
    finished = train(table, crops)
    assert not finished.cancelled and finished.meta["cancelled"] is False


def test_default_config():
    table, crops = make_crops(16)
    with pytest.raises(TrainingError, match="single class"):  # the default config reaches the checks
        train_model(table.assign(cls="a"), crops, label_column="cls")
    with pytest.raises(TypeError, match="config must be a TrainConfig; got dict"):
        train_model(table, crops, {"epochs": 1}, label_column="cls")


# -- clear errors --------------------------------------------------------------------


def test_missing_label_column_lists_columns():
    table, crops = make_crops(16)
    with pytest.raises(TrainingError, match=r"'moa' is not in the cell table; columns are: crop_index, plate"):
        train(table, crops, label_column="moa")


def test_single_class_is_an_error():
    table, crops = make_crops(16)
    table["cls"] = "a"
    with pytest.raises(TrainingError, match="single class"):
        train(table, crops)


def test_class_without_training_cells_is_an_error():
    table, crops = make_crops(32)
    split = pd.Series(np.where(table.cls == "b", "test", "train"), index=table.index)
    with pytest.raises(TrainingError, match=r"no training cells: 'b' \(16 cells, all in test\)"):
        train(table, crops, split=split)


def test_classifier_needs_labels():
    table, crops = make_crops(16)
    with pytest.raises(TrainingError, match="Model 'wrn' is a classifier and needs a label column"):
        train(table, crops, label_column=None)


def test_nan_crop_names_the_crop_and_cell():
    table, crops = make_crops(32)
    crops[7, 1, 3, 3] = np.nan
    train_rows = pd.Series("train", index=table.index)
    with pytest.raises(ValueError, match=r"Crop 7 \(plate P1, well B01, site 1\) contains NaN"):
        train(table, crops, split=train_rows)


def test_table_without_crop_index_is_an_error():
    table, crops = make_crops(16)
    with pytest.raises(TrainingError, match="no 'crop_index' column"):
        train(table.drop(columns="crop_index"), crops)


def test_split_is_matched_to_the_table_by_row_label():
    table, crops = make_crops(32, n_wells=4)
    table.index = table.index[::-1] + 100  # row labels unrelated to positions
    split = pd.Series(np.where(table.well.isin(["A04", "B04"]), "test", "train"), index=table.index)
    result = train(table, crops, small(early_stopping=0), split=split.sample(frac=1, random_state=0))
    assert result.meta["split"]["groups"]["test"] == ["A04", "B04"]
