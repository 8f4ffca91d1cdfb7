"""Prediction: shapes, reloaded models predict identically, channel checks, project columns, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from napari_hcs.cli import main
from napari_hcs.nn.checkpoint import load_checkpoint
from napari_hcs.nn.predict import predict_cells, predict_project
from napari_hcs.nn.training import train_model
from napari_hcs.project.folder import Project
from training_cells import CHANNELS, make_crops, make_store, small

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained on a synthetic project, and the project folder."""
    folder = tmp_path_factory.mktemp("project")
    table, crops = make_crops(64)
    store = make_store(folder, table, crops)
    result = train_model(store.table(), store.crops, small(model="cnn2", epochs=4, lr=3e-3), label_column="cls",
                         channels=CHANNELS, checkpoint_path=folder / "models" / "m.pt")
    return folder, result


def test_predict_cells_shapes_and_probabilities(trained):
    folder, result = trained
    crops = Project(folder).cell_store().crops
    out = predict_cells(result.model, result.meta, crops, device="cpu", batch_size=10)
    assert out.probabilities.shape == (64, 2) and out.embeddings.shape == (64, result.model.embedding_dim)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(out.classes) <= {"a", "b"}
    assert ((out.margin >= 0) & (out.margin <= 1)).all()
    top = np.sort(out.probabilities, axis=1)
    np.testing.assert_allclose(out.margin, top[:, -1] - top[:, -2], rtol=1e-5)
    np.testing.assert_allclose(out.confidence, top[:, -1], rtol=1e-6)


def test_reloaded_model_predicts_identically(trained):
    folder, result = trained
    crops = Project(folder).cell_store().crops
    before = predict_cells(result.model, result.meta, crops, device="cpu")
    model, meta = load_checkpoint(folder / "models" / "m.pt")
    after = predict_cells(model, meta, crops, device="cpu")
    from_path = predict_cells(folder / "models" / "m.pt", None, crops, device="cpu")
    assert np.array_equal(before.probabilities, after.probabilities)
    assert np.array_equal(before.embeddings, after.embeddings)
    assert np.array_equal(before.probabilities, from_path.probabilities)
    other_batches = predict_cells(model, meta, crops, device="cpu", batch_size=7)
    np.testing.assert_allclose(other_batches.probabilities, before.probabilities, rtol=1e-5, atol=1e-6)


def test_indices_subset_keeps_their_order(trained):
    folder, result = trained
    crops = Project(folder).cell_store().crops
    full = predict_cells(result.model, result.meta, crops, device="cpu")
    order = np.array([40, 3, 17, 3])
    part = predict_cells(result.model, result.meta, crops, indices=order, device="cpu")
    assert np.array_equal(part.crop_index, order)
    np.testing.assert_allclose(part.probabilities, full.probabilities[order], rtol=1e-5, atol=1e-6)


def test_channel_mismatch_names_both_sides(trained):
    _, result = trained
    _, crops = make_crops(8)
    with pytest.raises(ValueError, match=r"trained on 3 channels \(DNA, tubulin, actin\) but the crops have 2"):
        predict_cells(result.model, result.meta, crops[:, :2], device="cpu")
    with pytest.raises(ValueError, match=r"trained on channels DNA, tubulin, actin but the data has DNA, GFP, actin"):
        predict_cells(result.model, result.meta, crops, channels=["DNA", "GFP", "actin"], device="cpu")
    with pytest.raises(ValueError, match="trained on 16x16 crops but these are 12x12"):
        predict_cells(result.model, result.meta, crops[..., :12, :12], device="cpu")


def test_channels_in_another_order_are_matched_by_name(trained):
    _, result = trained
    _, crops = make_crops(8)
    straight = predict_cells(result.model, result.meta, crops, channels=CHANNELS, device="cpu")
    shuffled = predict_cells(result.model, result.meta, crops[:, [2, 0, 1]],
                             channels=["actin", "DNA", "tubulin"], device="cpu")
    assert np.array_equal(straight.probabilities, shuffled.probabilities)


