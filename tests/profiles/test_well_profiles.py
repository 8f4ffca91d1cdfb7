"""Well profiles: aggregation, normalisation against controls, selection, sphering, and a real project."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from napari_hcs.images.site_exclusions import SiteExclusions, table_site_keys
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.profiles.profile_store import read_well_profiles
from napari_hcs.profiles.well_profiles import (ProfileOptions, aggregate_wells, build_well_profiles, control_wells,
                                               normalise_profiles, profile_wells, spherize_profiles)
from napari_hcs.project import Project

PLAIN = dict(feature_selection=(), spherize=False)


def _cells(seed: int = 0) -> pd.DataFrame:
    """Two plates x (2 DMSO + 2 treated wells) x 5 cells; plate P2 reads 10 higher and twice as wide."""
    rng = np.random.default_rng(seed)
    rows = []
    for plate, offset, scale in (("P1", 0.0, 1.0), ("P2", 10.0, 2.0)):
        for well, compound in (("B02", "DMSO"), ("B03", "DMSO"), ("C02", "taxol"), ("C03", "taxol")):
            shift = 3.0 if compound == "taxol" else 0.0
            for cell in range(5):
                rows.append({"plate": plate, "well": well, "field": 0, "timepoint": 0, "label": cell + 1,
                             "crop_index": len(rows), "compound": compound,
                             "feat_a": offset + scale * (shift + rng.normal()),
                             "feat_b": offset + scale * rng.normal(), "pred_class": "x"})
    return pd.DataFrame(rows)


def test_aggregate_wells_median_mean_cell_count_and_annotations():
    cells = _cells()
    wells = aggregate_wells(cells, ["feat_a", "feat_b"])
    assert list(wells.columns) == ["plate", "well", "compound", "n_cells", "feat_a", "feat_b"]
    assert len(wells) == 8 and set(wells["n_cells"]) == {5}
    first = cells[(cells.plate == "P1") & (cells.well == "B02")]
    assert wells.loc[0, "feat_a"] == pytest.approx(first["feat_a"].median())
    means = aggregate_wells(cells, ["feat_a"], aggregation="mean")
    assert means.loc[0, "feat_a"] == pytest.approx(first["feat_a"].mean())


def test_aggregate_wells_refuses_missing_features_and_no_cells():
    cells = _cells()
    with pytest.raises(KeyError, match="feat_zz"):
        aggregate_wells(cells, ["feat_a", "feat_zz"])
    with pytest.raises(ValueError, match="no cells"):
        aggregate_wells(cells.iloc[:0], ["feat_a"])
    with pytest.raises(ValueError, match="Aggregation 'sum'"):
        aggregate_wells(cells, ["feat_a"], aggregation="sum")


def test_control_value_matching_no_well_names_column_value_and_values():
    wells = aggregate_wells(_cells(), ["feat_a"])
    with pytest.raises(ValueError) as error:
        control_wells(wells, "compound=dmso")
    assert "'dmso'" in str(error.value) and "'compound'" in str(error.value) and "DMSO, taxol" in str(error.value)
    with pytest.raises(KeyError, match="treatment"):
        control_wells(wells, "treatment=DMSO")
    with pytest.raises(ValueError, match="COLUMN=VALUE"):
        ProfileOptions(controls="DMSO")


def test_a_plate_without_controls_is_named_when_normalising_per_plate():
    wells = aggregate_wells(_cells(), ["feat_a"])
    wells.loc[wells.plate == "P2", "compound"] = "taxol"
    with pytest.raises(ValueError, match="Plate P2 has no control wells"):
        normalise_profiles(wells, ["feat_a"], scope="plate", controls="compound=DMSO")
    table, kept = normalise_profiles(wells, ["feat_a"], scope="global", controls="compound=DMSO")
    assert kept == ["feat_a"]


@pytest.mark.parametrize("method", ["standardize", "robustize", "mad_robustize"])
def test_per_plate_normalisation_removes_the_plate_offset(method):
    wells = aggregate_wells(_cells(), ["feat_a", "feat_b"])
    table, kept = normalise_profiles(wells, ["feat_a", "feat_b"], method=method, scope="plate",
                                     controls="compound=DMSO")
    assert kept == ["feat_a", "feat_b"]
    controls = table[table.compound == "DMSO"].groupby("plate")["feat_a"].median()
    np.testing.assert_allclose(controls.to_numpy(), 0.0, atol=1e-9)
    treated = table[table.compound == "taxol"].groupby("plate")["feat_a"].mean()
    assert (treated > 0).all()  # the treatment effect remains on both plates


def test_features_flat_on_the_controls_are_dropped_and_none_flat_is_an_error():
    wells = aggregate_wells(_cells(), ["feat_a", "feat_b"]).assign(feat_c=1.0)
    table, kept = normalise_profiles(wells, ["feat_a", "feat_b", "feat_c"], controls="compound=DMSO")
    assert kept == ["feat_a", "feat_b"] and "feat_c" not in table
    one = wells[wells.compound.eq("taxol") | wells.well.eq("B02") & wells.plate.eq("P1")]
    with pytest.raises(ValueError, match="there is 1"):
        normalise_profiles(one, ["feat_a", "feat_b"], controls="compound=DMSO")
    untouched, kept = normalise_profiles(one, ["feat_a"], method="none", controls="compound=DMSO")
    assert untouched["feat_a"].tolist() == one["feat_a"].tolist()


def test_spherize_decorrelates_the_controls():
    rng = np.random.default_rng(1)
    wells = pd.DataFrame(rng.normal(size=(60, 3)), columns=["f1", "f2", "f3"])
    wells["f2"] += 2 * wells["f1"]
    wells["compound"] = np.where(np.arange(60) < 40, "DMSO", "taxol")
    out = spherize_profiles(wells, ["f1", "f2", "f3"], controls="compound=DMSO", regularisation=0.0)
    controls = out[out.compound == "DMSO"][["f1", "f2", "f3"]].to_numpy()
    np.testing.assert_allclose(np.corrcoef(controls.T), np.eye(3), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 reference wells"):
        spherize_profiles(wells.iloc[39:41], ["f1", "f2"], controls="compound=DMSO")


def test_profile_wells_records_what_it_did():
    wells = aggregate_wells(_cells(), ["feat_a", "feat_b"])
    profiles = profile_wells(wells, ["feat_a", "feat_b"], ProfileOptions(controls="compound=DMSO",
                                                                         feature_selection=("variance_threshold",)))
    assert profiles.features == ["feat_a", "feat_b"]
    assert profiles.metadata_columns == ["plate", "well", "compound", "n_cells"]
    assert profiles.provenance["controls"] == "compound=DMSO" and profiles.provenance["spherize"] is True
    assert profiles.provenance["feature_selection"] == ["variance_threshold"]


# -- a real project: the bundled scPortrait sample, segmented with features --------------------


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory):
    from predicted_sample import PARAMS

    from napari_hcs.io import open_plate
    from napari_hcs.pipeline import run_plate
    from napari_hcs.samples import sample_layout, sample_path

    folder = tmp_path_factory.mktemp("profiles") / "project"
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    summary = run_plate(plate, folder, PARAMS, crop_size=16, features=True, pattern="scportrait")
    assert summary["sites"] == 6 and not summary["failures"], summary
    return folder


@pytest.fixture
def project(sample_project, tmp_path):
    shutil.copytree(sample_project, tmp_path / "project")
    return tmp_path / "project"


@pytest.mark.slow
def test_build_well_profiles_on_a_real_project_leaves_out_excluded_sites(project):
    table = Project(project).cell_table()
    keys = table_site_keys(table)
    flagged = keys[table.well == "B04"].iloc[0]
    SiteExclusions(project).record_flags({flagged: ["focus"]})
    done = []
    profiles = build_well_profiles(project, options=ProfileOptions(**PLAIN), progress=lambda d, t: done.append(d))
    assert profiles.table["well"].tolist() == ["B02", "B04"]
    assert profiles.table["Treatment"].tolist() == ["Unstimulated", "Stimulated"]
    expected = table.groupby("well").size() - pd.Series({"B02": 0, "B04": int((keys == flagged).sum())})
    assert profiles.table["n_cells"].tolist() == expected.tolist()
    assert profiles.provenance["excluded_cells"] == int((keys == flagged).sum()) > 0
    assert profiles.provenance["excluded_sites"] == 1 and done[-1] == done[0] + 2
    stored = read_well_profiles(project)
    assert stored.features == profiles.features and stored.provenance["source"] == "features"
    assert len(profiles.features) == len([c for c in table.columns if c.startswith("feat_")])


@pytest.mark.slow
def test_build_well_profiles_from_a_stored_embedding(project):
    cells = Project(project).cell_store().cells()
    values = np.random.default_rng(0).normal(size=(len(cells), 4)) + (cells["well"] == "B04").to_numpy()[:, None]
    EmbeddingStore(project).write("pca", cells["crop_index"].to_numpy(), values, provenance={"source": "pca"})
    profiles = build_well_profiles(project, source="pca", options=ProfileOptions(aggregation="mean", **PLAIN))
    assert profiles.features == ["emb_000", "emb_001", "emb_002", "emb_003"]
    assert profiles.provenance["embedding"]["source"] == "pca" and profiles.provenance["aggregation"] == "mean"
    with pytest.raises(FileNotFoundError, match="no 'cnn' embedding"):
        build_well_profiles(project, source="cnn")


@pytest.mark.slow
def test_build_well_profiles_refuses_a_project_without_cells_and_keeps_earlier_profiles(project, tmp_path):
    build_well_profiles(project, options=ProfileOptions(**PLAIN))
    before = read_well_profiles(project).table
    with pytest.raises(ValueError, match="matches no well in column 'Treatment'"):
        build_well_profiles(project, options=ProfileOptions(controls="Treatment=DMSO", **PLAIN))
    pd.testing.assert_frame_equal(read_well_profiles(project).table, before)
    for part in ("cells", "features"):
        shutil.rmtree(project / part)
    with pytest.raises(ValueError, match="has no cells"):
        build_well_profiles(project)
    with pytest.raises(FileNotFoundError, match="no cell store"):
        build_well_profiles(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_well_profiles(tmp_path / "nowhere")
