"""Export of cells and well profiles: h5ad (anndata, scanpy), CSV, Parquet, streaming, refusals, real data."""

from __future__ import annotations

import json
import threading
import tracemalloc
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from napari_hcs.profiles.embedding_rows import ColumnGroupRows
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.profiles.export import ExportOptions, export_project
from napari_hcs.profiles.profile_store import write_well_profiles
from napari_hcs.project import CellStore, Project

from predicted_sample import PARAMS

SITES = [("B02", 0), ("B02", 1), ("B03", 0)]


def synthetic_project(folder: Path, *, cells_per_site: int = 5, features: bool = True) -> Path:
    """Three sites; features; embeddings cnn (two cells missing, rows shuffled), pca and two UMAPs."""
    store = CellStore.create(folder, channels=["DNA"], crop_size=1)
    rng = np.random.default_rng(0)
    for well, field in SITES:
        key = f"{well}_f{field:03d}_t000"
        rows = pd.DataFrame({"plate": "P1", "well": well, "site": field, "field": field, "timepoint": 0,
                             "label": np.arange(1, cells_per_site + 1), "centroid_y": rng.random(cells_per_site)})
        rows = store.append_site(key, rows, np.zeros((cells_per_site, 1, 1, 1)))
        if features:
            store.write_features(key, pd.DataFrame({"crop_index": rows.crop_index,
                                                    "feat_area": rows.label * 10.0,
                                                    "feat_mean": rng.random(cells_per_site)}))
    n = cells_per_site * len(SITES)
    pd.DataFrame({"well": ["B02", "B03"], "compound": ["DMSO", "taxol"]}).to_csv(folder / "layout.csv", index=False)
    embeddings = EmbeddingStore(folder)
    kept = rng.permutation(np.arange(2, n))  # cells 0 and 1 have no cnn row; the rest out of order
    embeddings.write("cnn", kept, kept[:, None] + np.arange(4) / 10, provenance={"source": "cnn", "model": "wrn",
                                                                             "normalisation": "plate"})
    embeddings.write("pca", np.arange(n), np.arange(n * 3).reshape(n, 3), provenance={"source": "pca"})
    embeddings.write("cnn-umap", np.arange(n), np.ones((n, 2)), provenance={"source": "cnn", "reduction": "umap"})
    embeddings.write("pca-umap", np.arange(n), np.zeros((n, 2)), provenance={"source": "pca", "reduction": "umap"})
    embeddings.write_clusters(np.arange(n), np.arange(n) % 2, provenance={"embedding": "pca", "method": "kmeans",
                                                                          "k": 2})
    return folder


@pytest.fixture
def project(tmp_path) -> Path:
    return synthetic_project(tmp_path / "project")


def _export(project, out, **options):
    return export_project(project, out, ExportOptions(format=Path(out).suffix[1:], **options))


def test_h5ad_holds_metadata_features_every_embedding_and_provenance(project, tmp_path):
    summary = _export(project, tmp_path / "cells.h5ad")
    adata = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert adata.shape == (15, 2) and list(adata.var_names) == ["feat_area", "feat_mean"]
    assert set(adata.obsm) == {"X_cnn", "X_pca", "X_umap", "X_cnn_umap"}
    assert np.all(adata.obsm["X_umap"] == 0)  # the UMAP of the clustered embedding (pca)
    assert {"plate", "well", "label", "centroid_y", "compound", "cluster", "crop_index"} <= set(adata.obs)
    assert adata.obs["compound"].tolist() == ["DMSO"] * 10 + ["taxol"] * 5
    assert isinstance(adata.obs["cluster"].dtype, pd.CategoricalDtype)
    assert list(adata.obs["cluster"].cat.categories) == ["0", "1"]
    np.testing.assert_allclose(adata.X[:, 0], adata.obs["label"] * 10.0)
    cnn = adata.obsm["X_cnn"]
    assert np.isnan(cnn[:2]).all() and np.allclose(cnn[2:, 0], adata.obs["crop_index"][2:])  # aligned by crop_index
    assert summary.missing == {"cnn": 2, "pca": 0, "cnn-umap": 0, "pca-umap": 0}
    assert any("2 of 15 cells have no 'cnn'" in note for note in summary.warnings)
    uns = adata.uns
    assert uns["plates"].tolist() == ["P1"] and uns["model"].tolist() == ["wrn"]
    assert uns["embeddings"]["cnn"]["normalisation"] == "plate" and uns["clusters"]["method"] == "kmeans"
    assert uns["napari_hcs_version"] and uns["x"] == "features"
    assert summary.bytes == (tmp_path / "cells.h5ad").stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad", "project"]  # no temporary file


