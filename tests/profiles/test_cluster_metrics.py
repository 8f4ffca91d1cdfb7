"""Cluster sizes and metrics, and Table 6.1 of several embeddings, on synthetic and real cells."""

from __future__ import annotations

import numpy as np
import pytest

from bbbc021_subset import subset_project
from napari_hcs.profiles.cluster_metrics import TABLE_6_1_COLUMNS, cluster_report, markdown_table, table_6_1
from napari_hcs.project import Project


def _two_groups(n=40, seed=0):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0, 1, (n, 3)), rng.normal(6, 1, (n, 3))])
    return values, np.repeat([0, 1], n), np.repeat(["DMSO", "drug"], n)


def test_perfect_clusters_score_perfectly():
    values, clusters, truth = _two_groups()
    report = cluster_report(values, clusters, truth=truth)
    metrics = report.metrics
    assert report.sizes == {0: 40, 1: 40} and report.sizes_text() == "40 / 40"
    assert metrics["homogeneity"] == metrics["completeness"] == metrics["v_measure"] == 1.0
    assert metrics["adjusted_rand"] == 1.0 and metrics["silhouette"] > 0.6 and metrics["davies_bouldin"] < 0.6


def test_random_clusters_score_near_zero_and_sizes_come_largest_first():
    values, _, truth = _two_groups()
    clusters = np.random.default_rng(1).integers(0, 3, len(values))
    report = cluster_report(values, clusters, truth=truth)
    assert report.metrics["v_measure"] < 0.1 and report.metrics["silhouette"] < 0.1
    assert list(report.sizes.values()) == sorted(report.sizes.values(), reverse=True)


def test_noise_single_cluster_and_sampling():
    values, clusters, _ = _two_groups()
    clusters[:5] = -1
    report = cluster_report(values, clusters, sample=30)
    assert report.metrics["noise"] == 5 and report.sizes_text() == "40 / 35 / noise 5"
    assert "v_measure" not in report.metrics and report.metrics["silhouette"] is not None
    single = cluster_report(values, np.zeros(len(values), dtype=int))
    assert single.metrics["silhouette"] is None and single.metrics["davies_bouldin"] is None
    with pytest.raises(ValueError, match="79 cluster label"):
        cluster_report(values, clusters[:-1])
    with pytest.raises(ValueError, match=r"3 known class\(es\) for 80 clustered rows"):
        cluster_report(values, clusters, truth=["a", "b", "c"])


def test_table_6_1_has_one_row_per_embedding():
    values, clusters, truth = _two_groups()
    reports = {"cnn": cluster_report(values, clusters, truth=truth),
               "pca": cluster_report(values, 1 - clusters)}
    table = table_6_1(reports)
    assert list(table.index) == ["cnn", "pca"] and list(table.columns) == ["cluster sizes", *TABLE_6_1_COLUMNS]
    assert np.isnan(table.loc["pca", "V-measure"]) and table.loc["cnn", "V-measure"] == 1.0
    text = markdown_table(table)
    assert text.splitlines()[0].startswith("| embedding | cluster sizes | homogeneity |")
    assert "| pca | 40 / 40 |  |" in text
    assert table_6_1({}).empty


def test_real_features_separate_cycloheximide_from_dmso_better_than_chance(tmp_path_factory, shared_data):
    from sklearn.cluster import KMeans

    table = Project(subset_project(tmp_path_factory, shared_data)).cell_table()
    features = [c for c in table.columns if c.startswith("feat_")]
    values = table[features].to_numpy(dtype=float)
    values = (values - values.mean(axis=0)) / np.where(values.std(axis=0) > 0, values.std(axis=0), 1)
    clusters = KMeans(2, n_init=10, random_state=0).fit_predict(values)
    shuffled = np.random.default_rng(0).permutation(table["compound"].to_numpy())
    real = cluster_report(values, clusters, truth=table["compound"])
    chance = cluster_report(values, clusters, truth=shuffled)
    assert real.metrics["v_measure"] > chance.metrics["v_measure"] + 0.05
    assert sum(real.sizes.values()) == len(table)
