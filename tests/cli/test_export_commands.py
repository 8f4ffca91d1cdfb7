"""``napari-hcs export``: formats, levels, JSON summary, refusals, the bundled sample."""

from __future__ import annotations

import json

import anndata
import numpy as np
import pandas as pd
import pytest

from napari_hcs.cli import main
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.profiles.profile_store import write_well_profiles
from napari_hcs.project import CellStore, Project

from predicted_sample import plausible_predictions, segmented_sample


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    store = CellStore.create(folder, channels=["DNA"], crop_size=1)
    rows = store.append_site("B02_f000_t000", pd.DataFrame({"plate": "P1", "well": ["B02"] * 4, "label": [1, 2, 3, 4]}),
                             np.zeros((4, 1, 1, 1)))
    store.write_features("B02_f000_t000", pd.DataFrame({"crop_index": rows.crop_index, "feat_area": [1.0, 2, 3, 4]}))
    EmbeddingStore(folder).write("cnn", rows.crop_index, np.ones((4, 8)), provenance={"source": "cnn"})
    return folder


def _run(*arguments) -> int:
    return main(["export", *map(str, arguments)])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "h5ad"])
def test_export_writes_each_format_and_prints_a_json_summary(project, tmp_path, capsys, fmt):
    out = tmp_path / f"cells.{fmt}"
    assert _run("--project", project, "--format", fmt, "--json", out) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 4 and summary["obsm"] == {"X_cnn": 8} and summary["bytes"] == out.stat().st_size
    assert {"columns", "seconds", "blocks", "missing"} <= set(summary)
    if fmt == "h5ad":
        assert list(anndata.read_h5ad(out).obsm) == ["X_cnn"]
    else:
        table = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
        assert len(table) == 4 and "cnn_007" in table and "feat_area" in table


def test_text_line_then_json_and_refusals(project, tmp_path, capsys):
    out = tmp_path / "cells.csv"
    assert _run("--project", project, "--format", "csv", "--embeddings", "cnn", out) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Wrote 4 cells to") and json.loads(lines[-1])["path"] == str(out)
    assert _run("--project", project, "--format", "csv", out) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert _run("--project", project, "--format", "csv", "--overwrite", out) == 0
    capsys.readouterr()
    assert _run("--project", project, "--format", "h5ad", "--embeddings", "pca", tmp_path / "x.h5ad") == 1
    assert "napari-hcs export: error: " in (err := capsys.readouterr().err) and "--source pca' first" in err
    assert _run("--project", project, "--format", "csv", "--level", "well", tmp_path / "w.csv") == 1
    assert "run 'napari-hcs profile --project" in capsys.readouterr().err
    assert _run("--project", project, "--format", "parquet", project / "embeddings" / "cnn" / "x.parquet") == 1
    assert "lies inside the input" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("--project", project, "--format", "xlsx", tmp_path / "x.xlsx")
    assert not (tmp_path / "x.h5ad").exists() and not (tmp_path / "w.csv").exists()


def test_well_level(project, tmp_path, capsys):
    table = pd.DataFrame({"plate": "P1", "well": ["B02", "B03"], "feat_area": [1.0, 2.0]})
    write_well_profiles(project, table, features=["feat_area"], provenance={"normalisation": "mad_robustize"})
    assert _run("--project", project, "--format", "h5ad", "--level", "well", "--json", tmp_path / "w.h5ad") == 0
    assert json.loads(capsys.readouterr().out)["x"] == "profile"
    adata = anndata.read_h5ad(tmp_path / "w.h5ad")
    assert adata.shape == (2, 1) and adata.uns["normalisation"] == "mad_robustize"


@pytest.mark.slow
def test_bundled_sample_with_predictions_and_a_pca_of_the_crops(tmp_path, capsys):
    """Real cells: the sample segmented, predictions, and the 'pca' source (PCA of the raw crops)."""
    from sklearn.decomposition import PCA

    project = Project(segmented_sample(tmp_path / "project"))
    plausible_predictions(project, model="wrn")
    store = project.cell_store()
    cells = store.cells()
    crops = store.crops[cells.crop_index.to_numpy()].reshape(len(cells), -1)
    EmbeddingStore(project.folder).write("pca", cells.crop_index.to_numpy(),
                                         PCA(8, random_state=0).fit_transform(crops), provenance={"source": "pca"})
    out = tmp_path / "cells.h5ad"
    assert _run("--project", project.folder, "--format", "h5ad", "--json", out) == 0
    summary = json.loads(capsys.readouterr().out)
    adata = anndata.read_h5ad(out)
    assert summary["rows"] == adata.n_obs == len(cells) and summary["x"] == "pca"
    assert adata.obs["pred_class"].notna().all() and set(adata.obs["well"]) == {"B02", "B04"}
    assert adata.obs["Treatment"].tolist() == np.where(adata.obs["well"] == "B02", "Unstimulated",
                                                       "Stimulated").tolist()
    assert adata.obsm["X_pca"].shape == (len(cells), 8) and adata.uns["model"].tolist() == ["wrn"]
