"""A user phenotypes the real scPortrait plate in the dock, from labelled wells to a cell key.

Open the plate, label its two wells as two classes on the plate map, segment,
train a random forest and a CNN, predict the whole plate, check on a screenshot
that the cells are drawn in their predicted class colours, click a count of the
confusion matrix and a crop of the gallery (the camera goes to that cell on its
site), label a cell with key 2 and find the label after reopening the project.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from qtpy.QtCore import QPoint, Qt

from napari_hcs.plate import Site
from napari_hcs.project import Project
from napari_hcs.viewer.layers import layer_scale
from napari_hcs.viewer.overlays import OVERLAY_NAME
from napari_hcs.viewer.session import Session
from napari_hcs.vocabulary import CHANNEL_ROLE, META_NAME, META_ROLE, META_SITE
from napari_hcs.widgets.main_dock import MainDock

CLASSES = ("unstimulated", "stimulated")
WAIT_MS = 600_000


def _click(qtbot, widget, point) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(int(point.x()), int(point.y())))


def _layer(viewer, name):
    return next(layer for layer in viewer.layers if layer.metadata.get(META_NAME) == name)


def _screen_position(viewer, shape, world_yx) -> tuple[int, int]:
    """Pixel of a screenshot of the canvas at a world position (2D view, no rotation)."""
    centre = np.asarray(viewer.scene.camera.center)[-2:]
    zoom = viewer.scene.camera.zoom
    row = (world_yx[0] - centre[0]) * zoom + shape[0] / 2
    column = (world_yx[1] - centre[1]) * zoom + shape[1] / 2
    return int(round(row)), int(round(column))


@pytest.fixture
def dock(make_napari_viewer, qtbot, scportrait_dir, tmp_path):
    viewer = make_napari_viewer(show=True)
    dock = MainDock(viewer)
    viewer.window.add_dock_widget(dock, name="napari HCS", area="right")
    dock.plate.open_plate(scportrait_dir, project_dir=tmp_path / "project")
    qtbot.waitUntil(lambda: dock.session.shown_site is not None, timeout=60_000)
    return dock


def _label_wells(dock, qtbot) -> None:
    plate = dock.plate
    for name in CLASSES:
        plate.add_class(name)
    plate.set_mode("assign")
    for well, name in zip(("B02", "B04"), CLASSES):
        plate.select_class(name)
        _click(qtbot, plate.plate_map, plate.plate_map.well_rect(well).center())
    assert plate.plate.well_annotations("B04")["class"] == "stimulated"
    plate.set_mode("view")


def _segment(dock, qtbot) -> None:
    dock.show_tab("Segment")
    form = dock.segment.form
    form.nuclei_channel.value = "DAPI"
    form.cell_channel.value = "mCherry"
    form.crop_size.value = 32
    form.live_preview.value = False
    run = dock.segment.run_panel
    run.workers.setValue(2)
    with qtbot.waitSignal(run.run_finished, timeout=WAIT_MS) as finished:
        _click(qtbot, run.run_plate_button, run.run_plate_button.rect().center())
    assert "error" not in finished.args[0], finished.args[0]
    assert dock.session.cells is not None and len(dock.session.cells) > 100


def _train(dock, qtbot, kind: str, **options) -> str:
    dock.show_tab("Train")
    panel = dock.train
    panel.set_kind(kind)
    for name, value in options.items():
        panel.cnn_options()[name].value = value
    name = panel.name.text()
    with qtbot.waitSignal(panel.training_finished, timeout=WAIT_MS) as finished:
        _click(qtbot, panel.train_button, panel.train_button.rect().center())
    assert not isinstance(finished.args[0], Exception), finished.args[0]
    assert name in dock.session.models.names() and dock.session.current_model == name
    return name


def _predict_plate(dock, qtbot) -> None:
    panel = dock.train
    panel.scope.setCurrentIndex(panel.scope.findData("plate"))
    with qtbot.waitSignal(panel.prediction_finished, timeout=WAIT_MS):
        _click(qtbot, panel.predict_button, panel.predict_button.rect().center())
    qtbot.waitUntil(lambda: any(layer.metadata.get(META_NAME) == OVERLAY_NAME for layer in dock.viewer.layers),
                    timeout=30_000)
    assert dock.session.predictions["pred_class"].notna().sum() == len(dock.session.cells)


def _check_colours_on_screen(dock) -> None:
    viewer, session = dock.viewer, dock.session
    for layer in viewer.layers:
        layer.visible = layer.metadata.get(META_NAME) == OVERLAY_NAME
    overlay = _layer(viewer, OVERLAY_NAME)
    overlay.opacity = 1.0
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    cells = dock.overlay.cells
    labels = np.asarray(dock.overlay.cell_layer().data)
    scale = layer_scale(session.plate)
    colour = {c["name"]: np.array(to_rgb(c["color"])) * 255 for c in session.classes}
    checked = matched = 0
    for row in cells.itertuples():
        y, x = int(round(row.centroid_y)), int(round(row.centroid_x))
        if labels[y, x] != row.label:  # a centroid outside its own cell (crescent shapes)
            continue
        r, c = _screen_position(viewer, shot.shape, (y * scale[0], x * scale[1]))
        checked += 1
        matched += np.abs(shot[r, c, :3].astype(float) - colour[row.pred_class]).max() < 40
    assert checked > 20 and matched / checked > 0.9, (matched, checked)
    for layer in viewer.layers:
        layer.visible = True


def _inspect_and_jump(dock, qtbot) -> dict:
    dock.show_tab("Inspect")
    inspect, session = dock.inspect, dock.session
    counts = inspect.confusion.counts
    true, pred = max(((t, p) for t in counts.index for p in counts.columns), key=lambda tp: counts.loc[tp])
    with qtbot.waitSignal(inspect.gallery.crops_shown, timeout=60_000):
        _click(qtbot, inspect.confusion.viewport(), inspect.confusion.cell_rect(true, pred).center())
    shown = inspect.gallery.crop_indices()
    assert len(shown) == min(int(counts.loc[true, pred]), len(shown)) and shown
    target = shown[-1]
    with qtbot.waitSignal(dock.overlay.jumped, timeout=60_000) as jumped:
        _click(qtbot, inspect.gallery.list.viewport(), inspect.gallery.item_rect(target).center())
    row = jumped.args[0]
    assert row["crop_index"] == target
    site = Site(row["well"], int(row["field"]), int(row["timepoint"]))
    assert session.shown_site == site
    assert all(layer.metadata[META_SITE] == site for layer in dock.viewer.layers
               if layer.metadata.get(META_ROLE) == CHANNEL_ROLE)
    scale = layer_scale(session.plate)
    centre = np.asarray(dock.viewer.scene.camera.center)[-2:]
    np.testing.assert_allclose(centre, [row["centroid_y"] * scale[0], row["centroid_x"] * scale[1]], atol=1e-6)
    return row


def _label_with_key_2(dock, qtbot, row: dict) -> int:
    dock.overlay_panel.label_box.setChecked(True)
    scale = layer_scale(dock.session.plate)
    dock.viewer.cursor.position = (row["centroid_y"] * scale[0], row["centroid_x"] * scale[1])
    canvas = dock.viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_2)
    qtbot.waitUntil(lambda: dock.session.cell_class(row["crop_index"]) is not None, timeout=10_000)
    assert dock.session.cell_class(row["crop_index"]) == CLASSES[1]
    return int(row["crop_index"])


def test_a_user_phenotypes_the_scportrait_plate_in_the_dock(dock, qtbot, scportrait_dir, tmp_path):
    _label_wells(dock, qtbot)
    _segment(dock, qtbot)
    forest = _train(dock, qtbot, "forest")
    cnn = _train(dock, qtbot, "cnn", model="cnn1", depth=1, width=1, epochs=2, device="cpu")
    assert dock.train.plot.points == 2
    dock.train.select_model(forest)
    assert dock.train.status.text().startswith(f"Trained {forest}: validation balanced accuracy")
    tips = {dock.train.model_list.item(i).toolTip() for i in range(dock.train.model_list.count())}
    assert any(tip.startswith(f"Trained {cnn}:") for tip in tips)
    _predict_plate(dock, qtbot)
    _check_colours_on_screen(dock)
    row = _inspect_and_jump(dock, qtbot)
    labelled = _label_with_key_2(dock, qtbot, row)

    project = Project(tmp_path / "project")
    saved = project.cell_labels().read().set_index("crop_index")
    assert saved.loc[labelled, "class"] == CLASSES[1]
    reopened = Session()
    reopened.open(scportrait_dir, project_dir=project.folder)
    assert reopened.cell_class(labelled) == CLASSES[1]
    assert {forest, cnn} <= set(reopened.models.names()) and reopened.current_model == forest
    assert reopened.predictions is not None and len(reopened.predictions) == len(reopened.cells)
    assert reopened.current_site == Site(row["well"], int(row["field"]), int(row["timepoint"]))