def test_csv_and_parquet_hold_the_same_flat_table(project, tmp_path):
    _export(project, tmp_path / "cells.h5ad")
    csv = _export(project, tmp_path / "cells.csv")
    _export(project, tmp_path / "cells.parquet")
    from_csv, from_parquet = pd.read_csv(tmp_path / "cells.csv"), pd.read_parquet(tmp_path / "cells.parquet")
    adata = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert list(from_csv.columns) == list(from_parquet.columns) and csv.columns == len(from_csv.columns)
    for column in ("cnn_000", "cnn_003", "pca_002", "cnn_umap_001", "pca_umap_000", "feat_area", "compound"):
        assert column in from_csv
    assert len(from_csv) == len(from_parquet) == adata.n_obs == 15
    pd.testing.assert_frame_equal(from_csv[["well", "label", "crop_index"]], from_parquet[["well", "label",
                                                                                           "crop_index"]])
    np.testing.assert_allclose(from_parquet[[f"cnn_{i:03d}" for i in range(4)]], adata.obsm["X_cnn"], rtol=1e-6)
    np.testing.assert_allclose(from_csv[[f"cnn_{i:03d}" for i in range(4)]], adata.obsm["X_cnn"], rtol=1e-6)
    provenance = json.loads(pq.read_metadata(tmp_path / "cells.parquet").metadata[b"napari_hcs"])
    assert provenance["missing"]["cnn"] == 2 and provenance["plates"] == ["P1"]


def test_small_blocks_write_the_same_file(project, tmp_path):
    _export(project, tmp_path / "one.parquet")
    summary = _export(project, tmp_path / "many.parquet", block_rows=4)
    assert summary.blocks == 4 and pq.ParquetFile(tmp_path / "many.parquet").num_row_groups == 4
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "many.parquet"))
    _export(project, tmp_path / "many.h5ad", block_rows=4)
    _export(project, tmp_path / "one.h5ad")
    one, many = anndata.read_h5ad(tmp_path / "one.h5ad"), anndata.read_h5ad(tmp_path / "many.h5ad")
    pd.testing.assert_frame_equal(one.obs, many.obs)
    np.testing.assert_array_equal(one.obsm["X_cnn"], many.obsm["X_cnn"])


def test_chosen_embeddings_and_x_from_an_embedding_without_features(tmp_path):
    folder = synthetic_project(tmp_path / "project", features=False)
    summary = _export(folder, tmp_path / "cells.h5ad", embeddings=("pca",))
    adata = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert summary.x == "pca" and list(adata.obsm) == ["X_pca"] and adata.var_names[0] == "pca_000"
    np.testing.assert_array_equal(adata.X, adata.obsm["X_pca"])
    _export(folder, tmp_path / "c.csv", embeddings=("pca",))
    table = pd.read_csv(tmp_path / "c.csv")
    assert [c for c in table.columns if c.startswith("pca")] == ["pca_000", "pca_001", "pca_002"]


def test_refusals_name_the_command_or_the_file(project, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no 'autoencoder' embedding.*napari-hcs embed --project .* "
                                                r"--source autoencoder"):
        _export(project, tmp_path / "cells.h5ad", embeddings=("autoencoder",))
    with pytest.raises(FileNotFoundError, match="no well profiles yet; run 'napari-hcs profile"):
        _export(project, tmp_path / "wells.csv", level="well")
    with pytest.raises(ValueError, match="lies inside the input"):
        _export(project, project / "columns" / "all.parquet")
    with pytest.raises(ValueError, match="is the input"):
        _export(project, project / "layout.csv")
    (tmp_path / "taken.csv").write_text("keep me")
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        _export(project, tmp_path / "taken.csv")
    assert (tmp_path / "taken.csv").read_text() == "keep me"
    assert _export(project, tmp_path / "taken.csv", overwrite=True).rows == 15
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no cell store"):
        _export(tmp_path / "empty", tmp_path / "x.csv")
    assert not (tmp_path / "cells.h5ad").exists() and not (tmp_path / "wells.csv").exists()


def test_out_equal_to_the_plate_is_refused(project, tmp_path):
    plate = tmp_path / "plate.h5ad"
    plate.write_text("pixels")
    Project(project).update_meta(plate=str(plate))
    with pytest.raises(ValueError, match="is the input"):
        _export(project, plate, overwrite=True)
    assert plate.read_text() == "pixels"


