"""Epoch batches: chunk-grouped sampling, class balance, distributed shards, whole-batch reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from napari_hcs.nn.sampling import ChunkBatchSampler, CropDataset, DeviceBatches, StreamingBatches, prefetched
from training_cells import make_crops

torch.set_num_threads(1)


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


def test_device_and_streaming_batches_give_the_same_epoch():
    _, crops = make_crops(24)
    labels = np.arange(24) % 2
    in_memory = DeviceBatches(torch.from_numpy(crops), torch.from_numpy(labels),
                              ChunkBatchSampler(np.arange(24), batch_size=8, seed=1))
    streaming = StreamingBatches(CropDataset(crops, np.arange(24), labels),
                                 ChunkBatchSampler(np.arange(24), batch_size=8, seed=1), torch.device("cpu"))
    assert len(in_memory) == len(streaming) == 3
    for (x1, y1), (x2, y2) in zip(in_memory.epoch(2), streaming.epoch(2)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_prefetched_raises_the_producers_error_in_the_consumer():
    def items():
        yield 1
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        list(prefetched(items(), 2))
