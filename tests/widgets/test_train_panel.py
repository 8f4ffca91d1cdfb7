"""Train panel: train a forest and a CNN from the panel, list, select, remove, predict, errors."""

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


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """The bundled scPortrait sample segmented once (crop size 32)."""
    folder = tmp_path_factory.mktemp("segmented") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    summary = run_plate(plate, folder, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
                        crop_size=32)
    assert summary["cells"] > 100 and not summary["failures"]
    return folder


def _session(segmented, tmp_path, classes=CLASSES):
    from napari_hcs.viewer.session import Session

    folder = tmp_path / "project"
    shutil.copytree(segmented, folder)
    session = Session()
    session.set_plate(open_plate(sample_path("scportrait_mini"), pattern="scportrait"), project_dir=folder)
    for name in dict.fromkeys(classes.values()):
        session.add_class(name)
    for well, name in classes.items():
        session.label_wells([well], name)
    session.reload_cells()
    return session


@pytest.fixture
def panel(segmented, tmp_path, qtbot):
    from napari_hcs.widgets.train_panel import TrainPanel

    panel = TrainPanel(_session(segmented, tmp_path))
    qtbot.addWidget(panel)
    panel.resize(420, 880)
    panel.show()
    yield panel
    panel.cancel_training()
    panel.cancel_prediction()
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=TIMEOUT_MS)


def _click(qtbot, button):
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _cnn_options(panel, epochs):
    panel.set_kind("cnn")
    options = panel.cnn_options()
    options["model"].value = "cnn1"
    options["depth"].value = 1
    options["width"].value = 1
    options["epochs"].value = epochs
    options["batch_size"].value = 64
    options["device"].value = "cpu"


def test_a_forest_trained_from_the_panel_is_listed_selected_and_predicts_the_plate(panel, qtbot):
    from napari_hcs.project import ModelRecord

    assert panel.kind_value == "forest" and panel.name.text() == "forest-1"
    assert not panel.cnn_form.visible and panel.forest_form.visible
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS) as trained:
        _click(qtbot, panel.train_button)
    record = trained.args[0]
    assert isinstance(record, ModelRecord), panel.status.text()
    assert record.name == "forest-1" and record.kind == "forest"
    assert panel.model_names() == ["forest-1"] and panel.session.current_model == "forest-1"
    assert "forest" in panel.model_list.item(0).text() and "val bal. acc" in panel.model_list.item(0).text()
    assert "validation balanced accuracy" in panel.status.text() and record.split in panel.status.text()
    assert panel.name.text() == "forest-2"  # the next free name
    panel.scope.setCurrentIndex(panel.scope.findData("plate"))
    with qtbot.waitSignal(panel.prediction_finished, timeout=TIMEOUT_MS) as predicted:
        _click(qtbot, panel.predict_button)
    saved = predicted.args[0]
    cells = panel.session.cells
    assert panel.session.predictions is saved
    assert len(saved) == len(cells) and set(saved["pred_model"]) == {"forest-1"}
    assert set(saved["pred_class"]) <= set(CLASSES.values())
    assert f"Predicted {len(cells)} cells of the whole plate" in panel.status.text()


def test_predicting_the_current_site_and_selected_wells(panel, qtbot):
    panel.forest_form.n_trees.value = 50
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS):
        panel.train()
    session = panel.session
    assert not panel.predict("wells") and "Select wells" in panel.status.text()
    session.select_wells(["B04"])
    with qtbot.waitSignal(panel.prediction_finished, timeout=TIMEOUT_MS) as predicted:
        assert panel.predict("wells")
    cells = session.cells
    assert sorted(predicted.args[0]["crop_index"]) == sorted(cells.loc[cells["well"] == "B04", "crop_index"])
    site = session.current_site
    with qtbot.waitSignal(panel.prediction_finished, timeout=TIMEOUT_MS) as predicted:
        assert panel.predict("site")
    on_site = (cells["well"] == site.well) & (cells["timepoint"] == site.timepoint)
    assert set(cells.loc[on_site, "crop_index"]) <= set(predicted.args[0]["crop_index"])


def test_removing_a_model_without_the_question(panel, qtbot):
    panel.forest_form.n_trees.value = 50
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS):
        panel.train()
    panel.confirm_removal = False
    _click(qtbot, panel.remove_button)
    assert panel.model_names() == [] and panel.session.current_model is None
    assert "Removed model forest-1" in panel.status.text()
    assert not panel.predict("plate") and "Train or select a model first" in panel.status.text()


