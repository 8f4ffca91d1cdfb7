"""The session's cells: cell labels saved at once, going to a cell, what survives reopening."""

from __future__ import annotations

import shutil

import pytest

from napari_hcs.pipeline import run_plate
from napari_hcs.plate import Site
from napari_hcs.project import Project
from napari_hcs.samples import sample_path
from napari_hcs.segmentation import SegmentationParams
from napari_hcs.viewer.session import Session


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """The bundled scPortrait plate (a copy) segmented into a project."""
    folder = tmp_path_factory.mktemp("scportrait")
    plate_dir = folder / "plate"
    shutil.copytree(sample_path("scportrait_mini"), plate_dir)
    project = folder / "project"
    session = Session()
    session.open(plate_dir, project_dir=project)
    run_plate(session.plate, project, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
              crop_size=32, features=False)
    return plate_dir, project


def _open(segmented) -> Session:
    plate_dir, project = segmented
    session = Session()
    session.open(plate_dir, project_dir=project)
    return session


def test_cells_are_read_with_the_project_and_labels_are_saved_at_once(segmented):
    session = _open(segmented)
    assert session.cells is not None and len(session.cells) > 20
    session.add_class("unstimulated")
    session.add_class("stimulated")
    cell = int(session.cells["crop_index"].iloc[3])
    changed = []
    session.cell_labels_changed.connect(changed.append)
    assert session.label_cells([cell], "stimulated")
    assert changed and session.cell_class(cell) == "stimulated"
    saved = Project(segmented[1]).cell_labels().read()
    assert saved.set_index("crop_index").loc[cell, "class"] == "stimulated"
    reopened = _open(segmented)
    assert reopened.cell_class(cell) == "stimulated"
    assert reopened.cells.set_index("crop_index").loc[cell, "cell_class"] == "stimulated"
    session.rename_class("stimulated", "LPS")
    assert _open(segmented).cell_class(cell) == "LPS"
    session.remove_class("LPS")
    assert _open(segmented).cell_class(cell) is None


def test_unknown_classes_and_cells_are_refused_by_name(segmented):
    session = _open(segmented)
    with pytest.raises(ValueError, match="No class named 'nope'"):
        session.label_cells([0], "nope")
    session.add_class("a") if all(c["name"] != "a" for c in session.classes) else None
    with pytest.raises(ValueError, match="No cell with crop index 999999"):
        session.label_cells([999999], "a")


def test_a_read_only_project_keeps_the_labels_held_and_says_so(segmented, monkeypatch):
    session = _open(segmented)
    if all(c["name"] != "a" for c in session.classes):
        session.add_class("a")
    before = session.cell_labels.copy()
    messages = []
    session.message.connect(messages.append)
    store = type(session.project.cell_labels())

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self.path))

    monkeypatch.setattr(store, "set", refuse)
    assert not session.label_cells([int(session.cells["crop_index"].iloc[0])], "a")
    assert "Could not save cell labels" in messages[-1]
    assert session.cell_labels.equals(before)


def test_going_to_a_cell_asks_for_its_site_then_says_which_cell(segmented):
    session = _open(segmented)
    row = session.cells[session.cells["timepoint"] == 3].iloc[0]
    requested, cells = [], []
    session.site_requested.connect(requested.append)
    session.cell_requested.connect(cells.append)
    session.request_cell(int(row["crop_index"]))
    assert requested[-1] == Site(row["well"], int(row["field"]), int(row["timepoint"]))
    assert cells[-1]["crop_index"] == row["crop_index"] and cells[-1]["label"] == row["label"]


def test_the_shown_site_and_model_survive_reopening(segmented):
    session = _open(segmented)
    site = session.plate.sites["B04"][2]
    session.request_site(site)
    session.mark_shown(site)
    assert _open(segmented).current_site == site
    with pytest.raises(ValueError, match="No model named 'missing'"):
        session.select_model("missing")
