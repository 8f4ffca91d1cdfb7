"""``napari-hcs embed-sites`` on the real scPortrait plates: Table 6.1, JSON summary, errors."""

from __future__ import annotations

import json

import pytest

from napari_hcs.cli import build_parser, main
from napari_hcs.images.site_clusters import read_site_clusters
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.samples import sample_path
from napari_hcs.vocabulary import SITE_EMBEDDING_SOURCES


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_pca_prints_table_6_1_and_a_json_summary(tmp_path, capsys):
    project = tmp_path / "project"
    code = main(["embed-sites", str(sample_path("scportrait_mini")), "--project", str(project), "--source", "pca",
                 "--labels-column", "Genotype", "--size", "16"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "k-means, k=2, on 6 site(s) of site-pca:"
    assert lines[1] == ("| embedding | cluster sizes | homogeneity | completeness | V-measure | Davies-Bouldin "
                        "| silhouette |")
    assert lines[3].startswith("| site-pca | 3 / 3 | 1.0 | 1.0 | 1.0 |")
    summary = _last_json(out)
    assert summary["sites"] == 6 and summary["wells"] == 2 and summary["n_excluded"] == 0
    assert summary["clusters"]["metrics"]["v_measure"] == pytest.approx(1.0)
    assert "site-pca" in EmbeddingStore(project, rows="sites").names() and "site-pca" in read_site_clusters(project)


@pytest.mark.slow
def test_classifier_on_the_full_plate_with_json_only(scportrait_dir, tmp_path, capsys):
    project = tmp_path / "project"
    code = main(["embed-sites", str(scportrait_dir), "--project", str(project), "--source", "classifier",
                 "--labels-column", "Treatment", "--size", "16", "--epochs", "3", "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert summary["embedding"] == "site-classifier" and summary["dimensions"] == 32
    assert summary["clusters"]["labels_column"] == "Treatment"
    assert "| site-classifier |" in captured.err


def test_errors_are_words(tmp_path, capsys):
    project = tmp_path / "project"
    code = main(["embed-sites", str(sample_path("scportrait_mini")), "--project", str(project),
                 "--source", "classifier"])
    err = capsys.readouterr().err
    assert code == 1 and "embed-sites: error:" in err and "'class'" in err and "Genotype, Treatment" in err
    assert "Traceback" not in err
    code = main(["embed-sites", str(sample_path("scportrait_mini")), "--project", str(project), "--source", "pca",
                 "--k", "7", "--size", "16"])
    assert code == 1 and "cannot make 7 clusters" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed-sites", "plate", "--source", "umap"])


def test_the_sources_are_the_registry():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["embed-sites"]
    source = next(a for a in sub._actions if a.dest == "source")
    assert tuple(source.choices) == SITE_EMBEDDING_SOURCES


def test_exports_open_in_anndata_and_pandas(tmp_path, capsys):
    import anndata
    import pandas as pd

    sites, wells = tmp_path / "sites.h5ad", tmp_path / "wells.csv"
    code = main(["embed-sites", str(sample_path("scportrait_mini")), "--project", str(tmp_path / "project"),
                 "--source", "pca", "--labels-column", "Genotype", "--size", "16", "--export", str(sites),
                 "--export-wells", str(wells), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["exported"] == {str(sites): 6, str(wells): 2}
    adata = anndata.read_h5ad(sites)
    assert adata.obsm["X_site_pca"].shape == (6, 5) and adata.obs["cluster"].nunique() == 2
    assert adata.obs["Genotype"].tolist() == ["Genotype1"] * 3 + ["Genotype2"] * 3
    assert json.loads(adata.uns["provenance"])["rows"] == "sites"
    table = pd.read_csv(wells)
    assert table["well"].tolist() == ["B02", "B04"] and "site_pca_004" in table.columns
    code = main(["embed-sites", str(sample_path("scportrait_mini")), "--project", str(tmp_path / "project"),
                 "--source", "pca", "--export", str(sample_path("scportrait_mini") / "out.csv")])
    assert code == 1 and "lies inside the input" in capsys.readouterr().err
    code = main(["embed-sites", str(sample_path("scportrait_mini")), "--project", str(tmp_path / "project"),
                 "--source", "pca", "--size", "16", "--export", str(tmp_path / "sites.xlsx")])
    assert code == 1 and "expected one of .csv, .parquet, .h5ad" in capsys.readouterr().err
