"""Profile evaluation: treatment profiles, NSC / NSCB 1-NN MoA accuracy and copairs mAP, on BBBC021."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_hcs.profiles.profile_evaluation import (evaluate_profiles, mean_average_precision, nsc_accuracy,
                                                    treatment_profiles)
from napari_hcs.profiles.profile_store import WellProfiles
from napari_hcs.profiles.well_profiles import ProfileOptions, profile_wells

FEATURES = ["f1", "f2", "f3"]


def _wells() -> pd.DataFrame:
    """Compounds a, b (MoA X), c, d (MoA Y) at two concentrations on two batches, and DMSO wells."""
    rng = np.random.default_rng(0)
    centres = {"X": [1.0, 0.0, 0.0], "Y": [0.0, 1.0, 0.0], "DMSO": [0.0, 0.0, 1.0]}
    rows = []
    for compound, moa, batch in (("a", "X", "W1"), ("b", "X", "W2"), ("c", "Y", "W1"), ("d", "Y", "W2"),
                                 ("DMSO", "DMSO", "W1"), ("DMSO", "DMSO", "W2")):
        for concentration in (0.1, 1.0):
            for replicate in range(3):
                values = np.asarray(centres[moa]) + 0.1 * rng.normal(size=3)
                rows.append({"compound": compound, "concentration": concentration, "moa": moa, "batch": batch,
                             **dict(zip(FEATURES, values))})
    return pd.DataFrame(rows)


def test_treatment_profiles_are_medians_of_their_wells():
    wells = _wells()
    treatments, features = treatment_profiles(wells, features=FEATURES, batch="batch")
    assert len(treatments) == 10 and features == FEATURES
    row = treatments.set_index("treatment").loc["a@0.1"]
    assert row["f1"] == pytest.approx(wells[(wells.compound == "a") & (wells.concentration == 0.1)]["f1"].median())
    assert row["n_wells"] == 3 and row["batches"] == ("W1",)
    assert treatment_profiles(wells, features=FEATURES, concentration=None)[0]["treatment"].nunique() == 5


def test_nsc_and_nscb_leave_out_controls_and_the_same_compound():
    result = nsc_accuracy(_wells(), features=FEATURES, batch="batch", controls="compound=DMSO")
    assert result.nsc == 1.0 and result.nscb == 1.0
    assert result.treatments == 8 and result.treatments_nscb == 8 and result.moas == 2
    assert set(result.predictions["predicted"]) == {"X", "Y"}
    assert result.to_dict()["per_moa"] == {"X": 1.0, "Y": 1.0} and "predictions" not in result.to_dict()


def test_nsc_counts_wrong_neighbours_and_nscb_needs_other_batches():
    wells = _wells()
    wells.loc[wells.compound == "b", "moa"] = "Y"  # b looks like a (X) but is called Y
    result = nsc_accuracy(wells, features=FEATURES, batch="batch", controls="compound=DMSO")
    assert result.nsc == pytest.approx(0.5)  # a and b now find each other: wrong; c and d: right
    assert result.per_moa == {"X": 0.0, "Y": pytest.approx(2 / 3)}
    assert result.predictions.set_index("treatment").loc["a@0.1", "predicted"] == "Y"
    one_batch = nsc_accuracy(wells.assign(batch="W1"), features=FEATURES, batch="batch", controls="compound=DMSO")
    assert one_batch.treatments_nscb == 0 and one_batch.nscb is None
    assert nsc_accuracy(wells, features=FEATURES, controls="compound=DMSO").nscb is None


def test_nsc_bad_input():
    wells = _wells()
    with pytest.raises(KeyError, match="mechanism"):
        nsc_accuracy(wells, features=FEATURES, moa="mechanism")
    with pytest.raises(KeyError, match="f9"):
        nsc_accuracy(wells, features=["f1", "f9"])
    with pytest.raises(ValueError, match="at least 2 compounds"):
        nsc_accuracy(wells[wells.compound == "a"], features=FEATURES)


def test_map_of_replicates_and_of_moa():
    wells = _wells()
    replicates = mean_average_precision(wells, features=FEATURES, controls="compound=DMSO", null_size=200)
    assert replicates.groups == 8 and replicates.map > 0.8
    assert set(replicates.per_group.columns) >= {"mean_average_precision", "p_value", "corrected_p_value"}
    moa = mean_average_precision(wells, retrieve="moa", features=FEATURES, controls="compound=DMSO", null_size=200)
    assert moa.groups == 2 and moa.map == pytest.approx(1.0)
    assert moa.to_dict()["retrieve"] == "moa" and "per_group" not in moa.to_dict()
    with pytest.raises(ValueError, match="Retrieve 'wells'"):
        mean_average_precision(wells, retrieve="wells", features=FEATURES)
    with pytest.raises(ValueError, match="positive pairs"):
        mean_average_precision(wells.drop_duplicates("compound"), features=FEATURES, null_size=10)


def test_evaluate_profiles_takes_the_controls_of_the_profiles():
    wells = _wells()
    profiles = WellProfiles(table=wells, features=FEATURES, provenance={"controls": "compound=DMSO"})
    result = evaluate_profiles(profiles, batch="batch", null_size=100)
    assert result["nsc"] == 1.0 and result["details"]["nsc"]["treatments"] == 8
    assert {"map_replicates", "map_moa", "nscb"} <= set(result)


# -- real data: the CellProfiler well means of Ljosa et al. (2013) on BBBC021 ------------------


@pytest.fixture(scope="module")
def bbbc021_wells(shared_data):
    """The wells as ``benchmarks/profiles_nsc.py`` reads them (the figures it prints are these)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "profiles_nsc.py"
    spec = importlib.util.spec_from_file_location("profiles_nsc", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    return benchmark.load_wells(shared_data / "bbbc021_profiles")


@pytest.mark.slow
def test_bbbc021_nsc_with_the_default_normalisation_beats_the_plain_z_score(bbbc021_wells):
    wells, features = bbbc021_wells
    assert len(wells) == 632 and wells["moa"].notna().all()
    profiles = profile_wells(wells, features, ProfileOptions(controls="compound=DMSO"))
    result = nsc_accuracy(profiles, batch="batch", controls="compound=DMSO")
    assert result.treatments == 103 and result.moas == 12
    assert result.nsc >= 0.90, result.per_moa  # 0.95 measured; Ljosa et al. report 0.94
    assert result.nscb >= 0.65  # 0.72 measured
    plain = profile_wells(wells, features, ProfileOptions(controls=None, feature_selection=(), spherize=False))
    baseline = nsc_accuracy(plain, batch="batch", controls="compound=DMSO")
    assert 0.85 <= baseline.nsc < result.nsc  # 0.88 measured
    replicates = mean_average_precision(profiles, controls="compound=DMSO", null_size=200)
    assert replicates.groups == 103 and replicates.map >= 0.85  # 0.95 measured