def test_predict_project_writes_columns(trained):
    folder, _ = trained
    done = []
    predict_project(folder, folder / "models" / "m.pt", device="cpu", progress=lambda d, t: done.append((d, t)))
    table = Project(folder).cell_table()
    assert {"pred_class", "pred_confidence", "pred_margin", "pred_model", "prob_a", "prob_b",
            "emb_000"} <= set(table.columns)
    assert table["pred_class"].notna().all() and done[-1] == (64, 64)
    assert (table.pred_class == table.cls).mean() > 0.5
    assert set(table.pred_model) == {"m"}
    np.testing.assert_allclose(table.pred_confidence, table[["prob_a", "prob_b"]].max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(table.pred_margin, (table.prob_a - table.prob_b).abs(), rtol=1e-5, atol=1e-6)


def test_cancel_stops_prediction(trained):
    folder, result = trained
    with pytest.raises(InterruptedError):
        predict_cells(result.model, result.meta, Project(folder).cell_store().crops, device="cpu", cancel=lambda: True)


def _project_with_features(tmp_path):
    """A project of 64 cells in 4 wells a class, with feat_* columns that separate the classes."""
    folder = tmp_path / "proj"
    make_store(folder, *make_crops(64, n_wells=4))
    store = Project(folder).cell_store()
    cells = store.cells()
    rng = np.random.default_rng(0)
    is_b = (cells.cls == "b").to_numpy()
    features = pd.DataFrame({
        "crop_index": cells.crop_index,
        "feat_centre_intensity": is_b * 2.0 + rng.normal(0, 0.5, len(cells)),
        "feat_noise": rng.normal(0, 1, len(cells)),
    })
    store.write_features("all", features)
    return folder


def test_cli_train_predict_compare(tmp_path, capsys):
    folder = _project_with_features(tmp_path)
    options = ["--model", "cnn2", "--depth", "1", "--width", "1", "--epochs", "2", "--batch-size", "16",
               "--device", "cpu"]
    model = tmp_path / "model.pt"
    assert main(["train", "--project", str(folder), "--label-column", "cls", "--test-fraction", "0.25",
                 "--out", str(model), *options]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["test"]["n"] == 16 and "confusion_matrix" in summary["test"]
    assert set(summary["test"]["per_class"]["a"]) == {"precision", "recall", "f1", "support"}
    assert (tmp_path / "model_confusion.json").exists() and (tmp_path / "model_confusion.png").exists()

    assert main(["predict", "--project", str(folder), "--model", str(model), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"] == 64 and 0.5 <= summary["mean_confidence"] <= 1 and 0 <= summary["mean_margin"] <= 1
    predicted = Project(folder).cell_table()
    assert "pred_class" in predicted and set(predicted.pred_model) == {"model"}

    assert main(["compare", "--project", str(folder), "--label-column", "cls", *options]) == 0
    out = capsys.readouterr().out
    results = json.loads(out[out.index("{"):])
    assert set(results) == {"cnn", "random_forest", "lda", "svm"}
    assert all("accuracy" in r and "per_class" in r for r in results.values())
    assert "| cnn" in out and (folder / "compare.json").exists() and (folder / "compare.csv").exists()


def test_cli_reports_bad_model_file(tmp_path, capsys):
    table, crops = make_crops(16)
    make_store(tmp_path / "proj", table, crops)
    (tmp_path / "bad.pt").write_bytes(b"nonsense")
    assert main(["predict", "--project", str(tmp_path / "proj"), "--model", str(tmp_path / "bad.pt")]) == 1
    assert "bad.pt is not a napari-hcs model" in capsys.readouterr().err


def test_autoencoder_predicts_embeddings_only(tmp_path, capsys):
    table, crops = make_crops(32)
    folder = tmp_path / "proj"
    make_store(folder, table, crops)
    model = tmp_path / "ae.pt"
    assert main(["train", "--project", str(folder), "--model", "ae", "--width", "1", "--epochs", "1",
                 "--batch-size", "16", "--device", "cpu", "--out", str(model)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "reconstruction_mse" in summary["val"] and "confusion_files" not in summary
    result = predict_project(folder, model, device="cpu")
    assert result.classes is None and result.embeddings.shape == (32, 64)
    columns = Project(folder).cell_table().columns
    assert "emb_063" in columns and "pred_class" not in columns


def test_cli_train_says_the_epoch_time_and_takes_the_recipe_options(tmp_path, capsys):
    table, crops = make_crops(96, n_wells=4)
    folder = tmp_path / "proj"
    make_store(folder, table, crops)
    model = tmp_path / "recipe.pt"
    assert main(["train", "--project", str(folder), "--label-column", "cls", "--model", "wrn", "--depth", "1",
                 "--width", "1", "--epochs", "2", "--batch-size", "16", "--device", "cpu", "--ensemble", "2",
                 "--no-tta", "--controls", "cls=a", "--monitor", "loss", "--out", str(model)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert "Training on cpu" in captured.err and "per epoch" in captured.err
    assert summary["tta"] is False and summary["normalisation"] == "plate"
    meta = load_checkpoint(model)[1]
    assert meta["normalisation"]["controls"] == "cls=a" and len(meta["members"]) == 2
    assert meta["hyperparameters"]["monitor"] == "loss"


def test_cli_refuses_controls_with_global_normalisation(tmp_path, capsys):
    table, crops = make_crops(32)
    make_store(tmp_path / "proj", table, crops)
    assert main(["train", "--project", str(tmp_path / "proj"), "--label-column", "cls", "--normalisation",
                 "global", "--controls", "cls=a", "--device", "cpu"]) == 1
    assert "--controls needs --normalisation plate" in capsys.readouterr().err


def test_cli_normalises_within_plates_in_train_compare_and_baseline(tmp_path, capsys):
    folder = _project_with_features(tmp_path)
    options = ["--depth", "1", "--width", "1", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
               "--normalise-within", "site"]
    model = tmp_path / "model.pt"
    assert main(["train", "--project", str(folder), "--label-column", "cls", "--out", str(model), *options]) == 0
    assert json.loads(capsys.readouterr().out)["normalise_within"] == ["site"]
    assert list(load_checkpoint(model)[1]["normalisation"]["plates"]) == ["P1 (site=1)"]
    assert main(["predict", "--project", str(folder), "--model", str(model), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["compare", "--project", str(folder), "--label-column", "cls", "--json", *options]) == 0
    assert json.loads((folder / "compare.json").read_text())["cnn_settings"]["normalise_within"] == "site"
    assert main(["baseline", "--project", str(folder), "--label-column", "cls", "--methods", "lda",
                 "--normalise-within", "site"]) == 0
    assert json.loads((folder / "baseline.json").read_text())["normalise_within"] == ["site"]
    assert main(["baseline", "--project", str(folder), "--label-column", "cls", "--methods", "lda",
                 "--normalise-within", "batch"]) == 1
    assert "Column 'batch' is not in the cell table" in capsys.readouterr().err
