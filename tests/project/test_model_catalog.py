"""The model catalog: CNN checkpoints (from the viewer or the command line) and forests, by name."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from napari_hcs.io import open_plate
from napari_hcs.nn import TrainConfig, build_model, save_checkpoint, train_model
from napari_hcs.pipeline import run_plate
from napari_hcs.project import CellStore, ModelCatalog, ModelMismatchError, ModelRecord, Project
from napari_hcs.project import model_catalog as catalog_module
from napari_hcs.samples import sample_path
from napari_hcs.segmentation import SegmentationParams


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The bundled plate segmented, and a tiny CNN trained as ``napari-hcs train --out models/tiny.pt`` does."""
    project_dir = tmp_path_factory.mktemp("catalog") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    run_plate(plate, project_dir, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
              crop_size=32, features=False)
    project = Project(project_dir)
    table, store = project.cell_table(), CellStore(project_dir)
    split = np.where(table.timepoint == 3, "val", "train")
    config = TrainConfig(model="cnn1", depth=1, width=1, epochs=1, batch_size=64, device="cpu")
    train_model(table, store.crops, config, label_column="Treatment", split=split, channels=store.channels,
                checkpoint_path=project_dir / "models" / "tiny.pt")
    return project


def test_a_cli_checkpoint_is_listed_with_a_record_from_its_metadata(trained):
    catalog = trained.models()
    assert catalog.folder == trained.folder / "models"
    assert catalog.names() == ["tiny"] and "tiny" in catalog
    record = catalog.record("tiny")
    assert record.kind == "cnn" and record.classes == ["Stimulated", "Unstimulated"]
    assert record.channels == ["Alexa488", "DAPI", "mCherry"] and record.crop_size == 32
    assert len(record.history) == 1 and {"train_loss", "val_loss"} <= set(record.history[0])
    assert record.metrics["val"]["n"] > 0 and record.settings["model"] == "cnn1"
    assert "validation" in record.split and record.path == trained.folder / "models" / "tiny.pt"
    assert record.summary().startswith("tiny: CNN, 2 classes, validation accuracy")
    model, loaded = catalog.load("tiny")
    assert isinstance(model, torch.nn.Module) and not model.training and loaded == record
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 2)


def test_checkpoint_metadata_is_read_once_per_file_version(trained, monkeypatch):
    catalog_module._META_CACHE.clear()
    calls = []
    original = catalog_module._read_meta
    monkeypatch.setattr(catalog_module, "_read_meta", lambda path: calls.append(path) or original(path))
    trained.models().names()
    trained.models().record("tiny")
    trained.models().records()
    assert len(calls) == 1


def test_the_channels_and_crop_size_must_fit(trained):
    catalog = trained.models()
    catalog.check_fits("tiny", channels=["mCherry", "DAPI", "Alexa488"], crop_size=32)  # other order: fine
    with pytest.raises(ModelMismatchError) as error:
        catalog.check_fits("tiny", channels=["DAPI", "GFP"], crop_size=48, project="/data/other.napari-hcs")
    message = str(error.value)
    assert message.startswith("Model 'tiny' was trained on channels Alexa488, DAPI, mCherry (32x32 crops); "
                              "project /data/other.napari-hcs has channels DAPI, GFP (48x48 crops).")
    assert "Not in the project: Alexa488, mCherry; not in the model: GFP." in message
    with pytest.raises(ModelMismatchError, match=r"\(32x32 crops\); this project has .*\(48x48 crops\)"):
        catalog.check_fits("tiny", channels=["Alexa488", "DAPI", "mCherry"], crop_size=48)
    assert isinstance(error.value, ValueError)


def _forest():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    classes = np.where(features[:, 0] > 0, "big", "small")
    return make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(
        features, classes)


def _record(**values):
    options = dict(name="x", kind="forest", classes=["big", "small"], channels=["DAPI", "GFP"],
                   feature_columns=["feat_a", "feat_b", "feat_c"], metrics={"val": {"accuracy": np.float64(0.5)}},
                   split="validation: 1 of 3 sites per class, within wells", settings={"n_trees": 5})
    options.update(values)
    return ModelRecord(**options)


def test_a_forest_is_saved_loaded_evaluated_and_removed(tmp_path):
    catalog = ModelCatalog(tmp_path / "models")
    assert catalog.names() == [] and catalog.records() == []
    saved = catalog.save_forest("quick", _forest(), _record())
    assert saved.name == "quick" and saved.created and saved.path.name == "quick.forest.joblib"
    on_disk = json.loads((tmp_path / "models" / "quick.json").read_text())
    assert on_disk["path"] == "quick.forest.joblib" and on_disk["metrics"]["val"]["accuracy"] == 0.5
    pipeline, record = ModelCatalog(tmp_path / "models").load("quick")
    assert record == saved and record.feature_columns == ["feat_a", "feat_b", "feat_c"]
    assert pipeline.predict_proba(np.zeros((2, 3))).shape == (2, 2)
    catalog.check_fits("quick", channels=["GFP", "DAPI"], crop_size=64)  # a forest has no crop size
    assert catalog.evaluation("quick") is None
    evaluation = pd.DataFrame({"crop_index": [3, 4], "split": "val", "true_class": ["big", "small"],
                               "pred_class": ["big", "big"], "pred_confidence": np.float32([0.9, 0.6]),
                               "pred_margin": np.float32([0.8, 0.2])})
    catalog.save_evaluation("quick", evaluation)
    pd.testing.assert_frame_equal(catalog.evaluation("quick"), evaluation)
    with pytest.raises(ValueError, match="lacks the column"):
        catalog.save_evaluation("quick", evaluation.drop(columns="true_class"))
    catalog.remove("quick")
    assert catalog.names() == [] and list((tmp_path / "models").iterdir()) == []
    with pytest.raises(FileNotFoundError, match="No model named 'quick'"):
        catalog.remove("quick")


