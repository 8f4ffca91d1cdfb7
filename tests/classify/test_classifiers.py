"""Training from the viewer's classes on the real sample: forest, CNN, cancel, names, refusals."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from classify_projects import CLASSES, segmented_sample, tiny_cnn

from napari_hcs.cancel import Cancelled
from napari_hcs.classify import TrainingSetError, TrainRequest, device_description, train_classifier

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return segmented_sample(tmp_path_factory)


def test_forest_trains_in_seconds_and_is_saved(sample):
    events = []
    started = time.perf_counter()
    record = train_classifier(sample, TrainRequest("forest", n_trees=300), progress=events.append)
    assert time.perf_counter() - started < 20
    assert record.kind == "forest" and record.classes == sorted(CLASSES.values())
    assert record.channels == ["Alexa488", "DAPI", "mCherry"] and record.feature_columns
    assert record.split.startswith("Validation: 1 of 3 sites of each class")
    assert record.metrics["val"]["accuracy"] > 0.6 and record.metrics["val"]["n"] > 50
    assert record.settings["class_weight"] == "balanced" and not record.cancelled
    assert all(e["kind"] == "step" and {"done", "total", "text"} <= set(e) for e in events)
    assert events[-1]["done"] == events[-1]["total"]
    catalog = sample.models()
    assert "forest" in catalog.names() and catalog.record("forest").metrics == record.metrics
    evaluation = catalog.evaluation("forest")
    assert list(evaluation.columns) == ["crop_index", "split", "true_class", "pred_class", "pred_confidence",
                                        "pred_margin"]
    assert len(evaluation) == record.metrics["val"]["n"] and set(evaluation.split) == {"val"}
    assert ((evaluation.pred_confidence >= 0.5) & (evaluation.pred_margin <= 1)).all()


def test_a_used_name_is_refused_unless_replaced(sample):
    train_classifier(sample, TrainRequest("again", n_trees=20))
    with pytest.raises(ValueError, match="A model named 'again' already exists"):
        train_classifier(sample, TrainRequest("again", n_trees=20))
    replaced = train_classifier(sample, TrainRequest("again", kind="cnn", config=tiny_cnn(epochs=1)),
                                overwrite=True)
    assert replaced.kind == "cnn" and sample.models().record("again").kind == "cnn"
    assert not (sample.models().folder / "again.forest.joblib").exists()
    with pytest.raises(ValueError, match="cannot name a model"):
        TrainRequest("../escape")


def test_cnn_trains_with_epoch_events(sample):
    events = []
    record = train_classifier(sample, TrainRequest("cnn", kind="cnn", config=tiny_cnn()), progress=events.append)
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["epochs"] == 2 for e in epochs)
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "seconds"} <= set(epochs[0])
    assert record.kind == "cnn" and record.crop_size == 16 and len(record.history) == 2
    assert record.path == sample.models().folder / "cnn.pt" and record.path.exists()
    assert record.settings["model"] == "cnn1" and record.split.startswith("Validation: 1 of 3 sites")
    assert len(sample.models().evaluation("cnn")) == record.metrics["val"]["n"]
    model, loaded = sample.models().load("cnn")
    assert loaded.history == record.history and hasattr(model, "embed")


def test_cancel_after_an_epoch_keeps_the_best_model(sample):
    stop = threading.Event()

    def progress(event):
        if event["kind"] == "epoch":
            stop.set()

    record = train_classifier(sample, TrainRequest("stopped", kind="cnn", config=tiny_cnn(epochs=6)),
                              progress=progress, cancel=stop)
    assert record.cancelled and len(record.history) == 1
    assert sample.models().record("stopped").cancelled and sample.models().evaluation("stopped") is not None
    assert "(cancelled)" in sample.models().record("stopped").summary()


def test_cancel_before_the_first_epoch_saves_nothing(sample):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        train_classifier(sample, TrainRequest("never", kind="cnn", config=tiny_cnn()), cancel=stop)
    with pytest.raises(Cancelled):
        train_classifier(sample, TrainRequest("never", n_trees=20), cancel=stop)
    assert "never" not in sample.models().names()


def test_one_labelled_class_is_refused(tmp_path_factory):
    project = segmented_sample(tmp_path_factory, "one_class", classes={"B02": "unstimulated"})
    with pytest.raises(TrainingSetError, match=r"at least two classes; the cells have only class 'unstimulated'"):
        train_classifier(project, TrainRequest("x"))
    assert project.models().names() == []


def test_device_is_described():
    assert device_description("cpu").startswith("CPU (")
    if torch.cuda.is_available():
        assert device_description("cuda").startswith("GPU: ")


def test_cnn_self_training_takes_in_the_unlabelled_cells(tmp_path_factory):
    project = segmented_sample(tmp_path_factory, "self_training", classes=None)
    table = project.cell_table()
    late = table.timepoint == table.timepoint.max()
    for well, name in CLASSES.items():
        project.cell_labels().set(table[(table.well == well) & ~late], name)
    config = tiny_cnn(self_training=1, self_training_confidence=0.5)
    record = train_classifier(project, TrainRequest("self", kind="cnn", config=config))
    (round_,) = record.settings["self_training_rounds"]
    assert round_["pool_cells"] == late.sum() and round_["added_cells"] > 0


def test_a_plate_with_negative_pixels_is_named_in_the_models_record(sample, monkeypatch):
    # The bundled plate has none; pretend a tenth of its pixels were negative (a background subtracted too far).
    monkeypatch.setattr("napari_hcs.nn.plate_normalisation._NegativePixels.share",
                        lambda self: {"negative_pixels": 0.1})
    record = train_classifier(sample, TrainRequest("negative", kind="cnn", config=tiny_cnn(epochs=1)))
    assert any(note.startswith("Plate ") and "10.0% of the pixels" in note and "read them as 0" in note
               for note in record.settings["warnings"])
    assert sample.models().record("negative").settings["warnings"] == record.settings["warnings"]  # as saved