def test_a_model_whose_channels_differ_from_the_plate_is_refused_by_name(panel, qtbot):
    panel.forest_form.n_trees.value = 50
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS):
        panel.train()
    catalog = panel.session.models
    record = catalog.record("forest-1")
    record.channels = ["DAPI", "GFP"]
    catalog.save_record(record)
    before = panel.session.predictions
    with qtbot.waitSignal(panel.prediction_finished, timeout=TIMEOUT_MS) as predicted:
        _click(qtbot, panel.predict_button)
    assert isinstance(predicted.args[0], ValueError)
    words = panel.status.text()
    assert words.startswith("Prediction failed: ") and "GFP" in words and "mCherry" in words
    assert panel.session.predictions is before and panel.predict_button.isEnabled()


def test_a_cnn_for_two_epochs_plots_two_points(panel, qtbot):
    _cnn_options(panel, epochs=2)
    assert panel.cnn_form.visible and panel.name.text() == "cnn-1"
    assert panel.device.text().startswith("device: ")
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS) as trained:
        _click(qtbot, panel.train_button)
    record = trained.args[0]
    assert record.kind == "cnn" and len(record.history) == 2, panel.status.text()
    assert panel.plot.points == 2
    assert record.settings["model"] == "cnn1" and record.settings["epochs"] == 2
    assert panel.model_names() == ["cnn-1"]


def test_a_cnn_normalised_within_timepoint_records_it_and_the_form_shows_it_again(panel, qtbot):
    _cnn_options(panel, epochs=1)
    within = panel.cnn_options()["normalise_within"]
    assert within.choices == ("", "timepoint")  # treatment and genotype each hold one class: not offered
    assert within.value == ""
    within.value = "timepoint"
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS) as trained:
        _click(qtbot, panel.train_button)
    record = trained.args[0]
    assert record.settings["normalise_within"] == "timepoint", panel.status.text()
    assert "Normalised within timepoint" in panel.status.text()
    within.value = ""
    panel.session.select_model(None)
    panel.session.select_model(record.name)
    assert within.value == "timepoint"


def test_cancelling_a_cnn_keeps_its_best_epoch(panel, qtbot):
    _cnn_options(panel, epochs=200)
    _click(qtbot, panel.train_button)
    assert panel.is_busy and not panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: panel.plot.points >= 1, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS) as trained:
        _click(qtbot, panel.cancel_train_button)
    record = trained.args[0]
    assert record.cancelled and 1 <= len(record.history) < 200, panel.status.text()
    assert "best epoch so far was kept" in panel.status.text()
    assert panel.model_names() == ["cnn-1"] and not panel.is_busy


def test_training_with_one_labelled_class_names_the_problem(segmented, tmp_path, qtbot):
    from napari_hcs.classify import TrainingSetError
    from napari_hcs.widgets.train_panel import TrainPanel

    panel = TrainPanel(_session(segmented, tmp_path, classes={"B02": "unstimulated"}))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS) as trained:
        _click(qtbot, panel.train_button)
    assert isinstance(trained.args[0], TrainingSetError)
    assert panel.status.text().startswith("Training failed: ") and "unstimulated" in panel.status.text()
    assert "Traceback" not in panel.status.text() and panel.model_names() == []
    assert panel.train_button.isEnabled()


def test_a_read_only_project_is_said_in_words(panel, qtbot, monkeypatch):
    import napari_hcs.classify as classify

    folder = panel.session.project.folder

    def refused(project, request, **options):
        raise PermissionError(13, "Permission denied", str(folder / "models" / f"{request.name}.joblib"))

    monkeypatch.setattr(classify, "train_classifier", refused)
    with qtbot.waitSignal(panel.training_finished, timeout=TIMEOUT_MS) as trained:
        panel.train()
    assert isinstance(trained.args[0], OSError)
    assert "read-only" in panel.status.text() and "Permission denied" in panel.status.text()
    assert "Traceback" not in panel.status.text() and panel.train_button.isEnabled()


def test_without_cells_the_panel_says_to_segment_first(tmp_path, qtbot):
    from napari_hcs.viewer.session import Session
    from napari_hcs.widgets.train_panel import TrainPanel

    session = Session()
    session.set_plate(open_plate(sample_path("scportrait_mini"), pattern="scportrait"),
                      project_dir=tmp_path / "empty")
    panel = TrainPanel(session)
    qtbot.addWidget(panel)
    assert not panel.train() and "segment the plate first" in panel.status.text()
    assert not panel.predict("plate")


def test_the_panel_fits_the_dock(panel):
    _cnn_options(panel, epochs=2)
    assert panel.sizeHint().height() <= 900 and panel.minimumSizeHint().width() <= 420