def test_a_viewer_cnn_record_and_the_newest_first(tmp_path):
    catalog = ModelCatalog(tmp_path)
    network = build_model("cnn1", in_channels=2, num_classes=2, depth=1, width=1, hidden=8)
    save_checkpoint(tmp_path / "cnn.pt", network, {"classes": ["big", "small"], "channels": ["DAPI", "GFP"],
                                                    "crop_size": 16})
    catalog.save_forest("forest", _forest(), _record())
    with pytest.raises(FileNotFoundError, match="no model file"):
        catalog.save_record(_record(name="nothing", kind="cnn"))
    record = catalog.save_record(_record(name="cnn", kind="cnn", crop_size=16, feature_columns=None,
                                         cancelled=True, history=[{"epoch": 1, "val_loss": 0.7}]))
    assert catalog.record("cnn") == record and record.cancelled and record.path == tmp_path / "cnn.pt"
    os.utime(tmp_path / "forest.forest.joblib", ns=(1, 1))
    os.utime(tmp_path / "forest.json", ns=(1, 1))
    assert catalog.names() == ["cnn", "forest"]
    assert [r.name for r in catalog.records()] == ["cnn", "forest"]
    assert catalog.load("cnn")[1].kind == "cnn"


def test_an_embedding_checkpoint_is_not_a_classifier(tmp_path):
    network = build_model("cnn1", in_channels=1, num_classes=2, depth=1, width=1, hidden=8)
    save_checkpoint(tmp_path / "ae.pt", network, {"task": "embedding"})
    assert ModelCatalog(tmp_path).names() == []


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "a b", "x" * 65, None])
def test_names_are_checked(tmp_path, name):
    catalog = ModelCatalog(tmp_path)
    with pytest.raises(ValueError, match="cannot name a model"):
        catalog.record(name)
    with pytest.raises(ValueError, match="cannot name a model"):
        catalog.save_forest(name, _forest(), _record())
    with pytest.raises(ValueError, match="cannot name a model"):
        catalog.remove(name)


def test_damaged_and_foreign_files_are_named(tmp_path):
    catalog = ModelCatalog(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    assert sorted(catalog.names()) == ["foreign", "junk"]  # listed, so that they can be removed
    assert catalog.records() == []
    with pytest.raises(ValueError, match=r"junk\.pt is not a napari-hcs model: it is not a torch checkpoint"):
        catalog.record("junk")
    with pytest.raises(ValueError, match=r"foreign\.pt is a torch file but not a napari-hcs model"):
        catalog.load("foreign")
    catalog.save_forest("forest", _forest(), _record())
    (tmp_path / "forest.forest.joblib").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match=r"forest\.forest\.joblib is not a readable forest model"):
        catalog.load("forest")
    (tmp_path / "forest.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"forest\.json is not a napari-hcs model record"):
        catalog.record("forest")
    with pytest.raises(FileNotFoundError, match=r"No model named 'other' .*models: "):
        catalog.record("other")
    catalog.remove("junk")
    assert not (tmp_path / "junk.pt").exists()


def test_a_model_of_another_project_is_imported_without_its_evaluation(trained, tmp_path):
    source = ModelCatalog(tmp_path / "other" / "models")
    source.save_forest("quick", _forest(), _record())
    source.save_evaluation("quick", pd.DataFrame({"crop_index": [3], "split": "val", "true_class": ["big"],
                                                  "pred_class": ["big"]}))
    here = ModelCatalog(tmp_path / "here" / "models")
    assert here.import_model(source.folder / "quick.forest.joblib") == "quick"
    assert here.names() == ["quick"] and here.evaluation("quick") is None  # its cells are the other project's
    assert here.load("quick")[1].classes == ["big", "small"]
    with pytest.raises(ValueError, match="A model named 'quick' exists"):
        here.import_model(source.folder / "quick.json")
    assert here.import_model(source.folder / "quick.json", name="copy") == "copy"
    assert here.record("copy").path.name == "copy.forest.joblib" and here.load("copy")[1].name == "copy"
    cnn = ModelCatalog(trained.folder / "models")
    assert here.import_model(cnn.folder / "tiny.pt") == "tiny"
    here.check_fits("tiny", channels=["mCherry", "DAPI", "Alexa488"], crop_size=32)
    with pytest.raises(ModelMismatchError, match="DAPI, GFP"):
        here.check_fits("tiny", channels=["DAPI", "GFP"], crop_size=32)
    with pytest.raises(FileNotFoundError, match="is not a model file"):
        here.import_model(tmp_path / "nothing.pt")
