"""A plate without annotations: its project's header-only layout.csv reads as empty annotations."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from napari_hcs.io import open_plate, read_layout_table, write_layout_table
from napari_hcs.pipeline import run_plate
from napari_hcs.project import CellStore, Project
from napari_hcs.project import annotations as rules
from napari_hcs.samples import sample_path
from napari_hcs.segmentation import SegmentationParams
from napari_hcs.vocabulary import CELL_CLASS_COLUMN

from plates import make_plate


def _unlabelled_sample(folder):
    """The bundled scPortrait plate without its layout table: a plate nobody annotated yet."""
    plate_dir = folder / "plate"
    plate_dir.mkdir()
    for path in sample_path("scportrait_mini").glob("*Well04*.tif"):
        shutil.copy(path, plate_dir)
    return plate_dir


def test_an_unlabelled_plate_project_opens_and_gives_its_cell_table(tmp_path):
    plate = open_plate(_unlabelled_sample(tmp_path), pattern="scportrait")
    assert plate.annotations.empty and plate.layout_source is None
    project = Project(tmp_path / "project")
    project.record_plate(plate, pattern="scportrait")
    project.save_annotations(plate)  # what the viewer does on opening the plate
    assert project.layout_path.read_text().strip() == "well"
    run_plate(plate, project.folder, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
              crop_size=32, features=False, pattern="scportrait")
    reopened = Project(project.folder)
    table = reopened.cell_table()
    assert len(table) > 20 and set(table.well) == {"B04"}
    assert (table[CELL_CLASS_COLUMN] == "").all()
    again = reopened.open_plate()
    assert again.annotations.empty and again.wells == ["B04"]
    rules.set_well_class(again, ["B04"], "control")  # labelling afterwards works as usual
    reopened.save_annotations(again)
    assert set(Project(project.folder).cell_table()["class"]) == {"control"}


@pytest.mark.parametrize("text", [
    "well\n", "well\r\n", "\ufeffwell\n", "well,class\n", "well;class\n", "well\tclass\n",
    "Well\tCompound, salt\tDose\n",  # a comma inside a tab-separated header misleads the sniffer
    "well,Compound; salt,Dose\n",
])
def test_a_header_only_layout_reads_as_empty_annotations(tmp_path, text):
    path = tmp_path / "layout.csv"
    path.write_text(text, encoding="utf-8")
    frame = read_layout_table(path)
    assert frame.empty and frame.index.name == "well"
    assert all("well" not in str(c).lower() for c in frame.columns)
    plate = make_plate()
    project = Project(tmp_path)
    project.apply_annotations(plate)
    assert plate.annotations.index.empty


def test_cleared_classes_and_a_bare_header_join_a_synthetic_cell_table(tmp_path):
    plate = make_plate(wells=("B02", "B03"), n_sites=1, labels=True)
    project = Project(tmp_path / "project")
    rules.set_well_class(plate, ["B02"], "a")
    rules.set_well_class(plate, ["B02"], None)  # labelled, then cleared: an empty class column
    write_layout_table(plate.annotations, project.layout_path)
    assert read_layout_table(project.layout_path)["class"].isna().all()
    write_layout_table(make_plate().annotations, project.layout_path)
    assert project.well_annotations().empty
    store = CellStore.create(project.folder, channels=plate.channels, crop_size=8)
    rows = pd.DataFrame({"well": ["B02"], "field": [0], "timepoint": [0], "label": [1]})
    store.append_site("B02_f000_t000", rows, np.zeros((1, 2, 8, 8), dtype=np.float32))
    table = project.cell_table()
    assert table[["well", CELL_CLASS_COLUMN]].values.tolist() == [["B02", ""]]