def test_cancel_leaves_nothing(project, tmp_path):
    cancel = threading.Event()
    cancel.set()
    from napari_hcs.cancel import Cancelled

    with pytest.raises(Cancelled):
        export_project(project, tmp_path / "cells.h5ad", ExportOptions(format="h5ad", block_rows=4), cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_predicted_columns_stream_in_order_and_are_read_whole_otherwise(tmp_path):
    frame = pd.DataFrame({"crop_index": [0, 2, 3, 5], "emb_000": [0.0, 2, 3, 5], "emb_001": [1.0, 1, 1, 1]})
    frame.to_parquet(tmp_path / "sorted.parquet")
    rows = ColumnGroupRows(tmp_path / "sorted.parquet", batch_rows=2)
    first, second = rows.take(np.array([0, 1, 2])), rows.take(np.array([3, 4, 5, 6]))
    assert rows._whole is None and rows.missing == 3
    np.testing.assert_array_equal(first[:, 0], [0, np.nan, 2])
    np.testing.assert_array_equal(second[:, 0], [3, np.nan, 5, np.nan])
    frame.iloc[::-1].to_parquet(tmp_path / "shuffled.parquet")
    rows = ColumnGroupRows(tmp_path / "shuffled.parquet")
    np.testing.assert_array_equal(rows.take(np.array([5, 0]))[:, 0], [5, 0])
    assert rows._whole is not None


def test_well_profiles_export(project, tmp_path):
    table = pd.DataFrame({"plate": "P1", "well": ["B02", "B03"], "compound": ["DMSO", "taxol"], "n_cells": [10, 5],
                          "feat_area": [1.0, 2.0], "feat_mean": [0.5, -0.5]})
    write_well_profiles(project, table, features=["feat_area", "feat_mean"], provenance={"normalisation": "none"})
    _export(project, tmp_path / "wells.h5ad", level="well")
    adata = anndata.read_h5ad(tmp_path / "wells.h5ad")
    assert adata.shape == (2, 2) and list(adata.obs_names) == ["P1/B02", "P1/B03"]
    assert adata.uns["profile"]["normalisation"] == "none" and adata.obs["n_cells"].tolist() == [10, 5]
    _export(project, tmp_path / "wells.csv", level="well")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "wells.csv"), table, check_dtype=False)
    with pytest.raises(ValueError, match="cell-level exports only"):
        _export(project, tmp_path / "w.csv", level="well", embeddings=("cnn",))


def _many_cells(folder: Path, *, cells: int, dimensions: int, sites: int) -> None:
    store = CellStore.create(folder, channels=["DNA"], crop_size=1)
    per_site = cells // sites
    with EmbeddingStore(folder).writer("cnn", dimensions=dimensions, provenance={"source": "cnn"},
                                       expected_rows=cells) as out:
        for site in range(sites):
            rows = pd.DataFrame({"plate": "P1", "well": f"B{site % 10 + 2:02d}", "field": site, "timepoint": 0,
                                 "label": np.arange(per_site)})
            rows = store.append_site(f"site{site:04d}", rows, np.zeros((per_site, 1, 1, 1), np.float32))
            out.append(rows.crop_index.to_numpy(), np.full((per_site, dimensions), site, np.float32))


@pytest.mark.slow
def test_a_large_export_streams(tmp_path):
    """200,000 cells x 64 dimensions: the live memory stays far below one copy of the embedding.

    CSV and Parquet, and a million cells, are measured by benchmarks/export_scale.py.
    """
    cells, dimensions, fmt = 200_000, 64, "h5ad"
    _many_cells(tmp_path / "project", cells=cells, dimensions=dimensions, sites=40)
    _many_cells(tmp_path / "small", cells=1000, dimensions=dimensions, sites=2)
    one_copy = cells * dimensions * 4
    export_project(tmp_path / "small", tmp_path / f"warm.{fmt}", ExportOptions(format=fmt))  # imports done
    tracemalloc.start()
    summary = export_project(tmp_path / "project", tmp_path / f"cells.{fmt}", ExportOptions(format=fmt))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert summary.rows == cells and summary.blocks > 4
    assert peak < one_copy / 2.5, f"peak {peak / 2**20:.1f} MiB for a {one_copy / 2**20:.1f} MiB embedding"
    adata = anndata.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    assert adata.obsm["X_cnn"].shape == (cells, dimensions)
    assert float(adata.obsm["X_cnn"][-1, 0]) == 39.0


