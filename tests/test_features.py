"""Classical per-cell features: definitions against references, edge cases, real data."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk, line
from skimage.feature import graycomatrix, graycoprops
from skimage.measure import regionprops_table

from napari_hcs.features.measure import (
    GLCM_FEATURES,
    INTENSITY_FEATURES,
    SER_FEATURES,
    SHAPE_FEATURES,
    crop_features,
    feature_groups,
    find_crop_nuclei,
    measure_cells,
    parse_feature_name,
)

SCPORTRAIT_SITE = (
    "scportrait_timecourse/input_images/Row02_Well02_r000_c000/"
    "Timepoint001_Row02_Well02_{channel}_zstack001_r000_c000.tif"
)
SCPORTRAIT_CHANNELS = ("DAPI", "Alexa488", "mCherry")


def _two_rectangles(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 1000, size=(2, 40, 50)).astype(np.uint16)
    labels = np.zeros((40, 50), np.int32)
    labels[5:20, 5:25] = 1
    labels[25:38, 10:45] = 2
    slices = {1: (slice(5, 20), slice(5, 25)), 2: (slice(25, 38), slice(10, 45))}
    return image, labels, slices


def test_glcm_matches_skimage_on_rectangles():
    image, labels, slices = _two_rectangles()
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


def test_intensity_statistics_match_numpy():
    image, labels, slices = _two_rectangles(1)
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


def test_cells_default_to_nuclei_and_missing_cells_fall_back():
    image, labels, _ = _two_rectangles(2)
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
    image, labels, _ = _two_rectangles(3)
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
        (np.full((1, 10, 10), np.nan), np.zeros((10, 10), int), "100 NaN or infinite"),
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


def test_every_column_parses_and_groups():
    image, labels, _ = _two_rectangles(4)
    channels = ["DAPI", "GFP_488"]  # an underscore inside a channel name
    table = measure_cells(image, labels, channel_names=channels)
    columns = [c for c in table if c != "label"]
    parsed = [parse_feature_name(c) for c in columns]
    per_compartment = (
        len(SHAPE_FEATURES) + len(channels) * (len(INTENSITY_FEATURES) + 2 * len(GLCM_FEATURES) + len(SER_FEATURES))
    )
    assert len(columns) == 2 * per_compartment + 3
    assert {p.channel for p in parsed} == {None, "DAPI", "GFP_488"}
    assert parse_feature_name("feat_cell_glcm_asm_s2_GFP_488").scale == 2
    by_kind = feature_groups(table.columns)
    assert set(by_kind) == {"shape", "intensity", "texture", "ser", "neighbourhood"}
    assert sum(len(v) for v in by_kind.values()) == len(columns)
    by_channel = feature_groups(list(table.columns) + ["crop_index", "emb_0"], by="channel")
    assert len(by_channel["GFP_488"]) == len(by_channel["DAPI"])
    with pytest.raises(ValueError, match="not a feature column"):
        parse_feature_name("feat_whatever")


def _synthetic_crops(n=6, size=40):
    crops = np.zeros((n, 2, size, size), np.float32)
    for k in range(n):
        crops[k, 0][disk((size // 2, size // 2), 6 + k % 3)] = 100 + 10 * k
        crops[k, 0][disk((5, 5), 4)] = 300  # a brighter neighbour in the corner
        crops[k, 1] = 10 + k
    crops[-1] = 0  # an empty crop
    return crops


def test_crop_nuclei_are_the_components_at_the_centre():
    crops = _synthetic_crops()
    masks = find_crop_nuclei(crops[:, 0])
    assert masks.shape == crops[:, 0].shape
    for k in range(len(crops) - 1):
        assert masks[k, 20, 20] and not masks[k, 5, 5]
        # Otsu on the smoothed stain sits a little above the half-maximum of the edge.
        assert masks[k].sum() == pytest.approx(np.pi * (6 + k % 3) ** 2, rel=0.25)
    assert not masks[-1].any()


def test_crop_features_measure_nucleus_and_whole_crop():
    crops = _synthetic_crops()
    seen = []
    table = crop_features(
        crops, channel_names=["DNA", "other"], batch_size=4, progress=lambda done, total: seen.append(done)
    )
    assert seen == [4, 6] and len(table) == len(crops)
    assert not table.isna().any().any()
    assert all(parse_feature_name(c).compartment in ("nucleus", "crop") for c in table)
    assert table.loc[0, "feat_nucleus_mean_DNA"] == pytest.approx(100)
    assert table.loc[0, "feat_crop_mean_other"] == pytest.approx(10)
    assert table.loc[0, "feat_nucleus_solidity"] == pytest.approx(1.0)
    empty = table.iloc[-1]
    assert (empty[[c for c in table if c.startswith("feat_nucleus_")]] == 0).all()
    assert empty["feat_crop_glcm_homogeneity_s1_DNA"] == 1.0  # a flat crop is perfectly homogeneous
    by_name = crop_features(crops, channel_names=["DNA", "other"], nucleus_channel="DNA")
    pd.testing.assert_frame_equal(by_name, table)
    with pytest.raises(ValueError, match="not one of"):
        crop_features(crops, channel_names=["DNA", "other"], nucleus_channel="Hoechst")
    with pytest.raises(InterruptedError):
        crop_features(crops, channel_names=["DNA", "other"], cancel=lambda: True)


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


def test_crop_features_on_real_crops(shared_data):
    crops = np.load(shared_data / "bbbc021_crops" / "bbbc021_crops.npz")["crops"][::15]
    table = crop_features(crops, channel_names=["DNA", "tubulin", "actin"])
    assert len(table) == len(crops) and not table.isna().any().any()
    assert (table.feat_nucleus_area > 100).mean() > 0.95  # a nucleus is found in (nearly) every crop
    assert (table.feat_nucleus_mean_DNA > table.feat_crop_mean_DNA).all()
