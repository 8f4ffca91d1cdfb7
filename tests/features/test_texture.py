"""Texture: GLCM against skimage, SER detectors on synthetic structures."""

from __future__ import annotations

import numpy as np
import pytest
from feature_images import two_rectangles
from skimage.feature import graycomatrix, graycoprops

from napari_hcs.features import measure_cells
from napari_hcs.features.naming import SER_FEATURES


def test_glcm_matches_skimage_on_rectangles():
    image, labels, slices = two_rectangles()
    table = measure_cells(image, labels, channel_names=["A", "B"], texture_scales=(1,), glcm_levels=8)
    for label, region in slices.items():
        for c, channel in enumerate("AB"):
            values = image[c][region].astype(float)
            levels = np.floor((values - values.min()) * 8 / (values.max() - values.min()))
            quantised = np.clip(levels, 0, 7).astype(np.uint8)
            matrix = graycomatrix(
                quantised, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=8, symmetric=True, normed=True
            )
            row = table.loc[table.label == label].iloc[0]
            for prop in ("contrast", "homogeneity", "energy", "correlation", "ASM", "dissimilarity"):
                expected = graycoprops(matrix, prop).mean()
                column = f"feat_nucleus_glcm_{prop.lower()}_s1_{channel}"
                assert row[column] == pytest.approx(expected, rel=1e-5, abs=1e-6), column


def _blob(shape=(41, 41), sigma=3.0, centre=(20, 20)):
    yy, xx = np.indices(shape)
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))


def test_ser_detectors_respond_to_their_structure_at_its_core():
    yy, xx = np.indices((41, 41))
    bar = np.exp(-((xx - 20) ** 2) / (2 * 2.0**2))
    core_of_blob = (np.hypot(yy - 20, xx - 20) <= 3).astype(np.int32)
    core_of_bar = ((np.abs(xx - 20) <= 2) & (yy >= 8) & (yy <= 32)).astype(np.int32)
    structures = {
        "spot": (0.2 + _blob(), core_of_blob),
        "hole": (1.2 - _blob(), core_of_blob),
        "ridge": (0.2 + bar, core_of_bar),
        "valley": (1.2 - bar, core_of_bar),
    }
    for name, (image, core) in structures.items():
        row = measure_cells(image[None].astype(np.float32), core, channel_names=["A"]).iloc[0]
        responses = {kind: row[f"feat_nucleus_ser_{kind}_A"] for kind in SER_FEATURES if kind != "edge"}
        assert max(responses, key=responses.get) == name, (name, responses)
    flat = measure_cells(np.full((1, 41, 41), 5.0), core_of_bar, channel_names=["flat"]).iloc[0]
    for kind in SER_FEATURES:
        assert flat[f"feat_nucleus_ser_{kind}_flat"] == pytest.approx(0.0, abs=1e-6)
    ramp = measure_cells((1.0 + xx / 40.0)[None], core_of_bar, channel_names=["ramp"]).iloc[0]
    assert ramp["feat_nucleus_ser_edge_ramp"] > 10 * ramp["feat_nucleus_ser_spot_ramp"]
