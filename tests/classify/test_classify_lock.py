"""Training and saving predictions take the project's lock, as the command line does."""

from __future__ import annotations

import threading

import pytest

from napari_hcs.classify import TrainRequest, save_predictions, train_classifier
from napari_hcs.nn import TrainConfig
from napari_hcs.project import Project, ProjectLockedError

from predicted_sample import plausible_predictions, segmented_sample


def test_another_writer_of_the_project_is_named_and_nothing_is_written(tmp_path):
    project = Project(segmented_sample(tmp_path / "project"))
    plate = project.open_plate()
    for well, name in (("B02", "unstimulated"), ("B04", "stimulated")):
        plate.annotate(well, class_=name)
    project.save_annotations(plate)
    frame = plausible_predictions(project)
    held, release = threading.Event(), threading.Event()

    def other_writer():
        with project.lock(command="napari-hcs segment (another run)"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=other_writer)
    thread.start()
    held.wait(30)
    try:
        with pytest.raises(ProjectLockedError, match="another run"):
            save_predictions(project, frame.assign(pred_model="other"))
        config = TrainConfig(model="cnn1", depth=1, width=1, epochs=1, batch_size=64, device="cpu")
        with pytest.raises(ProjectLockedError, match="another run"):
            train_classifier(project, TrainRequest(name="cnn-1", kind="cnn", config=config))
    finally:
        release.set()
        thread.join()
    assert project.models().names() == []
    assert set(project.cell_table()["pred_model"].dropna()) == {"quick"}  # the saved predictions are kept
