"""Predicting a site, wells or the plate with saved models; the predictions column group; mismatches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from classify_projects import imported_copy, segmented_sample, tiny_cnn, wells_of

from napari_hcs.cancel import Cancelled
from napari_hcs.classify import (TrainRequest, predict_with, read_predictions, save_predictions, scope_indices,
                                 train_classifier)
from napari_hcs.plate import Site
from napari_hcs.project import ModelMismatchError

torch.set_num_threads(2)
COLUMNS = ["crop_index", "pred_class", "pred_confidence", "pred_margin", "pred_model", "prob_stimulated",
           "prob_unstimulated"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    project = segmented_sample(tmp_path_factory)
    train_classifier(project, TrainRequest("forest", n_trees=100))
    train_classifier(project, TrainRequest("cnn", kind="cnn", config=tiny_cnn()))
    return project


def _check_columns(frame, model):
    assert list(frame.columns) == COLUMNS and set(frame.pred_model) == {model}
    probabilities = frame[["prob_stimulated", "prob_unstimulated"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(frame.pred_confidence, probabilities.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(frame.pred_margin, np.abs(probabilities[:, 0] - probabilities[:, 1]), atol=1e-6)
    assert frame.pred_confidence.dtype == np.float32 and frame.pred_margin.dtype == np.float32


def test_forest_predicts_the_plate(trained):
    done = []
    frame = predict_with(trained, "forest", progress=lambda d, t: done.append((d, t)))
    _check_columns(frame, "forest")
    table = trained.cell_table()
    assert len(frame) == len(table) == 218 and done[-1] == (218, 218)
    truth = table.set_index("crop_index").loc[frame.crop_index, "class"].to_numpy()
    assert (frame.pred_class.to_numpy() == truth).mean() > 0.8  # train and val cells together


def test_cnn_predicts_a_site_and_wells(trained):
    table = trained.cell_table()
    site = scope_indices(table, site=Site("B04", 0, 2))
    assert len(site) == 45 and wells_of(table, site) == {"B04"}
    frame = predict_with(trained, "cnn", crop_indices=site[::-1], device="cpu")
    _check_columns(frame, "cnn")
    assert frame.crop_index.tolist() == site[::-1].tolist()
    wells = scope_indices(table, wells=["B02"])
    assert len(wells) == 78 and wells_of(table, wells) == {"B02"}
    assert len(scope_indices(table)) == 218


def test_saving_merges_the_cells_of_one_model(trained):
    table = trained.cell_table()
    first = predict_with(trained, "forest", crop_indices=scope_indices(table, wells=["B02"]))
    save_predictions(trained, first)
    second = predict_with(trained, "forest", crop_indices=scope_indices(table, site=Site("B04", 0, 1)))
    merged = save_predictions(trained, second)
    assert len(merged) == 78 + 45 and merged.crop_index.is_monotonic_increasing
    assert read_predictions(trained).equals(merged)
    cells = trained.cell_table()
    assert cells.pred_class.notna().sum() == 123 and {"pred_margin", "pred_model"} <= set(cells.columns)
    other = save_predictions(trained, predict_with(trained, "cnn", crop_indices=[0, 1], device="cpu"))
    assert other.crop_index.tolist() == [0, 1] and set(other.pred_model) == {"cnn"}


def test_cancel_stops_prediction(trained):
    with pytest.raises(Cancelled):
        predict_with(trained, "cnn", device="cpu", cancel=lambda: True)
    with pytest.raises(Cancelled):
        predict_with(trained, "forest", cancel=lambda: True)


def test_a_model_predicts_another_plate_with_the_same_channels(trained, tmp_path):
    other = imported_copy(trained, tmp_path / "other")
    frame = predict_with(other, "cnn", catalog=trained.models(), device="cpu")
    reference = predict_with(trained, "cnn", device="cpu")
    np.testing.assert_allclose(frame.prob_stimulated, reference.prob_stimulated, rtol=1e-4, atol=1e-5)


def test_other_channels_or_crop_size_are_refused_naming_both(trained, tmp_path):
    renamed = imported_copy(trained, tmp_path / "renamed", channels=["GFP", "Hoechst", "RFP"])
    for model in ("cnn", "forest"):
        with pytest.raises(ModelMismatchError, match=rf"Model '{model}' was trained on channels Alexa488, DAPI, "
                                                      r"mCherry.*has channels GFP, Hoechst, RFP"):
            predict_with(renamed, model, catalog=trained.models())
    larger = imported_copy(trained, tmp_path / "larger", crop_size=24)
    with pytest.raises(ModelMismatchError, match=r"\(16x16 crops\).*\(24x24 crops\)"):
        predict_with(larger, "cnn", catalog=trained.models())


def test_forest_refuses_cells_without_features(trained, tmp_path_factory):
    project = segmented_sample(tmp_path_factory, "unmeasured")
    train_classifier(project, TrainRequest("forest", n_trees=20))
    features = project.folder / "features"
    next(iter(sorted(features.glob("*.parquet")))).unlink()
    with pytest.raises(ValueError, match=r"of the 218 cells have no features.*measure features"):
        predict_with(project, "forest")
