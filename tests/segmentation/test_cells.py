"""Cells grown from their nuclei on a cytoplasm channel, or by a distance."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hcs.segmentation import expand_nuclei, segment_cells, segment_nuclei

from segmentation_images import two_cells


def test_cells_grow_from_their_nuclei():
    nuclei_image, cell_image = two_cells()
    nuclei = segment_nuclei(nuclei_image, diameter=20)
    cells = segment_cells(cell_image, nuclei)
    assert cells.dtype == np.int32
    assert set(np.unique(cells)) == {0, 1, 2}
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    areas = np.bincount(cells.ravel())[1:]
    assert np.all(areas > 0.8 * np.pi * 30**2) and np.all(areas < 1.2 * np.pi * 30**2)
    limited = segment_cells(cell_image, nuclei, max_distance=5)
    assert np.bincount(limited.ravel())[1:].max() < np.pi * 16**2


def test_cells_keep_nuclei_where_channel_is_dark():
    nuclei_image, cell_image = two_cells()
    nuclei = segment_nuclei(nuclei_image, diameter=20)
    dark = cell_image.copy()
    dark[:, 100:] = 10.0
    cells = segment_cells(dark, nuclei)
    assert np.all(cells[nuclei == 2] == 2)
    assert np.array_equal(segment_cells(np.zeros_like(dark), nuclei), nuclei)


def test_cells_input_errors():
    nuclei_image, cell_image = two_cells()
    nuclei = segment_nuclei(nuclei_image, diameter=20)
    with pytest.raises(ValueError, match="must be the same"):
        segment_cells(cell_image[:50], nuclei)
    with pytest.raises(ValueError, match="integer label image"):
        segment_cells(cell_image, nuclei.astype(float))
    with pytest.raises(ValueError, match="negative"):
        segment_cells(cell_image, -nuclei)


def test_expand_nuclei_without_overlap():
    nuclei = np.zeros((40, 40), np.int32)
    nuclei[10, 10] = 3
    nuclei[10, 16] = 5
    cells = expand_nuclei(nuclei, 4)
    assert set(np.unique(cells)) == {0, 3, 5}
    assert cells[10, 12] == 3 and cells[10, 14] == 5
    assert cells[10, 20] == 5 and cells[10, 21] == 0
    with pytest.raises(ValueError, match=">= 0"):
        expand_nuclei(nuclei, -1)
