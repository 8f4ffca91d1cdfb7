"""Inspect panel: confusion matrix of the selected model, gallery of its cells, uncertain cells."""

from __future__ import annotations

import shutil

import pytest

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.samples.bundled import sample_path
from napari_hcs.segmentation import SegmentationParams

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000
CLASSES = {"B02": "unstimulated", "B04": "stimulated"}


def _open(folder):
    from napari_hcs.viewer.session import Session

    session = Session()
    session.set_plate(open_plate(sample_path("scportrait_mini"), pattern="scportrait"), project_dir=folder)
    return session


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The bundled sample segmented, its wells labelled, a forest trained and the plate predicted."""
    from napari_hcs.classify import TrainRequest, predict_with, save_predictions, train_classifier
    from napari_hcs.project import Project

    folder = tmp_path_factory.mktemp("trained") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    run_plate(plate, folder, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"), crop_size=32)
    session = _open(folder)
    for well, name in CLASSES.items():
        session.add_class(name)
        session.label_wells([well], name)
    project = Project(folder)
    train_classifier(project, TrainRequest(name="forest-1", kind="forest", n_trees=50))
    save_predictions(project, predict_with(project, "forest-1"))
    session.select_model("forest-1")
    return folder


@pytest.fixture
def panel(trained, tmp_path, qtbot):
    from napari_hcs.widgets.inspect_panel import InspectPanel

    folder = tmp_path / "project"
    shutil.copytree(trained, folder)
    panel = InspectPanel(_open(folder))
    qtbot.addWidget(panel)
    panel.resize(420, 880)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _click_at(qtbot, widget, rect):
    from qtpy.QtCore import Qt

    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=rect.center())


def test_the_confusion_matrix_counts_the_evaluation_and_a_click_shows_its_cells(panel, qtbot):
    from napari_hcs.classify import confusion_counts

    session = panel.session
    assert session.current_model == "forest-1"  # kept in the project
    evaluation = session.models.evaluation("forest-1")
    val = evaluation[evaluation["split"] == "val"]
    expected = confusion_counts(val, session.models.record("forest-1").classes)
    assert panel.split.currentData() == "val"
    assert panel.confusion.counts.equals(expected)
    true, pred = expected.stack().idxmax()  # the fullest count
    assert panel.confusion.item(list(expected.index).index(true), list(expected.columns).index(pred)).text() \
        == str(expected.loc[true, pred])
    with qtbot.waitSignal(panel.gallery.crops_shown, timeout=TIMEOUT_MS) as shown:
        _click_at(qtbot, panel.confusion.viewport(), panel.confusion.cell_rect(true, pred))
    assert shown.args[0] == expected.loc[true, pred] == len(panel.gallery.crop_indices())
    confidences = val.set_index("crop_index").loc[panel.gallery.crop_indices(), "pred_confidence"]
    assert confidences.is_monotonic_decreasing
    first = panel.gallery.crop_indices()[0]
    assert f"true: {true}" in panel.gallery.item(first).toolTip()
    with qtbot.waitSignal(session.cell_requested, timeout=TIMEOUT_MS) as requested:
        _click_at(qtbot, panel.gallery.list.viewport(), panel.gallery.item_rect(first))
    row = requested.args[0]
    assert row["crop_index"] == first
    assert (session.current_site.well, session.current_site.timepoint) == (row["well"], row["timepoint"])


def test_most_uncertain_cells_leave_out_labelled_cells_and_can_be_labelled(panel, qtbot):
    from qtpy.QtCore import Qt

    from napari_hcs.project import CellLabels

    session = panel.session
    labelled = session.predictions["crop_index"].iloc[:3].tolist()
    session.label_cells(labelled, "stimulated")
    panel.measure.setCurrentText("entropy")
    panel.count.setValue(12)
    with qtbot.waitSignal(panel.gallery.crops_shown, timeout=TIMEOUT_MS) as shown:
        _click_at(qtbot, panel.uncertain_button, panel.uncertain_button.rect())
    indices = panel.gallery.crop_indices()
    assert shown.args[0] == 12 == len(indices) and not set(indices) & set(labelled)
    assert "entropy" in panel.gallery.title.text()
    chosen = indices[:2]
    _click_at(qtbot, panel.gallery.list.viewport(), panel.gallery.item_rect(chosen[0]))
    qtbot.mouseClick(panel.gallery.list.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier, panel.gallery.item_rect(chosen[1]).center())
    assert panel.gallery.selected_indices() == chosen
    panel.gallery.class_combo.setCurrentText("unstimulated")
    _click_at(qtbot, panel.gallery.label_button, panel.gallery.label_button.rect())
    saved = CellLabels(session.project.folder).read().set_index("crop_index")["class"]
    assert saved.loc[chosen].tolist() == ["unstimulated", "unstimulated"]
    assert saved.loc[labelled].tolist() == ["stimulated"] * 3
    assert "2 cells now have class 'unstimulated'" in panel.gallery.title.text()
    assert panel.gallery.item(chosen[0]).background().color().alpha() > 0  # tinted in the class colour


def test_retrain_is_one_click(panel, qtbot):
    with qtbot.waitSignal(panel.retrain_requested, timeout=1000):
        _click_at(qtbot, panel.retrain_button, panel.retrain_button.rect())


def test_without_a_model_or_predictions_the_panel_says_what_to_do(tmp_path, qtbot):
    from napari_hcs.widgets.inspect_panel import InspectPanel

    panel = InspectPanel(_open(tmp_path / "empty"))
    qtbot.addWidget(panel)
    assert "Select or train a model" in panel.model_label.text()
    assert panel.confusion.rowCount() == 0 and not panel.uncertain_button.isEnabled()
    assert panel.show_uncertain() == 0 and "Predict the plate first" in panel.status.text()


def test_the_panel_fits_the_dock(panel):
    assert panel.sizeHint().height() <= 900 and panel.minimumSizeHint().width() <= 420
