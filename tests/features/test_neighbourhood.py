"""Neighbourhood: density, nearest distance and touching fraction on known layouts."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from napari_hcs.features import measure_cells


def test_neighbourhood_density_nearest_and_touching():
    nuclei = np.zeros((100, 100), np.int32)
    centres = {1: (20, 20), 2: (20, 30), 3: (80, 80)}
    for label, (y, x) in centres.items():
        nuclei[y - 2 : y + 3, x - 2 : x + 3] = label
    cells = np.zeros_like(nuclei)
    cells[10:31, 10:25] = 1  # cells 1 and 2 share the border at x = 24 / 25
    cells[10:31, 25:40] = 2
    cells[70:91, 70:91] = 3
    table = measure_cells(
        np.ones((1, 100, 100)), nuclei, cells, channel_names=["A"], density_radius=15
    ).set_index("label")
    assert list(table["feat_neighbourhood_count"]) == [1, 1, 0]
    np.testing.assert_allclose(table["feat_neighbourhood_nearest_distance"], [10, 10, np.hypot(60, 50)], rtol=1e-6)
    touching = table["feat_cell_touching_fraction"]
    assert touching[3] == 0.0
    # Cell 1 is a 21 x 15 box: 68 border pixels, the 21 of its right column touch cell 2.
    assert touching[1] == pytest.approx(21 / 68)
    assert table.loc[1, "feat_cell_area"] == 21 * 15 and table.loc[1, "feat_nucleus_area"] == 25


def test_default_density_radius_is_five_nucleus_diameters():
    nuclei = np.zeros((300, 300), np.int32)
    nuclei[disk((50, 50), 5)] = 1  # diameter about 10: radius 50
    nuclei[disk((50, 95), 5)] = 2
    nuclei[disk((50, 160), 5)] = 3
    table = measure_cells(np.ones((1, 300, 300)), nuclei, channel_names=["A"])
    assert list(table["feat_neighbourhood_count"]) == [1, 1, 0]
