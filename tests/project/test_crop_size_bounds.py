"""The crop size is checked before a cell store is written."""

from __future__ import annotations

import pytest

from napari_hcs.project.cell_store import MAX_CROP_SIZE, CellStore


@pytest.mark.parametrize("size", [0, -4, MAX_CROP_SIZE + 1, 10000, 2.5, True])
def test_bad_crop_sizes_are_refused_and_nothing_is_written(tmp_path, size):
    folder = tmp_path / "project"
    with pytest.raises(ValueError, match="Crop size must be"):
        CellStore.create(folder, channels=["a"], crop_size=size)
    assert not folder.exists()


def test_the_bound_itself_is_accepted(tmp_path):
    assert CellStore.create(tmp_path, channels=["a"], crop_size=MAX_CROP_SIZE, cells_per_chunk=1).crop_size == MAX_CROP_SIZE
