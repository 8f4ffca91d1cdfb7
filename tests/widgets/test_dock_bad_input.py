"""The dock with bad input: clicking the background, closing the viewer while a CNN trains."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.project import Project
from napari_hcs.samples.bundled import sample_path
from napari_hcs.segmentation import SegmentationParams
from napari_hcs.viewer.layers import layer_scale
from napari_hcs.widgets.main_dock import MainDock

CLASSES = {"B02": "unstimulated", "B04": "stimulated"}


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segmented") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    run_plate(plate, folder, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"), crop_size=32)
    return folder


def _dock(viewer, qtbot, segmented, tmp_path) -> MainDock:
    folder = tmp_path / "project"
    shutil.copytree(segmented, folder)
    dock = MainDock(viewer)
    viewer.window.add_dock_widget(dock, name="napari HCS", area="right")
    dock.session.open(sample_path("scportrait_mini"), pattern="scportrait", project_dir=folder)
    qtbot.waitUntil(lambda: dock.overlay.cell_layer() is not None, timeout=60_000)
    for well, name in CLASSES.items():
        if all(c["name"] != name for c in dock.session.classes):
            dock.session.add_class(name)
        dock.session.label_wells([well], name)
    return dock


def test_clicking_the_background_says_there_is_no_cell_and_labels_nothing(make_napari_viewer, qtbot,
                                                                            segmented, tmp_path):
    dock = _dock(make_napari_viewer(show=True), qtbot, segmented, tmp_path)
    labels = np.asarray(dock.overlay.cell_layer().data)
    y, x = np.argwhere(labels == 0)[0]
    scale = layer_scale(dock.session.plate)
    dock.labeller.set_enabled(True)
    dock.session.select_class("stimulated")
    assert dock.labeller.label_cell_at((y * scale[0], x * scale[1]), "stimulated") is None
    assert "No cell there" in dock.overlay_panel.status.text()
    assert dock.session.cell_labels.empty
    cell = dock.overlay.cells.iloc[0]
    position = (cell["centroid_y"] * scale[0], cell["centroid_x"] * scale[1])
    if labels[int(round(cell["centroid_y"])), int(round(cell["centroid_x"]))] == cell["label"]:
        assert dock.labeller.label_cell_at(position, "stimulated") == cell["crop_index"]
        assert Project(tmp_path / "project").cell_labels().read()["class"].tolist() == ["stimulated"]


def test_closing_the_viewer_while_a_cnn_trains_stops_it_and_keeps_the_project(make_napari_viewer, qtbot,
                                                                                segmented, tmp_path):
    viewer = make_napari_viewer(show=True)
    dock = _dock(viewer, qtbot, segmented, tmp_path)
    panel = dock.train
    panel.set_kind("cnn")
    for name, value in {"model": "cnn1", "depth": 1, "width": 1, "epochs": 200, "device": "cpu"}.items():
        panel.cnn_options()[name].value = value
    assert panel.train()
    qtbot.waitUntil(lambda: panel.plot.points >= 1, timeout=120_000)
    viewer.close()  # cancels the training: the best epoch so far is saved
    project = Project(tmp_path / "project")
    end = time.monotonic() + 60
    while not project.models().names() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.05)
    project = Project(tmp_path / "project")
    assert project.cell_table()["well"].nunique() == 2  # the project is intact
    names = project.models().names()
    assert names and project.models().record(names[0]).cancelled  # the best epoch so far was kept
