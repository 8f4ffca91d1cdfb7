"""Training sets: each cell's class, how validation is carved, and the refusals (with the real sample)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from classify_projects import CLASSES, label_wells, segmented_sample

from napari_hcs.classify import TrainingSetError, check_training_set, interactive_split, training_table
from napari_hcs.classify.training_set import forest_cells, with_training_class
from napari_hcs.project import Project


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return segmented_sample(tmp_path_factory)


def _table(wells_per_class=1, sites_per_well=3, cells_per_site=5):
    rows = []
    for c, name in enumerate(["ctrl", "drug"]):
        for w in range(wells_per_class):
            for t in range(sites_per_well):
                for _ in range(cells_per_site):
                    rows.append({"well": f"B{c * 10 + w + 2:02d}", "field": 0, "timepoint": t, "class": name})
    table = pd.DataFrame(rows)
    table.insert(0, "crop_index", np.arange(len(table)))
    return with_training_class(table.assign(cell_class=""))


def test_training_class_is_the_cells_own_class_else_its_wells(sample):
    labels = sample.cell_labels()
    table = sample.cell_table()
    clicked = table[table.well == "B02"].head(3)
    labels.set(clicked, "mitotic")
    try:
        cells = training_table(sample)
        by_cell = cells.set_index("crop_index")["training_class"]
        assert set(by_cell[clicked.crop_index]) == {"mitotic"}
        rest = cells[~cells.crop_index.isin(clicked.crop_index)]
        assert (rest.training_class == rest.well.map(CLASSES)).all()
    finally:
        labels.set(clicked, None)


def test_unlabelled_cells_get_an_empty_class(tmp_path_factory):
    project = segmented_sample(tmp_path_factory, "half", classes={"B04": "stimulated"})
    cells = training_table(project)
    assert set(cells.loc[cells.well == "B02", "training_class"]) == {""}
    with pytest.raises(TrainingSetError, match=r"only class 'stimulated' \(140 cells\).*label wells on the plate "
                                               r"map or click cells"):
        check_training_set(cells)


def test_no_cells_yet_says_segment_first(tmp_path):
    with pytest.raises(TrainingSetError, match=r"no cells yet: segment the plate first \(Segment tab\)"):
        training_table(Project(tmp_path / "new"))


def test_sample_splits_by_site_within_wells(sample):
    cells = training_table(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split, how = interactive_split(cells, seed=0)
    assert how == "Validation: 1 of 3 sites of each class, held out within wells (a class has a single well)."
    val = cells[split == "val"]
    assert set(val.well) == {"B02", "B04"} and val.groupby("well").timepoint.nunique().eq(1).all()
    sides = split.groupby([cells.well, cells.timepoint]).nunique()
    assert (sides == 1).all()  # no site on both sides


def test_split_by_whole_wells_when_every_class_has_two():
    table = _table(wells_per_class=3, sites_per_well=1)
    split, how = interactive_split(table)
    assert how == "Validation: 1 of 3 wells of each class, whole wells held out."
    assert (split.groupby(table.well).nunique() == 1).all()


def test_split_by_cells_with_a_single_site_per_class():
    table = _table(sites_per_well=1, cells_per_site=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split, how = interactive_split(table)
    assert "cell by cell" in how and "optimistic" in how
    assert split.groupby(table["class"]).apply(lambda s: (s == "val").sum()).to_dict() == {"ctrl": 2, "drug": 2}


def test_unlabelled_rows_take_no_part():
    table = _table(wells_per_class=2)
    table.loc[:4, "training_class"] = ""
    split, _ = interactive_split(table)
    assert (split[:5] == "").all() and (split[5:] != "").all()


def test_a_class_of_wells_without_cells_is_named(sample):
    cells = training_table(sample)
    annotations = pd.DataFrame({"class": ["unstimulated", "stimulated", "dead"]}, index=["B02", "B04", "C07"])
    notes = check_training_set(cells, annotations=annotations, class_list=["unstimulated", "stimulated", "dead"])
    assert notes == ["Left out: class 'dead' is given to well(s) C07, which have no cells (not segmented yet?)."]
    only = cells.assign(training_class=np.where(cells.well == "B02", "unstimulated", ""))
    with pytest.raises(TrainingSetError, match=r"only class 'unstimulated' \(78 cells\) \(class 'dead' is given "
                                               r"to well\(s\) C07, which have no cells\)"):
        check_training_set(only, annotations=annotations)


def test_forest_needs_features(sample):
    cells = training_table(sample)
    without = cells.drop(columns=[c for c in cells if c.startswith("feat_")])
    with pytest.raises(TrainingSetError, match="no classical features.*measure features"):
        check_training_set(without, kind="forest")
    assert check_training_set(without, kind="cnn") == []
    unmeasured = cells.copy()
    unmeasured.loc[unmeasured.well == "B02", [c for c in cells if c.startswith("feat_")]] = np.nan
    kept, notes = forest_cells(unmeasured)
    assert set(kept.loc[kept.well == "B02", "training_class"]) == {""}
    assert notes == ["Left out: 78 labelled cells without features (their sites were not measured)."]


def test_relabelled_wells_are_read_again(tmp_path_factory):
    project = segmented_sample(tmp_path_factory, "relabel")
    label_wells(project, {"B02": "a", "B04": "a"})
    with pytest.raises(TrainingSetError, match=r"only class 'a' \(218 cells\)"):
        check_training_set(training_table(project))
