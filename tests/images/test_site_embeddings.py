"""Site embeddings of real plates: PCA, per-channel autoencoders, a site classifier, well medians, clusters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_hcs.images.site_clusters import cluster_site_embedding, read_site_clusters, write_site_clusters
from napari_hcs.images.site_embeddings import (
    SITE_ROWS,
    SiteEmbeddingOptions,
    embed_sites,
    read_site_embedding,
    site_stack,
    well_embeddings,
)
from napari_hcs.images.site_exclusions import SiteExclusions
from napari_hcs.io import open_plate
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.samples import sample_layout, sample_path

KEYS = ["B02_f000_t001", "B02_f000_t002", "B02_f000_t003", "B04_f000_t001", "B04_f000_t002", "B04_f000_t003"]


@pytest.fixture(scope="module")
def mini():
    """The bundled scPortrait sample (540 x 540, the same two wells and three timepoints)."""
    return open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())


@pytest.mark.slow
def test_the_real_plate_downsampled_per_channel(scportrait_dir):
    plate = open_plate(scportrait_dir)
    stack, table = site_stack(plate, size=16)
    assert stack.shape == (6, 3, 16, 16) and stack.dtype == np.float32 and np.isfinite(stack).all()
    assert table["site_key"].tolist() == KEYS and table["site_index"].tolist() == list(range(6))
    assert table["Genotype"].tolist() == ["Genotype1"] * 3 + ["Genotype2"] * 3
    # each channel scaled by the plate: median 0, 1-99 % range 1
    for channel in range(3):
        low, median, high = np.percentile(stack[:, channel], [1, 50, 99])
        assert abs(median) < 1e-6 and high - low == pytest.approx(1.0, rel=1e-4)


def test_pca_embedding_is_stored_as_sites_and_clusters_by_genotype(mini, tmp_path):
    embedding = embed_sites(mini, project_dir=tmp_path, options=SiteEmbeddingOptions(size=32))
    stored = EmbeddingStore(tmp_path, rows="sites").read("site-pca")
    assert stored.crop_index.tolist() == list(range(6)) and stored.values.shape == (6, 5)
    assert stored.provenance["rows"] == SITE_ROWS and stored.provenance["site_keys"] == KEYS
    assert stored.provenance["n_excluded"] == 0
    again = read_site_embedding(tmp_path, "pca", mini)
    np.testing.assert_allclose(again.values, embedding.values)
    assert again.table["Genotype"].tolist() == embedding.table["Genotype"].tolist()
    columns = ["field", "timepoint"]
    assert again.table[columns].values.tolist() == embedding.table[columns].values.tolist()
    clusters = cluster_site_embedding(embedding, k=2, labels_column="Genotype")
    assert sorted(clusters.report.sizes.values()) == [3, 3]
    assert clusters.report.metrics["v_measure"] == pytest.approx(1.0)
    assert clusters.wells is None  # two wells cannot make more than two clusters
    write_site_clusters(tmp_path, clusters)
    saved = read_site_clusters(tmp_path)["site-pca"]
    assert saved["method"] == "kmeans" and saved["k"] == 2 and list(saved["sites"]) == KEYS
    json.dumps(saved)
    wells = embedding.wells()
    assert wells["well"].tolist() == ["B02", "B04"] and wells["n_sites"].tolist() == [3, 3]
    np.testing.assert_allclose(wells.filter(like="dim_").iloc[0], np.median(embedding.values[:3], axis=0), rtol=1e-5)


def test_excluded_sites_are_left_out_and_counted(mini, tmp_path):
    SiteExclusions(tmp_path).record_flags({"B04_f000_t002": ["focus"], "B02_f000_t001": []})
    embedding = embed_sites(mini, project_dir=tmp_path, options=SiteEmbeddingOptions(size=16))
    assert embedding.excluded == ["B04_f000_t002"] and len(embedding.table) == 5
    stored = EmbeddingStore(tmp_path, rows="sites").read("site-pca")
    assert stored.crop_index.tolist() == [0, 1, 2, 3, 5]  # rows keep their index in the plate's site list
    assert stored.provenance["excluded_sites"] == ["B04_f000_t002"] and stored.provenance["n_excluded"] == 1
    SiteExclusions(tmp_path).keep(["B04_f000_t002"])
    assert len(embed_sites(mini, project_dir=tmp_path, options=SiteEmbeddingOptions(size=16)).table) == 6


@pytest.mark.slow
def test_per_channel_autoencoders_concatenate_their_bottlenecks(mini, tmp_path):
    options = SiteEmbeddingOptions(source="autoencoder", size=16, dimensions=3, epochs=2, device="cpu")
    embedding = embed_sites(mini, project_dir=tmp_path, options=options)
    assert embedding.name == "site-autoencoder" and embedding.values.shape == (6, 9)
    assert np.isfinite(embedding.values).all()
    networks = EmbeddingStore(tmp_path, rows="sites").read("site-autoencoder").provenance["networks"]
    assert [n["channel"] for n in networks] == mini.channels and {n["epochs"] for n in networks} == {2}


def test_site_classifier_embeds_its_penultimate_layer(mini, tmp_path):
    options = SiteEmbeddingOptions(source="classifier", size=16, hidden=8, epochs=2, labels_column="Genotype",
                                   device="cpu")
    embedding = embed_sites(mini, project_dir=tmp_path, options=options)
    assert embedding.values.shape == (6, 8)
    assert embedding.provenance["classes"] == ["Genotype1", "Genotype2"]
    assert embedding.provenance["labels_column"] == "Genotype"


def test_classifier_needs_a_labelled_well_annotation(mini, tmp_path):
    options = SiteEmbeddingOptions(source="classifier", size=16, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="'class'.*Genotype, Treatment"):
        embed_sites(mini, project_dir=tmp_path, options=options)
    one_class = mini.annotations.copy()
    one_class["Genotype"] = "Genotype1"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    plate.annotations = one_class
    with pytest.raises(ValueError, match="at least two classes"):
        embed_sites(plate, project_dir=tmp_path / "one", options=SiteEmbeddingOptions(
            source="classifier", size=16, epochs=1, labels_column="Genotype", device="cpu"))
    assert "site-classifier" not in EmbeddingStore(tmp_path, rows="sites").names()


def test_recorded_preprocessing_is_applied(mini, tmp_path):
    from napari_hcs.images.preprocess import PreprocessOptions
    from napari_hcs.project import Project

    Project(tmp_path).update_meta(preprocess=PreprocessOptions(steps=("centre_crop",), crop_size=256).to_dict())
    embedding = embed_sites(mini, project_dir=tmp_path, options=SiteEmbeddingOptions(size=16))
    assert embedding.provenance["options"]["preprocess"]["steps"] == ["centre_crop"]
    plain = embed_sites(mini, project_dir=tmp_path / "plain", options=SiteEmbeddingOptions(size=16))
    assert not np.allclose(np.abs(plain.values), np.abs(embedding.values), atol=1e-3)


def test_bad_options_and_too_many_clusters(mini, tmp_path):
    with pytest.raises(ValueError, match="unknown; choose one of pca, autoencoder, classifier"):
        SiteEmbeddingOptions(source="umap")
    with pytest.raises(ValueError, match="size must be a whole number of at least 8"):
        SiteEmbeddingOptions(size=4)
    embedding = embed_sites(mini, project_dir=tmp_path, options=SiteEmbeddingOptions(size=16))
    with pytest.raises(ValueError, match="6 site.*cannot make 7 clusters"):
        cluster_site_embedding(embedding, k=7)
    without_truth = cluster_site_embedding(embedding, k=2, labels_column="class")
    assert without_truth.labels_column is None and "v_measure" not in without_truth.report.metrics


def test_well_embeddings_are_medians():
    import pandas as pd

    table = pd.DataFrame({"plate": "P", "well": ["A01", "A01", "A01", "A02"], "site_key": list("abcd"),
                          "class": ["x", "x", "x", "y"]})
    values = np.array([[0.0, 1.0], [2.0, 5.0], [10.0, 3.0], [7.0, 7.0]])
    wells = well_embeddings(values, table)
    assert wells[["dim_000", "dim_001"]].values.tolist() == [[2.0, 3.0], [7.0, 7.0]]
    assert wells["class"].tolist() == ["x", "y"] and wells["n_sites"].tolist() == [3, 1]
