"""Layer data drawn over a site's cells: class overlay, centroids, labelled cells, picking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from skimage.measure import regionprops_table
from skimage.segmentation import find_boundaries

from napari_hcs.io import open_plate
from napari_hcs.project.annotations import next_class_color
from napari_hcs.samples import sample_layout, sample_path
from napari_hcs.segmentation import SegmentationParams, segment_site
from napari_hcs.viewer.layers import layer_scale
from napari_hcs.viewer.overlays import (
    CENTROIDS_NAME,
    LABELLED_NAME,
    MIN_ALPHA,
    OPACITY_LEVELS,
    OVERLAY_NAME,
    cell_layer_features,
    centroid_points_data,
    class_lookup,
    class_overlay_data,
    inner_boundaries,
    label_at,
    labelled_cells_data,
    overlay_classes,
)
from napari_hcs.vocabulary import META_NAME, META_PLATE, META_ROLE, META_SITE, OVERLAY_ROLE

from plates import make_plate

CLASSES = [{"name": "control", "color": "#e69f00"}, {"name": "treated", "color": "#56b4e9"}]


def _blocks() -> np.ndarray:
    """A 30 x 40 label image with six 10 x 10 cells (labels 1..6) on a background border."""
    labels = np.zeros((30, 40), dtype=np.int32)
    for index in range(6):
        row, column = divmod(index, 3)
        labels[2 + 13 * row : 12 + 13 * row, 2 + 13 * column : 12 + 13 * column] = index + 1
    return labels


def _cells(labels: np.ndarray, predicted, confidence=None) -> pd.DataFrame:
    table = pd.DataFrame(regionprops_table(labels, properties=("label", "centroid")))
    table = table.rename(columns={"centroid-0": "centroid_y", "centroid-1": "centroid_x"})
    table.insert(0, "crop_index", np.arange(len(table)) + 100)
    table["well"] = "B02"
    table["pred_class"] = list(predicted)
    if confidence is not None:
        table["pred_confidence"] = np.asarray(confidence, dtype=np.float32)
    return table


def _value(class_index: int, level: int = OPACITY_LEVELS - 1) -> int:
    return 1 + class_index * OPACITY_LEVELS + level


# -- the lookup table -------------------------------------------------------------


def test_lookup_encodes_class_and_level_in_small_integers():
    cells = _cells(_blocks(), ["control", "treated", None, "", "treated", "control"])
    lut = class_lookup(cells, ["control", "treated"], max_label=6)
    assert lut.dtype == np.uint8 and lut.shape == (7,)
    assert lut.tolist() == [0, _value(0), _value(1), 0, 0, _value(1), _value(0)]
    many = [f"c{i}" for i in range(40)]
    assert class_lookup(cells.assign(pred_class="c39"), many, max_label=6).dtype == np.uint16
    assert class_lookup(cells.assign(pred_class="c39"), many, max_label=6)[1] == _value(39)


def test_lookup_maps_confidence_from_chance_to_certain_onto_levels():
    confidence = [0.5, 1.0, 0.75, 0.5 + 0.5 / OPACITY_LEVELS, np.nan, 0.2]
    cells = _cells(_blocks(), ["control"] * 6, confidence)
    lut = class_lookup(cells, ["control", "treated"], max_label=6, confidence_opacity=True)
    levels = lut[1:].astype(int) - 1
    assert levels.tolist() == [0, OPACITY_LEVELS - 1, OPACITY_LEVELS // 2, 1, OPACITY_LEVELS - 1, 0]
    # With probability columns, chance is 1 / their number (here 4 classes, 0.25).
    four = cells.assign(**{f"prob_{k}": 0.25 for k in "abcd"})
    assert class_lookup(four, ["control"], max_label=6, confidence_opacity=True)[1] - 1 == 2
    opaque = class_lookup(cells, ["control"], max_label=6, confidence_opacity=False)
    assert set(opaque[1:].tolist()) == {_value(0)}


def test_lookup_refuses_unknown_classes_and_skips_labels_outside_the_image():
    cells = _cells(_blocks(), ["control"] * 5 + ["mitotic"])
    with pytest.raises(ValueError, match="'mitotic'.*control, treated"):
        class_lookup(cells, ["control", "treated"], max_label=6)
    lut = class_lookup(cells.assign(pred_class="control"), ["control"], max_label=3)
    assert lut.tolist() == [0, _value(0), _value(0), _value(0)]
    assert not class_lookup(None, ["control"], max_label=3).any()
    assert not class_lookup(cells.drop(columns="pred_class"), ["control"], max_label=3).any()


# -- the overlay layer --------------------------------------------------------------


def test_overlay_colours_every_cell_by_class_and_is_tied_to_the_site():
    plate = make_plate()
    site = plate.site("B02", 0)
    labels = _blocks()
    cells = _cells(labels, ["control", "treated", "treated", None, "mitotic", "control"])
    data, kwargs, kind = class_overlay_data(plate, site, labels, cells, CLASSES)
    assert kind == "labels" and data.shape == labels.shape and data.dtype == np.uint8
    assert kwargs["name"] == OVERLAY_NAME and kwargs["scale"] == layer_scale(plate)
    assert kwargs["opacity"] == 0.6 and kwargs["blending"] == "translucent"
    meta = kwargs["metadata"]
    assert meta[META_PLATE] is plate and meta[META_SITE] == site
    assert (meta[META_ROLE], meta[META_NAME]) == (OVERLAY_ROLE, OVERLAY_NAME)
    # Each cell's pixels hold its class value; background and unpredicted cells are 0.
    expected = {0: 0, 1: _value(0), 2: _value(1), 3: _value(1), 4: 0, 5: _value(2), 6: _value(0)}
    for label, value in expected.items():
        assert set(np.unique(data[labels == label]).tolist()) == {value}
    colours = kwargs["colormap"]
    assert len(colours) == 3 * OPACITY_LEVELS + 2  # a few entries, never one per cell
    assert colours[0][3] == 0 and colours[None][3] == 0
    assert colours[_value(1)] == pytest.approx(to_rgba("#56b4e9"))
    # A predicted class missing from the class list gets the next default colour.
    assert colours[_value(2)] == pytest.approx(to_rgba(next_class_color(CLASSES)))
    assert colours[_value(0, 0)][3] == pytest.approx(MIN_ALPHA)
    features = kwargs["features"].set_index("index")
    assert features.loc[_value(2), "class"] == "mitotic"


def test_outlines_keep_only_the_inner_boundary_of_each_cell():
    plate = make_plate()
    labels = _blocks()
    cells = _cells(labels, ["control", "treated"] * 3)
    filled, _, _ = class_overlay_data(plate, plate.site("B02", 0), labels, cells, CLASSES)
    outlined, _, _ = class_overlay_data(plate, plate.site("B02", 0), labels, cells, CLASSES, outlines=True)
    boundary = find_boundaries(labels, mode="inner")
    np.testing.assert_array_equal(outlined, np.where(boundary, filled, 0))
    again, _, _ = class_overlay_data(plate, plate.site("B02", 0), labels, cells.assign(pred_class="treated"),
                                     CLASSES, outlines=True)  # cached boundaries, new classes
    assert set(np.unique(again[boundary]).tolist()) == {_value(1)}
    labels[2:12, 2:12] = 0  # edited in place (as napari's paint tools do): new boundaries
    other, _, _ = class_overlay_data(plate, plate.site("B02", 0), labels, cells, CLASSES, outlines=True)
    assert not other[2:12, 2:12].any() and other[2, 15] == _value(1)


def test_inner_boundaries_are_those_of_scikit_image():
    rng = np.random.default_rng(3)
    for shape in [(1, 7), (9, 1), (23, 31)]:
        labels = rng.integers(0, 4, size=shape)
        np.testing.assert_array_equal(inner_boundaries(labels), find_boundaries(labels, mode="inner"))
    np.testing.assert_array_equal(inner_boundaries(_blocks()), find_boundaries(_blocks(), mode="inner"))


def test_overlay_classes_keep_given_colours_and_add_new_ones_once():
    shown = overlay_classes(CLASSES, ["b", "control", "b", float("nan"), "c"])
    assert [c["name"] for c in shown] == ["control", "treated", "b", "c"]
    assert shown[2]["color"] == next_class_color(CLASSES)
    assert shown[3]["color"] == next_class_color(shown[:3])


# -- points ---------------------------------------------------------------------------


def test_centroid_points_carry_the_predictions_in_class_colours():
    plate = make_plate()
    labels = _blocks()
    cells = _cells(labels, ["control", None, "treated", "control", "treated", ""], [0.9] * 6)
    cells["pred_margin"] = np.float32(0.4)
    cells["prob_control"] = np.float32(0.9)
    cells["prob_treated"] = np.float32(0.1)
    cells["feat_area"] = 100.0
    yx, kwargs, kind = centroid_points_data(plate, plate.site("B02", 0), cells, CLASSES)
    assert kind == "points" and kwargs["name"] == CENTROIDS_NAME and kwargs["visible"]
    predicted = cells[cells["pred_class"].fillna("") != ""]
    np.testing.assert_allclose(yx, predicted[["centroid_y", "centroid_x"]].to_numpy())
    features = kwargs["features"]
    assert list(features.columns) == ["crop_index", "label", "pred_class", "pred_confidence", "pred_margin",
                                      "prob_control", "prob_treated"]
    assert features["label"].tolist() == [1, 3, 4, 5]
    np.testing.assert_allclose(kwargs["face_color"][1], to_rgba("#56b4e9"))
    assert kwargs["metadata"][META_NAME] == CENTROIDS_NAME
    empty, kwargs, _ = centroid_points_data(plate, plate.site("B02", 0), cells.drop(columns="pred_class"), CLASSES)
    assert empty.shape == (0, 2) and kwargs["face_color"].shape == (0, 4)


def test_labelled_cells_are_ringed_in_their_class_colour():
    plate = make_plate()
    cells = _cells(_blocks(), [None] * 6)
    given = pd.DataFrame({"crop_index": [101, 104, 999], "well": "B02", "site_key": "x", "label": [2, 5, 1],
                          "class": ["treated", "control", "control"]})
    yx, kwargs, kind = labelled_cells_data(plate, plate.site("B02", 0), cells, given, CLASSES)
    assert kind == "points" and kwargs["name"] == LABELLED_NAME and kwargs["symbol"] == "ring"
    assert kwargs["features"]["label"].tolist() == [2, 5]
    np.testing.assert_allclose(yx, cells.set_index("label").loc[[2, 5], ["centroid_y", "centroid_x"]])
    np.testing.assert_allclose(kwargs["face_color"], [to_rgba("#56b4e9"), to_rgba("#e69f00")])
    none, _, _ = labelled_cells_data(plate, plate.site("B02", 0), cells, given.iloc[:0], CLASSES)
    assert none.shape == (0, 2)


# -- features and picking ----------------------------------------------------------------


def test_cell_layer_features_are_the_rows_indexed_by_label():
    cells = _cells(_blocks(), ["control"] * 6).sample(frac=1.0, random_state=0)
    cells["index"] = -1  # a stale column of that name is replaced
    features = cell_layer_features(cells)
    assert features.columns[0] == "index"
    assert features["index"].tolist() == features["label"].tolist() == [1, 2, 3, 4, 5, 6]
    assert {"crop_index", "well", "pred_class", "centroid_y"} <= set(features.columns)
    assert features.set_index("label").loc[3, "crop_index"] == 102


def test_label_at_reads_the_cell_under_a_position():
    labels = _blocks()
    assert label_at(labels, (7, 7)) == 1
    assert label_at(labels, (6.6, 19.4)) == 2  # rounds to the nearest pixel centre
    assert label_at(labels, (0, 7.0, 7.0)) == 1  # leading (e.g. time) coordinates are ignored
    assert label_at(labels, (0, 0)) == 0  # background
    assert label_at(labels, (-3, 5)) == 0 and label_at(labels, (5, 400)) == 0  # outside
    assert label_at(labels, (np.nan, 5)) == 0
    assert label_at(labels, (7 * 0.65, 33 * 0.65), scale=(0.65, 0.65)) == 3


# -- the real sample ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_site():
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    site = plate.site("B02")
    params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
    _, cells = segment_site(plate.read_site(site), params, plate.channels)
    return plate, site, cells


def test_overlay_on_a_segmented_site_of_the_real_sample(sample_site):
    plate, site, labels = sample_site
    n_cells = int(labels.max())
    assert n_cells > 5
    names = np.where(np.arange(1, n_cells + 1) % 2 == 0, "treated", "control")
    cells = _cells(labels, names, np.linspace(0.5, 1.0, n_cells))
    data, kwargs, _ = class_overlay_data(plate, site, labels, cells, CLASSES, confidence_opacity=True)
    assert data.shape == labels.shape
    assert not data[labels == 0].any() and data[labels > 0].all()
    for row in cells.itertuples():
        values = np.unique(data[labels == row.label])
        assert values.size == 1
        assert (int(values[0]) - 1) // OPACITY_LEVELS == (0 if row.pred_class == "control" else 1)
        y, x = np.argwhere(labels == row.label)[0]
        assert label_at(labels, (y, x)) == row.label
    levels = (data[labels > 0].astype(int) - 1) % OPACITY_LEVELS
    assert levels.min() == 0 and levels.max() == OPACITY_LEVELS - 1
    features = cell_layer_features(cells)
    assert features["index"].tolist() == list(range(1, n_cells + 1))