# -- real data: the bundled scPortrait sample, features, a CNN trained and predicted ------------------
@pytest.fixture(scope="module")
def sample_project(tmp_path_factory) -> Path:
    import torch
    from sklearn.decomposition import PCA

    from napari_hcs.io import open_plate
    from napari_hcs.nn import TrainConfig
    from napari_hcs.nn.predict import predict_project
    from napari_hcs.nn.training import train_model
    from napari_hcs.pipeline import run_plate
    from napari_hcs.samples import sample_layout, sample_path

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("sample") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    run_plate(plate, folder, PARAMS, crop_size=32, features=True, pattern="scportrait")
    project = Project(folder)
    store = project.cell_store()
    config = TrainConfig(model="cnn1", depth=1, width=1, epochs=1, batch_size=64, device="cpu")
    with pytest.warns(UserWarning):
        train_model(project.cell_table(), store.crops, config, label_column="Treatment", channels=store.channels,
                    checkpoint_path=folder / "models" / "tiny.pt")
    predict_project(folder, folder / "models" / "tiny.pt", device="cpu")  # emb_* columns, no embeddings/cnn
    cells = store.cells()
    crops = store.crops[cells.crop_index.to_numpy()].reshape(len(cells), -1)
    EmbeddingStore(folder).write("pca", cells.crop_index.to_numpy(), PCA(10, random_state=0).fit_transform(crops),
                                 provenance={"source": "pca", "normalisation": "plate"})
    return folder


@pytest.mark.slow
def test_real_sample_opens_in_scanpy(sample_project, tmp_path):
    sc = pytest.importorskip("scanpy")
    summary = _export(sample_project, tmp_path / "cells.h5ad")
    adata = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert set(adata.obsm) == {"X_cnn", "X_pca"} and summary.missing == {"cnn": 0, "pca": 0}
    assert adata.n_vars > 50 and all(name.startswith("feat_") for name in adata.var_names)
    assert {"pred_class", "pred_model", "Treatment", "well"} <= set(adata.obs)
    assert adata.uns["model"].tolist() == ["tiny"] and adata.uns["embeddings"]["cnn"]["column_group"] == "embeddings"
    sc.pp.neighbors(adata, use_rep="X_cnn", n_neighbors=10, method="gauss")  # no numba compilation
    assert adata.obsp["connectivities"].shape == (adata.n_obs, adata.n_obs)
    import importlib.util

    if importlib.util.find_spec("igraph") and importlib.util.find_spec("leidenalg"):
        sc.tl.leiden(adata)
        assert adata.obs["leiden"].nunique() >= 1
    else:
        from sklearn.cluster import KMeans

        adata.obs["kmeans"] = pd.Categorical(KMeans(2, n_init=4, random_state=0).fit_predict(adata.obsm["X_cnn"]))
        assert adata.obs["kmeans"].nunique() == 2
    sc.pp.pca(adata, n_comps=5)
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 5)


@pytest.mark.slow
def test_real_sample_tables_and_wells(sample_project, tmp_path):
    _export(sample_project, tmp_path / "cells.csv")
    _export(sample_project, tmp_path / "cells.parquet")
    cells = Project(sample_project).cell_table()
    from_csv, from_parquet = pd.read_csv(tmp_path / "cells.csv"), pd.read_parquet(tmp_path / "cells.parquet")
    assert len(from_csv) == len(from_parquet) == len(cells)
    assert from_csv["crop_index"].tolist() == from_parquet["crop_index"].tolist() == sorted(cells.crop_index)
    cnn = [c for c in from_parquet.columns if c.startswith("cnn_")]
    emb = [c for c in cells.columns if c.startswith("emb_")]
    assert len(cnn) == len(emb) > 0
    np.testing.assert_allclose(from_parquet[cnn].to_numpy(), cells.sort_values("crop_index")[emb].to_numpy(), rtol=1e-6)
    features = [c for c in cells.columns if c.startswith("feat_")]
    wells = cells.groupby(["plate", "well", "Treatment"], as_index=False)[features].median()
    write_well_profiles(sample_project, wells, features=features, provenance={"aggregation": "median"})
    _export(sample_project, tmp_path / "wells.h5ad", level="well")
    adata = anndata.read_h5ad(tmp_path / "wells.h5ad")
    assert adata.shape == (2, len(features)) and adata.obs["Treatment"].tolist() == ["Unstimulated", "Stimulated"]
