"""Cell labels: saved at once, quick per click, consistent with the class list, safe when read-only."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.project import CellLabels, Project
from napari_hcs.project import cell_labels as cell_labels_module
from napari_hcs.samples import sample_path
from napari_hcs.segmentation import SegmentationParams
from napari_hcs.vocabulary import CELL_CLASS_COLUMN


def _cells(n, *, start=0, well="B02"):
    index = np.arange(start, start + n)
    return pd.DataFrame({"crop_index": index, "well": well, "field": 0, "timepoint": index % 3,
                         "label": index + 1})


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """The bundled scPortrait plate segmented into a project (no features: quick)."""
    project = tmp_path_factory.mktemp("labels") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    run_plate(plate, project, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
              crop_size=32, features=False)
    return project


def test_labels_of_real_cells_are_found_after_reopening(segmented, tmp_path):
    import shutil

    project_dir = tmp_path / "project"
    shutil.copytree(segmented, project_dir)
    table = Project(project_dir).cell_table()
    assert (table[CELL_CLASS_COLUMN] == "").all()
    chosen = table.groupby("well").head(2)
    Project(project_dir).cell_labels().set(chosen[chosen.well == "B02"], "round")
    Project(project_dir).cell_labels().set(chosen[chosen.well == "B04"], "spread")
    reopened = Project(project_dir).cell_table()  # a new Project, as after closing the viewer
    labelled = reopened[reopened[CELL_CLASS_COLUMN] != ""].set_index("crop_index")
    assert labelled[CELL_CLASS_COLUMN].to_dict() == {
        **dict.fromkeys(chosen.loc[chosen.well == "B02", "crop_index"], "round"),
        **dict.fromkeys(chosen.loc[chosen.well == "B04", "crop_index"], "spread"),
    }
    saved = pd.read_csv(project_dir / CellLabels.FILE)
    assert list(saved.columns) == ["crop_index", "well", "site_key", "label", "class"]
    first = chosen.iloc[0]
    assert saved.site_key.iloc[0] == f"{first.well}_f{first.field:03d}_t{first.timepoint:03d}"
    assert set(reopened.columns) >= {"Genotype", "Treatment"}  # the well annotations are still joined


def test_a_label_of_another_cell_at_that_crop_index_is_left_out(tmp_path):
    labels = CellLabels(tmp_path)
    labels.set(_cells(3), "a")
    table = _cells(3)
    table.loc[1, "label"] = 99  # segmented again: crop 1 is another cell now
    table.loc[2, "timepoint"] = 7  # ... and crop 2 lies in another site
    assert labels.with_cell_class(table)[CELL_CLASS_COLUMN].tolist() == ["a", "", ""]


def test_set_clear_and_overwrite(tmp_path):
    labels = CellLabels(tmp_path)
    assert labels.read().empty and list(labels.read().columns) == ["crop_index", "well", "site_key", "label", "class"]
    labels.set(_cells(4), "a")
    labels.set(_cells(2, start=2), "b")
    table = labels.set(_cells(1), None)
    assert table[["crop_index", "class"]].values.tolist() == [[1, "a"], [2, "b"], [3, "b"]]
    assert table.dtypes["crop_index"] == np.int64 and table.dtypes["label"] == np.int64
    pd.testing.assert_frame_equal(CellLabels(tmp_path).read(), table)
    with pytest.raises(ValueError, match="needs a class name"):
        labels.set(_cells(1), "  ")
    with pytest.raises(ValueError, match="lack the column"):
        labels.set(pd.DataFrame({"crop_index": [1]}), "a")
    assert len(CellLabels(tmp_path)) == 3


def test_a_change_made_elsewhere_is_read(tmp_path):
    mine, theirs = CellLabels(tmp_path), CellLabels(tmp_path)
    mine.set(_cells(2), "a")
    assert len(theirs.read()) == 2
    text = (tmp_path / CellLabels.FILE).read_text().replace(",a\n", ",b\n")
    (tmp_path / CellLabels.FILE).write_text(text)  # another program edits the file
    assert set(mine.read()["class"]) == {"b"}


def test_rename_and_remove_class_keep_the_labels_consistent(tmp_path):
    labels = CellLabels(tmp_path)
    labels.set(_cells(3), "a")
    labels.set(_cells(1, start=5), "b")
    assert labels.rename_class("a", "c") == [0, 1, 2]
    assert labels.rename_class("missing", "d") == []
    assert CellLabels(tmp_path).read()["class"].tolist() == ["c", "c", "c", "b"]
    assert labels.remove_class("c") == [0, 1, 2]
    assert CellLabels(tmp_path).class_of().to_dict() == {5: "b"}


def test_a_read_only_folder_refuses_the_change_and_keeps_the_labels(tmp_path, monkeypatch):
    labels = CellLabels(tmp_path)
    labels.set(_cells(2), "a")
    before, text = labels.read(), (tmp_path / CellLabels.FILE).read_text()

    def refuse(text, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cell_labels_module, "write_text_atomic", refuse)
    with pytest.raises(OSError, match=f"Could not save cell labels to .*{CellLabels.FILE}: Permission denied"):
        labels.set(_cells(1, start=7), "b")
    with pytest.raises(OSError, match="not changed"):
        labels.remove_class("a")
    pd.testing.assert_frame_equal(labels.read(), before)
    assert (tmp_path / CellLabels.FILE).read_text() == text


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes read-only folders")
def test_a_really_read_only_folder(tmp_path):
    labels = CellLabels(tmp_path)
    labels.set(_cells(1), "a")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(OSError, match=CellLabels.FILE):
            labels.set(_cells(1, start=3), "a")
        assert len(labels.read()) == 1
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("content, message", [
    ("crop_index,class\n1,a\n", "lack the column"),
    ("crop_index,well,site_key,label,class\nx,B02,B02_f000_t000,1,a\n", "line 2: crop_index and label"),
])
def test_a_damaged_file_is_named(tmp_path, content, message):
    (tmp_path / CellLabels.FILE).write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        CellLabels(tmp_path).read()
    assert CellLabels.FILE in str(error.value)


def test_a_click_stays_quick_with_thousands_of_labels(tmp_path):
    labels = CellLabels(tmp_path)
    labels.set(_cells(5000), "a")
    start = time.perf_counter()
    for index in range(20):
        labels.set(_cells(1, start=index * 7), "b" if index % 2 else None)
    per_click = (time.perf_counter() - start) / 20
    assert per_click < 0.1, f"{per_click * 1000:.0f} ms per label"
    assert len(CellLabels(tmp_path).read()) == 5000 - 10
