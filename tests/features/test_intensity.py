"""Intensity statistics against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import two_rectangles

from napari_hcs.features import measure_cells


def test_intensity_statistics_match_numpy():
    image, labels, slices = two_rectangles(1)
    table = measure_cells(image, labels, channel_names=["A", "B"])
    for label, region in slices.items():
        values = image[1][region].astype(float)
        row = table.loc[table.label == label].iloc[0]
        expected = {
            "mean": values.mean(),
            "std": values.std(),
            "cv": values.std() / values.mean(),
            "min": values.min(),
            "max": values.max(),
            "median": np.median(values),
            "sum": values.sum(),
            "contrast": (values.max() - values.min()) / (values.max() + values.min()),
        }
        for stat, value in expected.items():
            assert row[f"feat_nucleus_{stat}_B"] == pytest.approx(value, rel=1e-5), stat
