"""Shape against skimage's regionprops; solidity of digitally convex objects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk, line
from skimage.measure import regionprops_table

from napari_hcs.features import measure_cells


def test_shape_matches_regionprops_and_solidity_is_digital():
    labels = np.zeros((80, 80), np.int32)
    labels[disk((20, 20), 9)] = 1
    labels[50:70, 10:18] = 2  # rectangle
    labels[45:75, 40:46] = 3  # L shape: a bar and a foot
    labels[69:75, 46:70] = 3
    rr, cc = line(5, 40, 30, 75)
    labels[rr, cc] = 4  # one-pixel-wide diagonal line
    table = measure_cells(np.ones((1, 80, 80)), labels, channel_names=["A"]).set_index("label")
    reference = pd.DataFrame(
        regionprops_table(
            labels,
            properties=["label", "area", "perimeter", "eccentricity", "axis_minor_length", "axis_major_length"],
        )
    ).set_index("label")
    pairs = {
        "area": "area",
        "perimeter": "perimeter",
        "eccentricity": "eccentricity",
        "width": "axis_minor_length",
        "length": "axis_major_length",
    }
    for ours, theirs in pairs.items():
        np.testing.assert_allclose(table[f"feat_nucleus_{ours}"], reference[theirs], rtol=1e-5, atol=1e-5)
    solidity = table["feat_nucleus_solidity"]
    assert solidity[1] == pytest.approx(1.0) and solidity[2] == pytest.approx(1.0)
    assert solidity[4] == pytest.approx(1.0)  # a digital straight line is convex
    l_area = 30 * 6 + 6 * 24
    assert solidity[3] < 0.7 and table.loc[3, "feat_nucleus_area"] == l_area
    roundness = table["feat_nucleus_roundness"]
    assert roundness[1] > 0.85 and roundness[4] < 0.3
    ratio = table["feat_nucleus_width_length_ratio"]
    assert ratio[1] > 0.9 and ratio[2] == pytest.approx(
        table.loc[2, "feat_nucleus_width"] / table.loc[2, "feat_nucleus_length"], rel=1e-5
    )
