"""Normalisation within plates: each timepoint of a time course by its own statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_hcs.nn import TrainConfig, load_checkpoint, predict_cells, train_model
from napari_hcs.nn.plate_normalisation import PlateNormaliser
from napari_hcs.nn.predict import normalisation_table

from training_cells import CHANNELS, make_crops, small


def _time_course(n: int = 64, size: int = 16, *, gain: float = 2.0, offset: float = 300.0):
    """One plate imaged twice: timepoint 2 is timepoint 1 ``gain`` times brighter plus ``offset``."""
    table, crops = make_crops(n, size)
    first = table.assign(timepoint=1)
    later = table.assign(timepoint=2, crop_index=table.crop_index + n)
    both = pd.concat([first, later], ignore_index=True)
    return both, np.concatenate([crops, crops * gain + offset]).astype(np.float32)


def _train_on_first_timepoint(table, crops, tmp_path, **options):
    first = (table.timepoint == 1).to_numpy()
    split = np.where(first, "train", "")  # timepoint 2 is not trained on, but is in the table
    # Linear intensities: a gain and an offset are then removed exactly by the statistics.
    return train_model(table, crops, small(epochs=2, tta=False, amp=False, intensity="linear", **options),
                       label_column="cls", split=split, channels=CHANNELS, checkpoint_path=tmp_path / "m.pt")


def test_a_later_timepoint_is_predicted_with_its_own_statistics(tmp_path):
    table, crops = _time_course()
    result = _train_on_first_timepoint(table, crops, tmp_path, normalise_within="timepoint")
    normalisation = result.meta["normalisation"]
    assert normalisation["within"] == ["timepoint"]
    assert sorted(normalisation["plates"]) == ["P1 (timepoint=1)", "P1 (timepoint=2)"]
    assert result.meta["hyperparameters"]["normalise_within"] == "timepoint"
    model, meta = load_checkpoint(tmp_path / "m.pt")
    options = dict(device="cpu", channels=CHANNELS, table=table)
    first = predict_cells(model, meta, crops, indices=np.arange(64), **options)
    later = predict_cells(model, meta, crops, indices=np.arange(64, 128), **options)
    np.testing.assert_allclose(later.probabilities, first.probabilities, atol=1e-4)
    stats = PlateNormaliser.from_meta(meta["normalisation"]).stats
    np.testing.assert_allclose(stats["P1 (timepoint=2)"]["mean"],
                               np.array(stats["P1 (timepoint=1)"]["mean"]) * 2 + 300, rtol=1e-6)


def test_a_new_timepoint_at_prediction_gets_its_statistics_from_its_cells(tmp_path):
    table, crops = _time_course()
    first = (table.timepoint == 1).to_numpy()
    result = train_model(table[first].reset_index(drop=True), crops,
                         small(epochs=2, tta=False, amp=False, normalise_within="timepoint", intensity="linear"),
                         label_column="cls", split=np.full(first.sum(), "train"), channels=CHANNELS)
    assert list(result.meta["normalisation"]["plates"]) == ["P1 (timepoint=1)"]
    options = dict(device="cpu", channels=CHANNELS, table=table)
    on_first = predict_cells(result.model, result.meta, crops, indices=np.arange(64), **options)
    on_later = predict_cells(result.model, result.meta, crops, indices=np.arange(64, 128), **options)
    np.testing.assert_allclose(on_later.probabilities, on_first.probabilities, atol=1e-4)


def test_whole_plate_statistics_see_the_later_timepoint_as_other_cells(tmp_path):
    table, crops = _time_course()
    result = _train_on_first_timepoint(table, crops, tmp_path)
    assert result.meta["normalisation"]["within"] == []
    options = dict(device="cpu", channels=CHANNELS, table=table)
    first = predict_cells(result.model, result.meta, crops, indices=np.arange(64), **options)
    later = predict_cells(result.model, result.meta, crops, indices=np.arange(64, 128), **options)
    assert np.abs(later.probabilities - first.probabilities).max() > 0.05


def test_prediction_without_the_column_names_it(tmp_path):
    table, crops = _time_course()
    result = _train_on_first_timepoint(table, crops, tmp_path, normalise_within="timepoint")
    with pytest.raises(KeyError, match="Column 'timepoint' is not in the cell table"):
        predict_cells(result.model, result.meta, crops, indices=np.arange(64, 128), device="cpu",
                      channels=CHANNELS, table=table.drop(columns="timepoint"))


def test_the_project_table_is_read_when_the_store_cells_lack_the_column(tmp_path, monkeypatch):
    meta = {"normalisation": PlateNormaliser(within=("batch",)).to_meta()}
    cells = pd.DataFrame({"crop_index": [0], "plate": ["P1"], "timepoint": [1]})
    with_batch = cells.assign(batch="b1")
    assert normalisation_table(tmp_path, with_batch, meta) is with_batch
    annotated = cells.assign(batch="b2")  # the batch is a well annotation of the project's table
    monkeypatch.setattr("napari_hcs.project.Project.__init__", lambda self, folder: None)
    monkeypatch.setattr("napari_hcs.project.Project.cell_table", lambda self: annotated)
    assert normalisation_table(tmp_path, cells, meta) is annotated


def test_the_option_is_checked_by_name():
    assert TrainConfig(normalise_within=" timepoint , batch ").normalise_within == "timepoint,batch"
    assert TrainConfig(normalise_within=["timepoint"]).normalise_within_columns == ("timepoint",)
    assert TrainConfig(normalise_within=None).normalise_within_columns == ()
    with pytest.raises(ValueError, match="normalise_within needs normalisation='plate'"):
        TrainConfig(normalise_within="timepoint", normalisation="global")
    with pytest.raises(ValueError, match=r"TrainConfig.normalise_within must be a text 'COLUMN\[,COLUMN\]'"):
        TrainConfig(normalise_within=3)
