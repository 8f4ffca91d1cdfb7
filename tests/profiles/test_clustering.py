"""Clustering values, cells (on stored embeddings) and wells (on their profiles); reductions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bbbc021_subset import copy_of, subset_project
from napari_hcs.profiles import clustering
from napari_hcs.profiles.cell_embeddings import EmbedRequest, embed_cells
from napari_hcs.profiles.clustering import ClusterOptions, cluster_cells, cluster_values, cluster_wells
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.profiles.profile_store import read_well_profiles, write_well_profiles
from napari_hcs.profiles.reduction import reduce_embedding, reduce_values
from napari_hcs.project import Project


def _blobs(n=30, seed=0):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0, 0.3, (n, 4)) + [4, 0, 0, 1], rng.normal(0, 0.3, (n, 4)) + [0, 4, 1, 0]])
    return values, np.repeat([0, 1], n)


def _same_partition(a, b):
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("options", [ClusterOptions(method="kmeans"), ClusterOptions(method="hierarchical"),
                                     ClusterOptions(method="hierarchical", linkage="average"),
                                     ClusterOptions(method="hdbscan", min_cluster_size=5)])
def test_every_method_finds_two_blobs(options):
    values, truth = _blobs()
    result = cluster_values(values, options)
    assert _same_partition(result.labels, truth) and result.n_clusters == 2
    if options.method == "hierarchical":
        assert result.linkage_matrix.shape == (59, 4) and sorted(result.order.tolist()) == list(range(60))
    else:
        assert result.linkage_matrix is None and result.order is None


def test_large_inputs_use_mini_batches_and_a_sampled_dendrogram(monkeypatch):
    monkeypatch.setattr(clustering, "MINIBATCH_ABOVE", 20)
    monkeypatch.setattr(clustering, "HIERARCHICAL_SAMPLE", 25)
    values, truth = _blobs()
    assert _same_partition(cluster_values(values, ClusterOptions()).labels, truth)
    result = cluster_values(values, ClusterOptions(method="hierarchical", linkage="average"))
    assert _same_partition(result.labels, truth)
    assert len(result.sample) == 25 and result.linkage_matrix.shape == (24, 4)


def test_bad_values_and_options_are_refused():
    values, _ = _blobs(3)
    with pytest.raises(ValueError, match=r"k=7 clusters is larger than the number of cells \(6\)"):
        cluster_values(values, ClusterOptions(k=7), what="cells")
    with pytest.raises(ValueError, match="min_cluster_size 15 is larger than the number of rows"):
        cluster_values(values, ClusterOptions(method="hdbscan"))
    values[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 of 6 row\(s\) with NaN or infinite values \(rows 2\)"):
        cluster_values(values, ClusterOptions())
    with pytest.raises(ValueError, match="all zero, which has no cosine distance"):
        cluster_values(np.zeros((4, 2)), ClusterOptions(method="hierarchical", linkage="average"))
    with pytest.raises(ValueError, match="ClusterOptions.linkage must be one of ward, average"):
        ClusterOptions(linkage="single")
    with pytest.raises(ValueError, match="ClusterOptions.k must be an integer of at least 1"):
        ClusterOptions(k=0)


def test_pca_reduction_and_its_checks():
    values, truth = _blobs()
    reduced = reduce_values(values, method="pca")
    assert reduced.shape == (60, 2) and reduced.dtype == np.float32
    assert _same_partition(cluster_values(reduced, ClusterOptions()).labels, truth)
    with pytest.raises(ValueError, match="Reduction 'tsne' is not known"):
        reduce_values(values, method="tsne")
    with pytest.raises(ValueError, match="UMAP needs at least 4 rows"):
        reduce_values(values[:3, :2], method="umap", n_components=1)


@pytest.mark.slow
def test_umap_keeps_the_blobs_apart():
    values, truth = _blobs(60)
    seen = []
    reduced = reduce_values(values, method="umap", progress=lambda done, total: seen.append((done, total)))
    assert reduced.shape == (120, 2) and seen == [(1, 2), (2, 2)]
    assert _same_partition(cluster_values(reduced, ClusterOptions()).labels, truth)


@pytest.fixture
def project(tmp_path_factory, shared_data, tmp_path):
    return copy_of(subset_project(tmp_path_factory, shared_data), tmp_path / "project")


def test_cells_clustered_on_real_features(project):
    embed_cells(project, EmbedRequest(source="features"))
    seen = []
    result = cluster_cells(project, embedding="features", options=ClusterOptions(k=2), labels_column="compound",
                           progress=lambda done, total: seen.append(done))
    assert seen[-1] == 3 and result.n_clusters == 2
    table = Project(project).cell_table()
    assert table["cluster"].notna().all() and set(table["cluster"]) == {0, 1}
    frame, provenance = EmbeddingStore(project).read_clusters()
    assert provenance["embedding"] == "features" and provenance["method"] == "kmeans" and provenance["k"] == 2
    assert provenance["cells"] == 160 and 0 < provenance["metrics"]["v_measure"] <= 1
    assert sum(result.report.sizes.values()) == 160


def test_cells_clustered_on_a_reduction_made_when_missing(project):
    embed_cells(project, EmbedRequest(source="features"))
    result = cluster_cells(project, embedding="features", reduction="pca",
                           options=ClusterOptions(method="hierarchical", k=3))
    assert "features-pca" in EmbeddingStore(project).names() and result.n_clusters == 3
    assert EmbeddingStore(project).read_clusters()[1]["reduction"] == "pca"
    again = reduce_embedding(project, "features", method="pca")
    assert again.provenance["embedding"] == "features" and again.values.shape == (160, 2)


def test_clustering_before_embedding_says_what_to_run(project):
    with pytest.raises(FileNotFoundError, match="has no 'cnn' embedding .*run 'napari-hcs embed"):
        cluster_cells(project, embedding="cnn", options=ClusterOptions())
    with pytest.raises(FileNotFoundError, match="has no 'pca' embedding"):
        cluster_cells(project, embedding="pca", reduction="umap", options=ClusterOptions())
    with pytest.raises(FileNotFoundError, match="no well profiles yet"):
        cluster_wells(project, options=ClusterOptions())


def _well_profiles(project):
    table = Project(project).cell_table()
    features = [c for c in table.columns if c.startswith("feat_")][:20]
    wells = table.groupby(["plate", "well", "compound"], as_index=False)[features].median()
    wells[features] = (wells[features] - wells[features].mean()) / wells[features].std().replace(0, 1)
    write_well_profiles(project, wells, features=features,
                        provenance={"aggregation": "median", "normalisation": "standardize"})
    return wells


def test_wells_clustered_with_a_dendrogram(project):
    wells = _well_profiles(project)
    result = cluster_wells(project, options=ClusterOptions(method="hierarchical", k=2), labels_column="compound")
    profiles = read_well_profiles(project)
    clusters = profiles.provenance["clusters"]
    assert list(profiles.table["cluster"]) == result.labels.tolist() and "cluster" not in profiles.features
    assert np.asarray(clusters["linkage_matrix"]).shape == (len(wells) - 1, 4)
    assert sorted(clusters["order"]) == list(range(len(wells)))
    assert clusters["well_labels"][0] == f"{wells['plate'][0]} {wells['well'][0]}"
    assert profiles.provenance["aggregation"] == "median" and "homogeneity" in clusters["metrics"]
    # clustering again replaces the column
    cluster_wells(project, options=ClusterOptions(k=3))
    assert list(read_well_profiles(project).table.columns).count("cluster") == 1
    with pytest.raises(ValueError, match=rf"k=20 clusters is larger than the number of wells \({len(wells)}\)"):
        cluster_wells(project, options=ClusterOptions(k=20))


def test_nan_well_profiles_name_the_wells(project):
    wells = _well_profiles(project)
    wells.loc[1, wells.columns[3]] = np.nan
    write_well_profiles(project, wells, features=list(wells.columns[3:]), provenance={})
    with pytest.raises(ValueError, match=f"1 of {len(wells)} well profile.*wells {wells['plate'][1]} {wells['well'][1]}"):
        cluster_wells(project, options=ClusterOptions())
    assert isinstance(read_well_profiles(project).table, pd.DataFrame)
