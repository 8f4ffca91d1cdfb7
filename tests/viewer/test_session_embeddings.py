"""The session's embeddings on the real sample: stored reductions, columns, colours, selection, wells."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from embedded_sample import embedded_sample, sample_plate

from napari_hcs.profiles.profile_store import read_well_profiles, write_well_profiles
from napari_hcs.viewer.session import Session
from napari_hcs.viewer.session_embeddings import scatter_colours, split_embedding_name


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return embedded_sample(tmp_path_factory.mktemp("embedded") / "project")


@pytest.fixture
def session(embedded, tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(embedded, folder)
    session = Session()
    session.set_plate(sample_plate(), project_dir=folder)
    return session


def test_opening_the_project_lists_its_embeddings_and_shows_its_reduction_coloured_by_cluster(session):
    assert session.embedding_names == ["pca", "pca-pca"]
    scatter = session.scatter
    assert scatter.source == {"embedding": "pca-pca", "components": [0, 1]}
    assert len(scatter) == len(session.cells) and scatter.xy.shape == (len(session.cells), 2)
    colours = session.scatter_colours
    assert session.colour_column == "cluster" and colours.names == ["cluster 0", "cluster 1"]
    clusters = session.cells.set_index("crop_index").loc[scatter.crop_index, "cluster"].to_numpy()
    assert np.array_equal(colours.codes, clusters)
    assert colours.counts.sum() == len(scatter)


def test_components_columns_and_colours_follow_the_choice_and_are_kept_in_the_project(session):
    events = []
    session.scatter_changed.connect(events.append)
    scatter = session.show_embedding("pca", (2, 0))
    stored = session.embedding_store.read("pca").values[:]
    assert np.allclose(scatter.xy, stored[:, [2, 0]]) and scatter.x_label == "pca 3"
    session.colour_by("pred_class")
    assert set(session.scatter_colours.names) <= {"Unstimulated", "Stimulated", "Dividing"}
    colour_of = {c["name"]: c["color"] for c in session.classes}
    assert session.scatter_colours.hex_colours[0] == colour_of[session.scatter_colours.names[0]]
    session.show_columns("centroid_x", "centroid_y")
    assert np.allclose(session.scatter.xy[:, 0], session.cells["centroid_x"])
    session.colour_by("well")
    assert session.scatter_colours.names == ["B02", "B04"] and len(events) == 4
    reopened = Session()
    reopened.set_plate(sample_plate(), project_dir=session.project.folder)
    assert reopened.scatter.source == {"columns": ["centroid_x", "centroid_y"]} and reopened.colour_column == "well"


def test_bad_choices_name_what_is_wrong(session):
    with pytest.raises(FileNotFoundError, match="no 'cnn' embedding.*pca, pca-pca"):
        session.show_embedding("cnn")
    with pytest.raises(ValueError, match="2 dimensions"):
        session.show_embedding("pca-pca", (0, 2))
    with pytest.raises(ValueError, match="'well' of the cell table is not numeric"):
        session.show_columns("well", "centroid_y")
    with pytest.raises(KeyError, match="no column 'nope'"):
        session.colour_by("nope")
    assert session.scatter.source["embedding"] == "pca-pca"


def test_selecting_cells_replaces_adds_removes_and_toggles(session):
    seen = []
    session.cell_selection_changed.connect(seen.append)
    ids = session.scatter.crop_index
    session.select_cells(ids[:5])
    session.select_cells(ids[3:8], "add")
    session.select_cells(ids[:2], "remove")
    assert session.selected_cells == frozenset(ids[2:8].tolist())
    session.select_cells(ids[2:4], "toggle")
    assert sorted(session.selected_array) == sorted(ids[4:8]) and len(seen) == 4
    session.clear_cell_selection()
    assert session.selected_cells == frozenset() and seen[-1] == frozenset()
    with pytest.raises(ValueError, match="Unknown selection mode"):
        session.select_cells(ids[:1], "xor")


def test_new_clusters_are_read_into_the_cells_and_recolour_the_scatter(session):
    store = session.embedding_store
    crop_index = session.cells["crop_index"].to_numpy()
    store.write_clusters(crop_index, np.where(np.arange(len(crop_index)) % 3 == 0, -1, 2), provenance={})
    session.refresh_clusters()
    assert set(session.cells["cluster"]) == {-1, 2}
    assert session.scatter_colours.names == ["cluster 2", "noise"]


def test_the_well_tree_comes_from_the_well_profiles_clusters(session):
    from scipy.cluster.hierarchy import linkage

    assert session.well_tree() is None
    table = pd.DataFrame({"plate": ["p", "p"], "well": ["B02", "B04"], "feat_a": [0.0, 1.0], "cluster": [0, 1]})
    tree = linkage(table[["feat_a"]].to_numpy(), "ward")
    write_well_profiles(session.project.folder, table, features=["feat_a"],
                        provenance={"clusters": {"linkage_matrix": tree.tolist(), "well_labels": ["p B02", "p B04"]}})
    assert read_well_profiles(session.project.folder).features == ["feat_a"]
    found = session.well_tree()
    assert found.wells == ["p B02", "p B04"] and found.clusters == [0, 1] and found.linkage.shape == (1, 4)


def test_colours_of_many_categories_and_of_numbers():
    wells = pd.Series([f"W{i:03d}" for i in range(100)] * 2)
    colours = scatter_colours(wells, column="well")
    assert len(colours.names) == 60 and colours.names[-1] == "other" and colours.counts[-1] == 2 * 41
    numbers = scatter_colours(pd.Series([np.nan, *range(50)]), column="feat_area")
    assert numbers.names[-1] == "missing" and numbers.codes[0] == len(numbers.names) - 1
    assert split_embedding_name("autoencoder-pca") == ("autoencoder", "pca")
