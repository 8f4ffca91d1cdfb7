"""``napari-hcs embed`` and ``napari-hcs cluster`` on real BBBC021 crops, and their errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
from bbbc021_subset import copy_of, subset_project  # noqa: E402

from napari_hcs.cli import main  # noqa: E402
from napari_hcs.profiles.embedding_store import EmbeddingStore  # noqa: E402
from napari_hcs.project import Project  # noqa: E402


@pytest.fixture
def project(tmp_path_factory, shared_data, tmp_path):
    return copy_of(subset_project(tmp_path_factory, shared_data), tmp_path / "project")


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_embed_then_cluster_prints_table_and_json(project, capsys):
    assert main(["embed", "--project", str(project), "--source", "pca", "--dimensions", "8", "--input-size", "16",
                 "--reduction", "pca", "--json"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["embedding"] == "pca" and summary["cells"] == 160 and summary["dimensions"] == 8
    assert summary["reduction"] == "pca-pca" and "embed (pca)" in out.err
    assert EmbeddingStore(project).names() == ["pca", "pca-pca"]

    assert main(["cluster", "--project", str(project), "--reduction", "pca", "--k", "2",
                 "--labels-column", "compound"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0] == "| embedding | cluster sizes | homogeneity | completeness | V-measure | Davies-Bouldin | silhouette |"
    assert lines[2].startswith("| pca-pca | ")
    summary = _last_json(out)
    assert summary["clustered"] == "pca-pca" and summary["n_clusters"] == 2 and "v_measure" in summary["metrics"]
    assert set(Project(project).cell_table()["cluster"]) == {0, 1}


def test_cluster_wells_on_profiles(project, capsys):
    from napari_hcs.profiles.profile_store import read_well_profiles, write_well_profiles

    table = Project(project).cell_table()
    features = [c for c in table.columns if c.startswith("feat_")][:10]
    wells = table.groupby(["plate", "well"], as_index=False)[features].median()
    write_well_profiles(project, wells, features=features, provenance={"aggregation": "median"})
    assert main(["cluster", "--project", str(project), "--level", "well", "--method", "hierarchical",
                 "--linkage", "average", "--k", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["level"] == "well" and summary["linkage"] == "average"
    assert "linkage_matrix" in read_well_profiles(project).provenance["clusters"]


@pytest.mark.parametrize("argv, message", [
    (["cluster", "--embedding", "cnn"], "has no 'cnn' embedding (there are: none yet); run 'napari-hcs embed"),
    (["cluster", "--level", "well"], "no well profiles yet"),
    (["cluster", "--level", "well", "--embedding", "pca"], "Leave them out with --level well"),
    (["embed", "--source", "cnn", "--model", "nope"], "No model named 'nope'"),
])
def test_errors_are_one_clear_line(project, capsys, argv, message):
    assert main([argv[0], "--project", str(project), *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert f"napari-hcs {argv[0]}: error: " in err and message in err and "Traceback" not in err


def test_k_larger_than_the_cells(project, capsys):
    assert main(["embed", "--project", str(project), "--source", "features", "--json"]) == 0
    capsys.readouterr()
    assert main(["cluster", "--project", str(project), "--k", "500"]) == 1
    assert "k=500 clusters is larger than the number of cells (160)" in capsys.readouterr().err
    assert EmbeddingStore(project).read_clusters() is None


def test_choices_are_the_registries(capsys):
    with pytest.raises(SystemExit):
        main(["embed", "--project", ".", "--source", "tsne"])
    err = capsys.readouterr().err
    assert "invalid choice: 'tsne'" in err and "autoencoder" in err
