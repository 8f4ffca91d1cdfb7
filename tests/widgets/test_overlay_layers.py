"""The overlay layer data in a real napari viewer: the colours drawn are the class colours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from skimage.measure import regionprops
from skimage.morphology import disk, erosion

from napari_hcs.io import open_plate
from napari_hcs.samples import sample_layout, sample_path
from napari_hcs.segmentation import SegmentationParams, segment_site
from napari_hcs.viewer.layers import apply_layer_data, put_layer_data, site_layer_data
from napari_hcs.vocabulary import META_SITE
from napari_hcs.viewer.overlays import (
    MIN_ALPHA,
    OVERLAY_NAME,
    cell_layer_features,
    centroid_points_data,
    class_overlay_data,
    label_at,
    labelled_cells_data,
)

pytestmark = pytest.mark.gui

CLASSES = [{"name": "Unstimulated", "color": "#e69f00"}, {"name": "Stimulated", "color": "#56b4e9"}]


@pytest.fixture(scope="module")
def segmented():
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    site = plate.site("B02")
    params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
    _, labels = segment_site(plate.read_site(site), params, plate.channels)
    rows = []
    for region in regionprops(labels):
        y, x = region.centroid
        rows.append({"crop_index": 1000 + region.label, "well": site.well, "field": site.field,
                     "timepoint": site.timepoint, "label": region.label, "centroid_y": y, "centroid_x": x})
    cells = pd.DataFrame(rows)
    cells["pred_class"] = np.where(cells["label"] % 2 == 0, "Stimulated", "Unstimulated")
    cells["pred_confidence"] = np.float32(1.0)
    return plate, site, labels, cells


def _canvas_pixel(viewer, shot: np.ndarray, yx) -> np.ndarray:
    """RGB of the screenshot at a world position (the camera's centre is the canvas centre)."""
    height = viewer.window._qt_viewer.canvas.size[0]  # logical pixels; the shot may be hi-dpi
    zoom = viewer.scene.camera.zoom * shot.shape[0] / height
    centre_y, centre_x = viewer.scene.camera.center[-2:]
    row = round(shot.shape[0] / 2 + (yx[0] - centre_y) * zoom)
    column = round(shot.shape[1] / 2 + (yx[1] - centre_x) * zoom)
    return shot[row, column, :3].astype(int)


def _inside_points(labels: np.ndarray, cells: pd.DataFrame) -> list[tuple[int, tuple[int, int]]]:
    """A pixel well inside each cell (its centroid when that lies in the cell)."""
    points = []
    for row in cells.itertuples():
        core = erosion(labels == row.label, disk(3))
        y, x = round(row.centroid_y), round(row.centroid_x)
        if core[y, x]:
            points.append((row.label, (y, x)))
    return points


def test_screenshot_colours_at_centroids_are_the_predicted_class_colours(make_napari_viewer, qtbot, segmented):
    plate, site, labels, cells = segmented
    viewer = make_napari_viewer(show=True)
    shown = apply_layer_data(viewer, site_layer_data(plate, site, labels=False))
    for layer in shown:
        layer.visible = False  # only the overlay is drawn, over black
    data, kwargs, _ = class_overlay_data(plate, site, labels, cells, CLASSES)
    overlay = viewer.add_labels(data, **{**kwargs, "opacity": 1.0})  # the default 0.6 lets the image show
    viewer.reset_view()
    qtbot.wait(50)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    points = _inside_points(labels, cells)
    assert len(points) >= 5
    colours = {c["name"]: np.array(to_rgb(c["color"])) * 255 for c in CLASSES}
    by_label = cells.set_index("label")["pred_class"]
    for label, yx in points:
        drawn = _canvas_pixel(viewer, shot, yx)
        assert np.abs(drawn - colours[by_label[label]]).max() <= 3, (label, drawn)
    # Low confidence draws the cell faint: the lowest level's alpha over black.
    faint = cells.assign(pred_confidence=np.float32(0.5))
    put_layer_data(viewer, class_overlay_data(plate, site, labels, faint, CLASSES, confidence_opacity=True))
    assert viewer.layers[OVERLAY_NAME] is overlay
    shot = viewer.screenshot(canvas_only=True, flash=False)
    label, yx = points[0]
    expected = colours[by_label[label]] * MIN_ALPHA
    assert np.abs(_canvas_pixel(viewer, shot, yx) - expected).max() <= 4


def test_points_and_features_go_into_napari_and_another_site_replaces_them(make_napari_viewer, segmented):
    plate, site, labels, cells = segmented
    viewer = make_napari_viewer()
    apply_layer_data(viewer, site_layer_data(plate, site, labels=False))
    cells_layer = viewer.add_labels(labels, name="cells", features=cell_layer_features(cells))
    assert cells_layer.features.loc[0, "crop_index"] == cells["crop_index"].iloc[0]
    for layer_data in (class_overlay_data(plate, site, labels, cells, CLASSES),
                       centroid_points_data(plate, site, cells, CLASSES),
                       labelled_cells_data(plate, site, cells, cells.iloc[:2].assign(**{"class": "Stimulated"}),
                                           CLASSES)):
        put_layer_data(viewer, layer_data)
    points = viewer.layers["cell centroids"]
    assert len(points.data) == len(cells) and points.features["pred_class"].tolist() == cells["pred_class"].tolist()
    np.testing.assert_allclose(points.face_color[0, :3], to_rgb(CLASSES[0]["color"] if cells["label"][0] % 2
                                                                else CLASSES[1]["color"]), atol=1e-6)
    ringed = viewer.layers["labelled cells"]
    assert len(ringed.data) == 2 and str(ringed.symbol[0]) == "ring"
    # The cell under a centroid, through the layer's own world -> data transform.
    first = cells.iloc[0]
    world = np.array([first.centroid_y, first.centroid_x]) * np.array(cells_layer.scale)
    assert label_at(labels, cells_layer.world_to_data(world)) in (0, first.label)
    # Showing another site keeps the overlay layers (the dock redraws them in place:
    # removing and adding napari layers costs hundreds of ms); the site's own layers move on.
    apply_layer_data(viewer, site_layer_data(plate, plate.site("B04"), labels=False))
    names = [layer.name for layer in viewer.layers]
    assert OVERLAY_NAME in names and "cell centroids" in names and "labelled cells" in names
    assert viewer.layers["DAPI"].metadata[META_SITE] == plate.site("B04")
