"""measure_cells: the site entry point; fall-backs, degenerate objects, bad input, a real site."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from feature_images import SCPORTRAIT_CHANNELS, SCPORTRAIT_SITE, two_rectangles

from napari_hcs.features import measure_cells


def test_cells_default_to_nuclei_and_missing_cells_fall_back():
    image, labels, _ = two_rectangles(2)
    alone = measure_cells(image, labels, channel_names=["A", "B"])
    nucleus_columns = [c for c in alone if c.startswith("feat_nucleus_")]
    for column in nucleus_columns:
        np.testing.assert_array_equal(alone[column], alone[column.replace("feat_nucleus_", "feat_cell_")])
    cells = np.where(labels == 1, 1, 0)
    cells[0:22, 0:30] = 1  # only nucleus 1 has a cell
    both = measure_cells(image, labels, cells, channel_names=["A", "B"]).set_index("label")
    assert both.loc[1, "feat_cell_area"] == 22 * 30
    assert both.loc[2, "feat_cell_area"] == both.loc[2, "feat_nucleus_area"]
    assert both.loc[2, "feat_cell_mean_A"] == both.loc[2, "feat_nucleus_mean_A"]
    assert both.loc[2, "feat_cell_touching_fraction"] == 0.0


def test_degenerate_objects_give_zeros_not_nan():
    labels = np.zeros((30, 30), np.int32)
    labels[3, 3] = 1  # one pixel
    labels[10, 10:13] = 2  # three pixels in a row
    labels[20:25, 20:25] = 3
    image = np.zeros((2, 30, 30), np.float32)
    image[1, 20:25, 20:25] = 7.0  # constant object
    table = measure_cells(image, labels, channel_names=["zero", "flat"])
    assert not table.isna().any().any()
    assert np.isfinite(table.drop(columns="label").to_numpy()).all()
    row = table.set_index("label").loc[3]
    assert row["feat_nucleus_cv_flat"] == 0 and row["feat_nucleus_glcm_correlation_s1_flat"] == 0
    assert row["feat_nucleus_contrast_zero"] == 0 and row["feat_nucleus_mean_flat"] == 7
    assert table.set_index("label").loc[1, "feat_nucleus_roundness"] == 0
    empty = measure_cells(image, np.zeros((30, 30), np.int32), channel_names=["zero", "flat"])
    assert len(empty) == 0 and "feat_cell_touching_fraction" in empty


def test_label_ids_need_not_be_contiguous():
    image, labels, _ = two_rectangles(3)
    relabelled = np.where(labels == 2, 5000, labels)
    table = measure_cells(image, relabelled, channel_names=["A", "B"])
    reference = measure_cells(image, labels, channel_names=["A", "B"])
    assert list(table.label) == [1, 5000]
    pd.testing.assert_frame_equal(table.drop(columns="label"), reference.drop(columns="label"))


@pytest.mark.parametrize(
    ("image", "nuclei", "message"),
    [
        (np.zeros((2, 10, 10)), np.zeros((10, 10), int), "2 channel"),
        (np.zeros((1, 10, 10)), np.zeros((10, 12), int), "shape"),
        (np.zeros((1, 10, 10)), np.zeros((10, 10), float), "integers"),
        (np.zeros((1, 1, 10, 10)), np.zeros((10, 10), int), r"\(C, Y, X\)"),
        (np.zeros((1, 10, 10), complex), np.zeros((10, 10), int), "real numbers"),
    ],
)
def test_bad_input_is_named(image, nuclei, message):
    with pytest.raises(ValueError, match=message):
        measure_cells(image, nuclei, channel_names=["A"])


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="texture_scales"):
        measure_cells(np.zeros((1, 5, 5)), np.ones((5, 5), int), channel_names=["A"], texture_scales=(0,))
    with pytest.raises(ValueError, match="glcm_levels"):
        measure_cells(np.zeros((1, 5, 5)), np.ones((5, 5), int), channel_names=["A"], glcm_levels=1)


def test_non_finite_pixels_are_background_with_a_warning_naming_the_channel():
    image, labels, slices = two_rectangles(5)
    image = image.astype(np.float32)
    background = image[1].min()
    holed = image.copy()
    holed[1, 6, 6], holed[1, 30, 20], holed[1, 0, 0] = np.nan, np.inf, -np.inf
    with pytest.warns(RuntimeWarning, match="3 NaN or infinite pixel.s. in channel B treated as background"):
        table = measure_cells(holed, labels, channel_names=["A", "B"])
    expected = image.copy()
    expected[1, 6, 6] = expected[1, 30, 20] = expected[1, 0, 0] = background
    pd.testing.assert_frame_equal(table, measure_cells(expected, labels, channel_names=["A", "B"]))
    assert np.isfinite(table.drop(columns="label").to_numpy()).all()
    with pytest.warns(RuntimeWarning, match="100 NaN or infinite pixel.s. in channel A"):
        all_nan = measure_cells(np.full((1, 10, 10), np.nan), np.ones((10, 10), int), channel_names=["A"])
    assert all_nan.loc[0, "feat_nucleus_mean_A"] == 0


def _scportrait_site(folder):
    import tifffile

    return np.stack([tifffile.imread(folder / SCPORTRAIT_SITE.format(channel=c)) for c in SCPORTRAIT_CHANNELS])


def _quick_labels(image):
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import label
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import expand_labels

    dna = gaussian(image[0].astype(np.float32), 2)
    nuclei = label(remove_small_objects(dna > threshold_otsu(dna), max_size=50))
    return nuclei, expand_labels(nuclei, 15)


def test_measure_cells_on_a_real_site(shared_data):
    image = _scportrait_site(shared_data)
    nuclei, cells = _quick_labels(image)
    start = time.process_time()
    table = measure_cells(image, nuclei, cells, channel_names=list(SCPORTRAIT_CHANNELS))
    seconds = time.process_time() - start
    ids = np.unique(nuclei)[1:]
    assert list(table.label) == list(ids) and len(ids) > 50
    assert not table.isna().any().any() and np.isfinite(table.to_numpy()).all()
    # DNA is brighter in the nucleus than in the whole cell; cells are larger than their nuclei.
    assert (table.feat_nucleus_mean_DAPI > table.feat_cell_mean_DAPI).mean() > 0.95
    assert (table.feat_cell_area >= table.feat_nucleus_area).all()
    assert table.feat_cell_touching_fraction.between(0, 1).all() and table.feat_cell_touching_fraction.max() > 0
    assert seconds < 10, f"measuring {len(ids)} cells took {seconds:.1f} s of CPU"
