"""Crop gallery: crops read in order, coloured like the viewer's layers, clicks ask for the cell."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.samples.bundled import sample_path
from napari_hcs.segmentation import SegmentationParams
from napari_hcs.vocabulary import CHANNEL_ROLE, META_NAME, META_ROLE

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segmented") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    run_plate(plate, folder, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
              crop_size=32, features=False)
    return folder


@pytest.fixture
def session(segmented, tmp_path):
    from napari_hcs.viewer.session import Session

    shutil.copytree(segmented, tmp_path / "project")
    session = Session()
    session.set_plate(open_plate(sample_path("scportrait_mini"), pattern="scportrait"),
                      project_dir=tmp_path / "project")
    return session


def test_crops_are_read_once_each_in_the_order_asked(segmented):
    from napari_hcs.project import CellStore
    from napari_hcs.widgets.crop_gallery import read_crops

    store = CellStore(segmented)
    order = [17, 3, 17, 0, len(store) - 1]
    crops = read_crops(store, order)
    assert crops.shape == (5, 3, 32, 32)
    for row, index in zip(crops, order):
        np.testing.assert_array_equal(row, store.crops[index])
    assert read_crops(store, []).shape == (0, 3, 32, 32)


def test_display_settings_follow_the_viewer_layers(make_napari_viewer):
    from napari_hcs.widgets.crop_gallery import display_settings

    crops = np.random.default_rng(0).uniform(0, 1000, size=(10, 3, 8, 8)).astype(np.float32)
    settings = display_settings(None, ["Alexa488", "DAPI", "mCherry"], crops)
    colours, limits = settings["colormaps"], settings["contrast_limits"]
    assert colours == ["green", "blue", "magenta"] and settings["gamma"] == [1.0, 1.0, 1.0]
    assert all(0 <= low < high <= 1000 for low, high in limits)
    viewer = make_napari_viewer()
    image = np.zeros((8, 8), np.uint16)
    viewer.add_image(image, name="DAPI", colormap="red", contrast_limits=(5, 50),
                     metadata={META_ROLE: CHANNEL_ROLE, META_NAME: "DAPI"})
    hidden = viewer.add_image(image, name="mCherry", colormap="green", contrast_limits=(0, 10),
                              metadata={META_ROLE: CHANNEL_ROLE, META_NAME: "mCherry"})
    hidden.visible = False
    settings = display_settings(viewer, ["Alexa488", "DAPI", "mCherry"], crops)
    colours, limits = settings["colormaps"], settings["contrast_limits"]
    assert colours[0] == "green" and colours[1] == (1.0, 0.0, 0.0) and colours[2] == (0.0, 0.0, 0.0)
    assert limits[1] == (5.0, 50.0) and limits[2] == (0.0, 10.0)


def test_many_crops_are_read_in_a_worker_and_clicks_ask_for_the_cell(session, qtbot):
    from qtpy.QtCore import Qt

    from napari_hcs.widgets.crop_gallery import THREAD_ABOVE, CropGallery

    gallery = CropGallery(session)
    qtbot.addWidget(gallery)
    gallery.resize(420, 500)
    gallery.show()
    cells = session.cells.iloc[::-1].reset_index(drop=True)  # any order is kept
    assert len(cells) > THREAD_ABOVE
    with qtbot.waitSignal(gallery.crops_shown, timeout=TIMEOUT_MS) as shown:
        gallery.show_cells(cells, title="all cells")
        assert gallery.crop_indices() == []  # still reading
    assert shown.args[0] == len(cells) and gallery.crop_indices() == cells["crop_index"].tolist()
    assert gallery.title.text() == f"all cells: {len(cells)} cells"
    icon = gallery.item(cells["crop_index"].iloc[0]).icon().pixmap(64, 64).toImage()
    assert icon.width() == 64
    target = int(cells["crop_index"].iloc[5])
    with qtbot.assertNotEmitted(session.cell_requested):  # ctrl-click only selects
        qtbot.mouseClick(gallery.list.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier, gallery.item_rect(target).center())
    with qtbot.waitSignal(session.cell_requested, timeout=TIMEOUT_MS) as requested:
        qtbot.mouseClick(gallery.list.viewport(), Qt.MouseButton.LeftButton, pos=gallery.item_rect(target).center())
    assert requested.args[0]["crop_index"] == target
    row = cells.set_index("crop_index").loc[target]
    assert f"of {row['well']} f{row['field']} t{row['timepoint']}" in gallery.item(target).toolTip()


def test_a_newer_request_replaces_one_being_read(session, qtbot):
    from napari_hcs.widgets.crop_gallery import CropGallery

    gallery = CropGallery(session)
    qtbot.addWidget(gallery)
    gallery.show_cells(session.cells, title="all")
    with qtbot.waitSignal(gallery.crops_shown, timeout=TIMEOUT_MS) as shown:
        gallery.show_cells(session.cells.head(4), title="four")
    assert shown.args[0] == 4
    qtbot.wait(500)  # the first read ends and is dropped
    assert len(gallery.crop_indices()) == 4


def test_label_selected_needs_a_selection(session, qtbot):
    from napari_hcs.widgets.crop_gallery import NO_CLASS, CropGallery

    gallery = CropGallery(session)
    qtbot.addWidget(gallery)
    assert [gallery.class_combo.itemText(i) for i in range(gallery.class_combo.count())][-1] == NO_CLASS
    session.add_class("round")
    assert gallery.class_combo.findText("round") == 0
    assert not gallery.label_selected("round") and "Select crops first" in gallery.title.text()
