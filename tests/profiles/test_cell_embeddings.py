"""Cell embeddings from the four sources on real BBBC021 crops, and their refusals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bbbc021_subset import copy_of, quick_cnn, subset_project
from napari_hcs.cancel import Cancelled
from napari_hcs.images.site_exclusions import SiteExclusions
from napari_hcs.profiles.cell_embeddings import EmbedRequest, embed_cells
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.project import Project


@pytest.fixture
def project(tmp_path_factory, shared_data, tmp_path):
    return copy_of(subset_project(tmp_path_factory, shared_data), tmp_path / "project")


def test_features_are_z_scored_per_plate(project):
    embedding = embed_cells(project, EmbedRequest(source="features"))
    table = Project(project).cell_table().set_index("crop_index").loc[embedding.crop_index]
    values = embedding.values[:]
    assert values.shape == (160, len(embedding.provenance["features"])) and np.isfinite(values).all()
    for plate in table["plate"].unique():
        on_plate = values[(table["plate"] == plate).to_numpy()]
        assert np.allclose(on_plate.mean(axis=0), 0, atol=1e-4)
    provenance = embedding.provenance
    assert provenance["source"] == "features" and provenance["normalisation"] == {"method": "plate", "controls": None}
    assert provenance["nan_values_set_to_0"] == 0 and provenance["cells_dropped"] == {}


def test_features_against_controls(project):
    embedding = embed_cells(project, EmbedRequest(source="features", controls="compound=DMSO"))
    table = Project(project).cell_table().set_index("crop_index").loc[embedding.crop_index]
    dmso = (table["compound"] == "DMSO").to_numpy()
    assert np.allclose(embedding.values[:][dmso].mean(axis=0), 0, atol=1e-4)
    assert embedding.provenance["normalisation"]["controls"] == "compound=DMSO"


def test_pca_of_the_crops_streams_and_leaves_out_excluded_sites(project):
    cells = Project(project).cell_store().cells()
    key = f"{cells['well'].iloc[0]}_f{int(cells['field'].iloc[0]):03d}_t000"
    SiteExclusions(project).record_flags({key: ["focus"]})
    excluded = int(((cells["well"] == cells["well"].iloc[0]) & (cells["field"] == cells["field"].iloc[0])).sum())
    seen = []
    embedding = embed_cells(project, EmbedRequest(source="pca", dimensions=10, input_size=16, batch_size=32),
                            progress=lambda done, total: seen.append((done, total)))
    assert embedding.values.shape == (160 - excluded, 10)
    assert embedding.provenance["cells_dropped"] == {key: excluded}
    assert 0 < embedding.provenance["explained_variance"] <= 1 and embedding.provenance["size"] == 16
    assert seen[-1] == (2 * (160 - excluded), 2 * (160 - excluded))
    assert not set(embedding.crop_index) & set(cells.loc[(cells["well"] == cells["well"].iloc[0])
                                                         & (cells["field"] == cells["field"].iloc[0]), "crop_index"])


@pytest.mark.slow
def test_autoencoder_is_trained_and_embeds_every_cell(project):
    embedding = embed_cells(project, EmbedRequest(source="autoencoder", dimensions=8, epochs=1, input_size=16,
                                                  device="cpu"))
    assert embedding.values.shape == (160, 8) and np.isfinite(embedding.values[:]).all()
    provenance = embedding.provenance
    assert provenance["epochs"] == 1 and provenance["training_seconds"] > 0
    assert (project / "models" / "embedding-autoencoder.pt").is_file()
    assert Project(project).models().names() == []  # an embedding model is not a classifier


def test_cnn_penultimate_layer_of_the_newest_model(project):
    quick_cnn(project)
    embedding = embed_cells(project, EmbedRequest(source="cnn", device="cpu"))
    assert embedding.values.shape == (160, 16)
    assert embedding.provenance["model"] == "quick" and embedding.provenance["classes"] == ["DMSO", "cyclohexamide"]


def test_nan_embeddings_are_refused_and_nothing_is_lost(project):
    import torch

    from napari_hcs.nn import save_checkpoint
    from napari_hcs.nn.models import build_model
    from napari_hcs.nn.preprocess import Preprocess

    EmbeddingStore(project).write("cnn", np.arange(3), np.ones((3, 2)), provenance={"source": "cnn"})
    model = build_model("cnn1", in_channels=3, num_classes=2, depth=1, width=1, hidden=8)
    with torch.no_grad():
        model.hidden[0].bias.fill_(float("nan"))
    meta = {"task": "classification", "classes": ["DMSO", "cyclohexamide"], "channels": ["DNA", "tubulin", "actin"],
            "crop_size": 68, "preprocess": Preprocess(crop_size=68).to_meta()}
    save_checkpoint(project / "models" / "broken.pt", model, meta)
    with pytest.raises(ValueError, match=r"Model 'broken' gave NaN or infinite embedding values for 160 of 160 "
                                         r"cells \(wells B02: \d+"):
        embed_cells(project, EmbedRequest(source="cnn", model="broken", device="cpu"))
    assert EmbeddingStore(project).read("cnn").values.shape == (3, 2)


def test_unknown_model_and_forest_are_refused(project):
    with pytest.raises(FileNotFoundError, match="No model named 'nope' .*its models: none yet"):
        embed_cells(project, EmbedRequest(source="cnn", model="nope"))
    with pytest.raises(FileNotFoundError, match="has no CNN to embed the cells with"):
        embed_cells(project, EmbedRequest(source="cnn"))


def test_missing_features_and_cells_are_clear(project, tmp_path):
    shutil.rmtree(project / "features")
    with pytest.raises(ValueError, match="has no feat_\\* features; measure them first"):
        embed_cells(project, EmbedRequest(source="features"))
    with pytest.raises(FileNotFoundError, match="has no cells"):
        embed_cells(tmp_path / "empty", EmbedRequest(source="pca"))


def test_cancel_keeps_what_was_stored(project):
    EmbeddingStore(project).write("pca", np.arange(2), np.zeros((2, 2)), provenance={"source": "pca"})
    with pytest.raises(Cancelled):
        embed_cells(project, EmbedRequest(source="pca", dimensions=4, input_size=8), cancel=lambda: True)
    assert EmbeddingStore(project).read("pca").values.shape == (2, 2)


def test_request_checks_its_options():
    with pytest.raises(ValueError, match="EmbedRequest.source must be one of cnn, features, pca, autoencoder"):
        EmbedRequest(source="tsne")
    with pytest.raises(ValueError, match="EmbedRequest.normalisation must be one of plate, global"):
        EmbedRequest(source="pca", normalisation="robust")
    with pytest.raises(ValueError, match="expected COLUMN=VALUE"):
        EmbedRequest(source="pca", controls="DMSO")
