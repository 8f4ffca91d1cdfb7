"""Reading crops by index: any order from a chunked zarr store, NaN crops named."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from napari_hcs.nn.crop_reader import CropReader, check_finite_crops, chunk_rows
from training_cells import make_crops


def _store(tmp_path, crops, chunk=8):
    array = zarr.open_array(store=str(tmp_path / "c.zarr"), mode="w", shape=crops.shape,
                            chunks=(chunk, *crops.shape[1:]), dtype="float32")
    array[:] = crops
    return array


def test_crop_reader_reads_any_order_from_zarr(tmp_path):
    _, crops = make_crops(50)
    array = _store(tmp_path, crops)
    order = np.random.default_rng(1).permutation(50)[:30]
    assert chunk_rows(array) == 8
    assert np.array_equal(CropReader(array, cache_chunks=2).read(order), crops[order])


def test_crop_reader_refuses_rows_outside_the_store():
    _, crops = make_crops(8)
    with pytest.raises(IndexError, match="crop_index 8 is outside the crop store"):
        CropReader(crops).read([0, 8])


def test_nan_crop_is_named_with_its_cell(tmp_path):
    _, crops = make_crops(16)
    crops[11, 2, 0, 0] = np.inf
    reader = CropReader(_store(tmp_path, crops), describe=lambda i: f"cell {i} of well A01")
    with pytest.raises(ValueError, match=r"Crop 11 \(cell 11 of well A01\) contains NaN or infinite pixels"):
        list(reader.iter_batches(np.arange(16), 5))
    check_finite_crops(np.zeros((2, 1, 4, 4), dtype=np.uint8), np.arange(2))  # integers are always finite
