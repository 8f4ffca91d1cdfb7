"""Training: data pipeline, every architecture for one epoch, determinism, clear errors."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

from napari_hcs.project.cell_store import CellStore
from napari_hcs.nn.data import (
    ChunkBatchSampler,
    CropDataset,
    CropReader,
    Preprocess,
    augment_batch,
    channel_statistics,
)
from napari_hcs.nn.training import TrainingError, train_model

torch.set_num_threads(1)

CHANNELS = ["DNA", "tubulin", "actin"]


def make_crops(n: int = 64, size: int = 16, *, seed: int = 0, n_wells: int = 3):
    """Two separable classes: class "b" has a bright square in channel 0.

    Returns the cell table (crop_index, plate, well, site, cls) and the crops (n, 3, size, size).
    """
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    crops = rng.normal(100.0, 10.0, (n, 3, size, size)).astype(np.float32)
    quarter = size // 4
    crops[labels == "b", 0, quarter:-quarter, quarter:-quarter] += 60.0
    wells = np.where(labels == "a", "A", "B")
    wells = np.char.add(wells, np.char.zfill((np.arange(n) // 2 % n_wells + 1).astype(str), 2))
    table = pd.DataFrame(
        {"crop_index": np.arange(n), "plate": "P1", "well": wells, "site": 1, "cls": labels}
    )
    return table, crops


def make_store(folder, table: pd.DataFrame, crops: np.ndarray, *, chunk: int = 16) -> CellStore:
    """A project cell store holding the crops, one table part per well."""
    store = CellStore.create(folder, channels=CHANNELS, crop_size=crops.shape[-1], cells_per_chunk=chunk)
    rows = table.drop(columns="crop_index")
    for well, part in rows.groupby("well", sort=True):
        store.append_site(f"{well}_f001_t000", part, crops[part.index.to_numpy()])
    return store


def small(**overrides):
    options = dict(model="wrn", depth=1, width=1, epochs=1, batch_size=16, device="cpu", channels=CHANNELS)
    options.update(overrides)
    return options


# -- data pipeline -------------------------------------------------------------------


def test_crop_reader_reads_any_order_from_zarr(tmp_path):
    _, crops = make_crops(50)
    array = zarr.open_array(store=str(tmp_path / "c.zarr"), mode="w", shape=crops.shape,
                            chunks=(8, 3, 16, 16), dtype="float32")
    array[:] = crops
    order = np.random.default_rng(1).permutation(50)[:30]
    assert np.array_equal(CropReader(array, cache_chunks=2).read(order), crops[order])


def test_channel_statistics_match_numpy():
    _, crops = make_crops(40)
    indices = np.arange(3, 37)
    mean, std = channel_statistics(CropReader(crops), indices, Preprocess(crop_size=16), batch_size=7)
    np.testing.assert_allclose(mean, crops[indices].mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, crops[indices].std(axis=(0, 2, 3), ddof=1), rtol=1e-5)


def test_preprocess_resize_and_center():
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    assert Preprocess(crop_size=8, input_size=4).resize(batch).shape == (2, 3, 4, 4)
    centre = Preprocess(crop_size=8, input_size=4, mode="center").resize(batch)
    assert torch.equal(centre, batch[..., 2:6, 2:6])
    with pytest.raises(ValueError, match="centre-crop"):
        Preprocess(crop_size=8, input_size=10, mode="center")


def test_chunk_batch_sampler_covers_all_and_groups_chunks():
    sampler = ChunkBatchSampler(np.arange(1000), batch_size=50, chunk_rows=100, window=200, seed=3)
    batches = list(sampler)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert len(batches) == len(sampler)
    chunks_per_batch = [len(np.unique(np.asarray(b) // 100)) for b in batches]
    assert max(chunks_per_batch) <= 4  # a window spans 2 chunks; a batch at most two windows
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_balanced_sampler_draws_classes_equally():
    labels = np.r_[np.zeros(900, int), np.ones(100, int)]
    weights = 1.0 / np.bincount(labels)[labels]
    sampler = ChunkBatchSampler(np.arange(1000), batch_size=100, weights=weights, seed=0)
    drawn = np.concatenate(list(sampler))
    assert 0.45 < labels[drawn].mean() < 0.55


def test_distributed_shards_are_disjoint_and_even():
    shards = [list(ChunkBatchSampler(np.arange(330), batch_size=32, world_size=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1])
    seen = [set(np.concatenate(s).tolist()) for s in shards]
    assert seen[0] | seen[1] == set(range(330))


def test_dataset_reads_whole_batches_through_dataloader(tmp_path):
    table, crops = make_crops(40)
    array = zarr.open_array(store=str(tmp_path / "c.zarr"), mode="w", shape=crops.shape,
                            chunks=(8, 3, 16, 16), dtype="float32")
    array[:] = crops
    dataset = CropDataset(array, np.arange(40), (table.cls == "b").to_numpy().astype(int))
    sampler = ChunkBatchSampler(np.arange(40), batch_size=10, chunk_rows=8, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=CropDataset.collate)
    seen = 0
    for positions, (x, y) in zip(sampler, loader):
        assert torch.equal(x, torch.from_numpy(crops[positions]))
        assert torch.equal(y, torch.as_tensor(dataset.labels[positions]))
        seen += len(x)
    assert seen == 40
    x0, y0 = dataset[5]
    assert x0.shape == (3, 16, 16) and y0 == 1


def test_augment_batch_is_a_dihedral_transform_and_reproducible():
    batch = torch.randn(16, 3, 8, 8)
    out = augment_batch(batch, generator=torch.Generator().manual_seed(0), pad=0)
    for original, augmented in zip(batch, out):
        variants = [torch.rot90(t, k, (-2, -1)) for t in (original, original.transpose(-1, -2)) for k in range(4)]
        assert any(torch.equal(augmented, v) for v in variants)
    again = augment_batch(batch, generator=torch.Generator().manual_seed(0), pad=4, intensity=0.1)
    same = augment_batch(batch, generator=torch.Generator().manual_seed(0), pad=4, intensity=0.1)
    assert again.shape == batch.shape and torch.equal(again, same)


# -- training ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, depth, width",
    [("wrn", 2, 1), ("wrn", 2, 2), ("wrn", 4, 2), ("cnn1", 2, 1), ("cnn2", 2, 1), ("cnn3", 2, 1)],
)
def test_every_architecture_trains_one_epoch(model, depth, width):
    table, crops = make_crops(48)
    result = train_model(table, crops, label_column="cls", **small(model=model, depth=depth, width=width))
    assert len(result.history) == 1
    assert np.isfinite(result.history[0]["train_loss"])
    assert set(result.metrics) == {"val"}
    assert result.meta["architecture"]["name"] == model
    assert result.meta["architecture"].get("depth", depth) == depth
    assert result.meta["classes"] == ["a", "b"]
    assert result.meta["hyperparameters"]["model"] == model


def test_training_learns_separable_classes():
    table, crops = make_crops(96)
    result = train_model(table, crops, label_column="cls", **small(model="cnn2", epochs=4, lr=3e-3))
    assert result.metrics["val"]["accuracy"] >= 0.9


def test_same_seed_same_model_and_streaming_from_zarr(tmp_path):
    table, crops = make_crops(48)
    store = make_store(tmp_path / "p", table, crops)
    cells = store.table()
    first = train_model(cells, store.crops, label_column="cls", preload=False, **small(epochs=2))
    second = train_model(cells, store.crops, label_column="cls", preload=False, **small(epochs=2))
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    assert first.meta["hyperparameters"]["preload"] is False


def test_split_with_test_rows_gives_test_metrics_and_history():
    table, crops = make_crops(64, n_wells=4)
    split = pd.Series("train", index=table.index)
    split[table.well.isin(["A04", "B04"])] = "test"
    split[table.well.isin(["A03", "B03"])] = "val"
    rows = []
    result = train_model(table, crops, label_column="cls", split=split,
                         progress=lambda e, n, row: rows.append((e, n, row)), **small(epochs=2, early_stopping=0))
    assert [r[:2] for r in rows] == [(1, 2), (2, 2)]
    assert result.metrics["test"]["n"] == 16
    assert result.meta["split"]["counts"]["test"] == {"a": 8, "b": 8}
    assert result.meta["split"]["groups"]["test"] == ["A04", "B04"]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "images_per_s"} <= set(result.history[0])


def test_autoencoder_trains_without_labels():
    table, crops = make_crops(32)
    result = train_model(table, crops, label_column=None, **small(model="ae"))
    assert result.meta["task"] == "embedding"
    assert "reconstruction_mse" in result.metrics["val"]


def test_cancel_stops_training():
    table, crops = make_crops(32)
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError, match="cancelled"):
        train_model(table, crops, label_column="cls", cancel=stop, **small())


# -- clear errors --------------------------------------------------------------------


def test_missing_label_column_lists_columns():
    table, crops = make_crops(16)
    with pytest.raises(TrainingError, match=r"'moa' is not in the cell table; columns are: crop_index, plate"):
        train_model(table, crops, label_column="moa", **small())


def test_single_class_is_an_error():
    table, crops = make_crops(16)
    table["cls"] = "a"
    with pytest.raises(TrainingError, match="single class"):
        train_model(table, crops, label_column="cls", **small())


def test_class_without_training_cells_is_an_error():
    table, crops = make_crops(32)
    split = pd.Series(np.where(table.cls == "b", "test", "train"), index=table.index)
    with pytest.raises(TrainingError, match=r"no training cells: 'b' \(16 cells, all in test\)"):
        train_model(table, crops, label_column="cls", split=split, **small())


def test_nan_crop_names_the_crop_and_cell():
    table, crops = make_crops(32)
    crops[7, 1, 3, 3] = np.nan
    train_rows = pd.Series("train", index=table.index)
    with pytest.raises(ValueError, match=r"Crop 7 \(plate P1, well B01, site 1\) contains NaN"):
        train_model(table, crops, label_column="cls", split=train_rows, **small())


def test_table_without_crop_index_is_an_error():
    table, crops = make_crops(16)
    with pytest.raises(TrainingError, match="no 'crop_index' column"):
        train_model(table.drop(columns="crop_index"), crops, label_column="cls", **small())


def test_split_is_matched_to_the_table_by_row_label():
    table, crops = make_crops(32, n_wells=4)
    table.index = table.index[::-1] + 100  # row labels unrelated to positions
    split = pd.Series(np.where(table.well.isin(["A04", "B04"]), "test", "train"), index=table.index)
    result = train_model(table, crops, label_column="cls", split=split.sample(frac=1, random_state=0),
                         **small(early_stopping=0))
    assert result.meta["split"]["groups"]["test"] == ["A04", "B04"]
