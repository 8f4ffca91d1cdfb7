"""Nuclei on synthetic images: splitting, borders, artefacts, thresholds and odd inputs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hcs.segmentation import NucleiOptions, estimate_diameter, instance_f1, segment_nuclei
from napari_hcs.vocabulary import AUTOMATIC_THRESHOLDS, SPLIT_METHODS

from segmentation_images import discs

GRID = [(r, c) for r in (30, 90, 150) for c in (30, 90, 150)]


def test_separate_discs_found_with_estimated_diameter():
    image, truth = discs((180, 180), GRID, 12)
    labels = segment_nuclei(image)
    assert labels.dtype == np.int32
    assert labels.max() == 9
    assert instance_f1(truth, labels, 0.7) == 1.0
    # Calibrated on mildly elliptic nuclei, so perfect discs come out up to 18 % larger.
    assert 22 <= estimate_diameter(image) <= 29


def test_touching_pairs_are_split():
    centres = [(40, 30), (40, 52), (110, 40), (130, 58)]
    image, truth = discs((160, 100), centres, 12)
    labels = segment_nuclei(image, diameter=24)
    assert labels.max() == 4
    assert instance_f1(truth, labels, 0.5) == 1.0


def test_touching_pair_kept_whole_without_split():
    image, _ = discs((80, 100), [(40, 35), (40, 57)], 12)
    assert segment_nuclei(image, diameter=24, split="none").max() == 1
    assert segment_nuclei(image, diameter=24, split="intensity").max() >= 1


def test_every_split_method_of_the_vocabulary_runs():
    image, _ = discs((120, 120), [(30, 30), (30, 90), (90, 60)], 12)
    for split in SPLIT_METHODS:
        assert segment_nuclei(image, diameter=24, split=split).max() == 3
    with pytest.raises(ValueError, match=", ".join(SPLIT_METHODS)):
        segment_nuclei(image, split="random")


def test_labels_are_sequential_and_holes_filled():
    image, _ = discs((100, 160), [(50, 30), (50, 80), (50, 130)], 14)
    rows, cols = np.indices(image.shape)
    image[(rows - 50) ** 2 + (cols - 80) ** 2 <= 16] = 10.0  # a dark hole in the middle nucleus
    labels = segment_nuclei(image, diameter=28, exclude_border=True)
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    assert labels[50, 80] == labels[50, 90] != 0


def test_border_nuclei_excluded_on_request():
    image, _ = discs((100, 100), [(50, 50), (50, 4), (96, 70)], 10)
    assert segment_nuclei(image, diameter=20).max() == 3
    kept = segment_nuclei(image, diameter=20, exclude_border=True)
    assert kept.max() == 1
    assert kept[50, 50] == 1


def test_empty_image_warns_and_gives_zeros():
    for image in (np.zeros((64, 64), np.uint16), np.full((64, 64), 7.5)):
        with pytest.warns(UserWarning, match="empty"):
            labels = segment_nuclei(image)
        assert labels.shape == (64, 64) and labels.dtype == np.int32 and not labels.any()


def test_nan_pixels_are_background_and_warn():
    image, truth = discs((120, 120), [(30, 30), (30, 90), (90, 60)], 12)
    image[0:5, :] = np.nan
    image[60, 60] = np.inf
    with pytest.warns(UserWarning, match="601 NaN or infinite pixel.s. in the image treated as background"):
        labels = segment_nuclei(image)
    assert labels.max() == 3
    assert not labels[0:5].any()


def test_saturated_nuclei_and_integer_types():
    image, truth = discs((180, 180), GRID, 12, value=90000.0, background=2000.0, noise=300.0)
    saturated = np.clip(image, 0, 65535).astype(np.uint16)
    assert (saturated == 65535).mean() > 0.05
    counts = {
        "uint16": segment_nuclei(saturated).max(),
        "uint8": segment_nuclei((saturated // 257).astype(np.uint8)).max(),
        "float32": segment_nuclei(saturated.astype(np.float32) / 65535).max(),
    }
    assert counts == {"uint16": 9, "uint8": 9, "float32": 9}
    with pytest.warns(UserWarning, match="empty"):
        assert segment_nuclei(np.full((50, 50), 65535, np.uint16)).max() == 0


def test_artefacts_removed():
    image, _ = discs((200, 200), [(40, 40), (40, 120), (120, 40)], 10)
    image[170:174, 10:110] = 200.0  # a fibre: 4 px wide, 100 px long
    labels = segment_nuclei(image, diameter=20)
    assert labels.max() == 3
    assert not labels[172, 60]
    image[110:200, 120:200] = 200.0  # a large blob, far above 10 nucleus areas
    assert segment_nuclei(image, diameter=20).max() == 3


def test_bright_debris_removed_only_on_request():
    image, _ = discs((120, 240), [(40, 40), (40, 100), (40, 160), (90, 70), (90, 130)], 10)
    image[85:95, 195:205] = 1000.0  # five times brighter than the nuclei
    assert segment_nuclei(image, diameter=20).max() == 6
    assert segment_nuclei(image, diameter=20, max_intensity_quantile=0.5).max() == 5


def test_bright_hair_does_not_hide_dim_nuclei():
    centres = [(r, c) for r in (40, 110, 180, 250) for c in (40, 110, 180)]
    image, truth = discs((300, 300), centres, 12)
    image[:, 240:262] = 3000.0  # a hair 22 px wide, 15 times brighter than the nuclei
    labels = segment_nuclei(image)
    assert labels.max() == 12
    assert instance_f1(truth, labels, 0.5) == 1.0


def test_threshold_options():
    image, _ = discs((180, 180), GRID, 12)
    for method in AUTOMATIC_THRESHOLDS:
        assert segment_nuclei(image, threshold=method).max() == 9
    assert segment_nuclei(image, threshold="manual", threshold_value=100).max() == 9
    with pytest.raises(ValueError, match="threshold_value"):
        segment_nuclei(image, threshold="manual")
    with pytest.raises(ValueError, match="only used with threshold='manual'"):
        segment_nuclei(image, threshold_value=100)
    with pytest.raises(ValueError, match="otsu"):
        segment_nuclei(image, threshold="median")
    with pytest.raises(ValueError, match="2D"):
        segment_nuclei(np.zeros((2, 10, 10)))
    with pytest.raises(ValueError, match="real numbers"):
        segment_nuclei(np.zeros((10, 10), complex))


def test_options_object_and_names_agree():
    image, _ = discs((100, 160), [(50, 30), (50, 80), (50, 130)], 10)
    options = NucleiOptions(diameter=20, split="none", exclude_border=True)
    by_name = segment_nuclei(image, diameter=20, split="none", exclude_border=True)
    assert np.array_equal(segment_nuclei(image, options), by_name)
    assert np.array_equal(segment_nuclei(image, NucleiOptions(diameter=40), diameter=20, split="none",
                                         exclude_border=True), by_name)
    with pytest.raises(TypeError, match="colour"):
        segment_nuclei(image, colour="red")
    for bad, message in (
        ({"local_contrast": 1.0}, "local_contrast"),
        ({"threshold_correction": 0}, "threshold_correction"),
        ({"diameter": -3}, "positive"),
        ({"max_intensity_quantile": 2}, "max_intensity_quantile"),
        ({"threshold": "li", "threshold_value": 3}, "only used with threshold='manual'"),
    ):
        with pytest.raises(ValueError, match=message):
            segment_nuclei(image, **bad)


def test_hole_filling_matches_scipy():
    from scipy import ndimage as ndi

    from napari_hcs.segmentation._labels import fill_holes

    rng = np.random.default_rng(1)
    for density in (0.0, 0.3, 0.55, 0.7, 1.0):
        mask = ndi.binary_opening(rng.random((60, 80)) < density)
        assert np.array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))
