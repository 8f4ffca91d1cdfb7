"""Plates, control cells and per-plate normalisation (synthetic tables and the real BBBC021 table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_hcs.learn.plates import (
    SINGLE_PLATE,
    control_mask,
    controls_text,
    dividing_columns,
    normalise_per_plate,
    parse_controls,
    plate_keys,
)
from napari_hcs.learn.splits import parse_holdout


def _screen(seed=0, cells=200) -> pd.DataFrame:
    """Two plates of DMSO and drug cells; plate P2 reads 5 higher and twice as spread."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "plate": np.repeat(["P1", "P2"], cells),
        "compound": np.tile(np.repeat(["DMSO", "drug"], cells // 2), 2),
    })
    drug = (table.compound == "drug").to_numpy()
    on_p2 = (table.plate == "P2").to_numpy()
    table["feat_dna"] = (rng.normal(size=2 * cells) + 3.0 * drug) * np.where(on_p2, 2.0, 1.0) + 5.0 * on_p2
    return table


# -- controls ----------------------------------------------------------------------
def test_parse_controls_reads_the_holdout_grammar():
    assert parse_controls("compound=DMSO") == ("compound", ["DMSO"])
    assert parse_controls(" moa = DMSO , control ") == ("moa", ["DMSO", "control"])
    assert parse_controls(None) is None and parse_controls("  ") is None
    for bad in ("compound", "=DMSO", "compound=", "compound=,"):
        with pytest.raises(ValueError, match=r"Controls '.*': expected COLUMN=VALUE\[,VALUE\], e\.g\. compound=DMSO\."):
            parse_controls(bad)
    with pytest.raises(ValueError, match=r"^Holdout 'plate': expected COLUMN=VALUE\[,VALUE\], e\.g\. plate="):
        parse_holdout("plate")


def test_controls_text_is_what_results_record():
    assert controls_text("compound = DMSO") == "compound=DMSO"
    assert controls_text(("moa", ("DMSO", "control"))) == "moa=DMSO,control"
    assert controls_text(("compound", "DMSO")) == "compound=DMSO"
    assert controls_text(None) is None


def test_plate_keys_are_text_and_one_plate_without_a_plate_column():
    table = pd.DataFrame({"plate": [27801, 27821]}, index=[5, 9])
    keys = plate_keys(table)
    assert keys.tolist() == ["27801", "27821"] and keys.index.tolist() == [5, 9] and keys.name == "plate"
    assert plate_keys(pd.DataFrame({"well": ["B02", "B03"]})).tolist() == [SINGLE_PLATE] * 2
    with pytest.raises(ValueError, match=r"2 of 3 row\(s\) have no plate \(column 'plate'\)"):
        plate_keys(pd.DataFrame({"plate": ["P1", None, np.nan]}))


def test_control_mask_and_its_errors():
    table = _screen(cells=4)
    assert control_mask(table).all() and control_mask(table, "").all()
    assert control_mask(table, "compound=DMSO").tolist() == [True, True, False, False] * 2
    assert control_mask(table, ("compound", ["DMSO", "drug"])).all()
    with pytest.raises(KeyError, match="Column 'moa' is not in the cell table; columns are: plate, compound"):
        control_mask(table, "moa=DMSO")
    with pytest.raises(ValueError, match=r"Control value\(s\) 'dmso', 'PBS' not found in column 'compound'; "
                                         r"its values are: DMSO, drug\."):
        control_mask(table, "compound=dmso,PBS,DMSO")
    table.loc[table.plate == "P2", "compound"] = "drug"
    with pytest.raises(ValueError, match=r"^Plate P2 has no control cells \(compound=DMSO\); every plate needs "
                                         r"some to be normalised against its controls, or leave out --controls\.$"):
        control_mask(table, "compound=DMSO")


# -- normalise_per_plate -----------------------------------------------------------
def test_normalising_against_controls_removes_the_plate_offset_and_scale():
    table = _screen()
    out = normalise_per_plate(table[["feat_dna"]], table, controls="compound=DMSO")
    assert out.index.equals(table.index) and out.dtypes.eq(np.float64).all()
    controls = out["feat_dna"][table.compound == "DMSO"].groupby(table.plate)
    assert np.allclose(controls.mean(), 0) and np.allclose(controls.std(ddof=0), 1)
    drug = out["feat_dna"][table.compound == "drug"].groupby(table.plate).mean()
    assert drug["P1"] == pytest.approx(drug["P2"], abs=0.4)  # the drug effect, in control units
    raw = table.feat_dna[table.compound == "drug"].groupby(table.plate).mean()
    assert raw["P2"] - raw["P1"] > 6


def test_without_controls_every_cell_of_a_plate_is_the_reference():
    table = _screen()
    out = normalise_per_plate(table[["feat_dna"]], table)
    by_plate = out["feat_dna"].groupby(table.plate)
    assert np.allclose(by_plate.mean(), 0) and np.allclose(by_plate.std(ddof=0), 1)
    single = normalise_per_plate(table[["feat_dna"]], table.drop(columns="plate"))
    assert np.allclose(single.feat_dna, (table.feat_dna - table.feat_dna.mean()) / table.feat_dna.std(ddof=0))


def test_missing_values_are_ignored_and_kept_and_flat_columns_only_centred():
    table = pd.DataFrame({
        "plate": ["P1"] * 4 + ["P2"] * 2,
        "feat_a": [1.0, np.nan, 3.0, np.inf, 7.0, 7.0],
        "feat_b": [np.nan, np.nan, np.nan, np.nan, 1.0, 2.0],
    }, index=list("abcdef"))
    out = normalise_per_plate(table[["feat_a", "feat_b"]], table)
    assert out.feat_a.tolist()[:3] == [-1.0, pytest.approx(np.nan, nan_ok=True), 1.0]
    assert out.feat_a["d"] == np.inf and out.feat_a[["e", "f"]].tolist() == [0.0, 0.0]
    assert out.feat_b[:4].isna().all() and out.feat_b[["e", "f"]].tolist() == [-1.0, 1.0]


def test_within_divides_each_plate_into_groups_with_statistics_of_their_own():
    table = _screen(cells=8).assign(timepoint=np.tile([1, 1, 2, 2], 4))
    table.loc[table.timepoint == 2, "feat_dna"] += 100.0  # the later timepoint reads brighter
    keys = plate_keys(table, within=["timepoint"])
    assert sorted(keys.unique()) == ["P1 (timepoint=1)", "P1 (timepoint=2)", "P2 (timepoint=1)", "P2 (timepoint=2)"]
    out = normalise_per_plate(table[["feat_dna"]], table, within=["timepoint"])
    groups = out.feat_dna.groupby(keys)
    assert np.allclose(groups.mean(), 0) and np.allclose(groups.std(ddof=0), 1)
    whole = normalise_per_plate(table[["feat_dna"]], table).feat_dna
    assert (whole[table.timepoint == 2] > 0).all()  # whole plates keep the shift as if it were phenotype
    with pytest.raises(ValueError, match=r"Plate P1 \(timepoint=2\) has no control cells"):
        normalise_per_plate(table[["feat_dna"]], table.assign(compound=np.where(
            (table.plate == "P1") & (table.timepoint == 2), "drug", table.compound)),
            controls="compound=DMSO", within=["timepoint"])


def test_within_columns_are_named_when_missing_or_empty():
    table = pd.DataFrame({"plate": ["P1", "P1"], "timepoint": [1, None]})
    with pytest.raises(KeyError, match="Column 'batch' is not in the cell table"):
        plate_keys(table, within=["batch"])
    with pytest.raises(ValueError, match=r"1 of 2 row\(s\) have no 'timepoint' \(column 'timepoint'\)"):
        plate_keys(table, within=["timepoint"])


def test_normalise_per_plate_refusals():
    table = _screen(cells=4)
    with pytest.raises(ValueError, match="same index"):
        normalise_per_plate(table[["feat_dna"]].reset_index(drop=True).iloc[::-1], table)
    with pytest.raises(ValueError, match=r"Column\(s\) compound are not numeric"):
        normalise_per_plate(table[["feat_dna", "compound"]], table)


def test_real_bbbc021_dmso_of_each_plate_is_centred_and_a_plate_offset_is_removed(shared_data):
    table = pd.read_csv(shared_data / "bbbc021_crops" / "bbbc021_crops.csv")
    rng = np.random.default_rng(0)
    offset = table.plate.map({"Week4_27801": 0.0, "Week4_27821": 50.0})
    values = pd.DataFrame({
        "feat_site": table.site.astype(float),  # a real column: it varies within each plate's DMSO
        "feat_dose": table.concentration_uM + rng.normal(size=len(table)) + offset,
    }, index=table.index)
    out = normalise_per_plate(values, table, controls="compound=DMSO")
    dmso = out[table.compound == "DMSO"].groupby(table.plate)
    assert np.allclose(dmso.mean(), 0) and np.allclose(dmso.std(ddof=0), 1)
    b03 = out.feat_dose[table.well == "B03"].groupby(table.plate).mean()  # 50 uM cycloheximide on both
    assert abs(b03["Week4_27821"] - b03["Week4_27801"]) < 1  # the offset of 50 is gone
    assert values.feat_dose[table.well == "B03"].groupby(table.plate).mean().diff().iloc[-1] > 49
    with pytest.raises(ValueError, match="Plate Week4_27801 has no control cells"):
        normalise_per_plate(values, table[["plate"]].assign(compound=np.where(
            table.plate == "Week4_27821", "DMSO", "cyclohexamide")), controls="compound=DMSO")


# -- the columns offered to normalise within ---------------------------------------
def _annotated_plate(rows, *, timepoints=(1,)):
    from napari_hcs.plate import Plate, Site

    sites = {row["well"]: [Site(row["well"], 0, t) for t in timepoints] for row in rows}
    plate = Plate(name="P", channels=["DNA"], sites=sites, loader=None, shape=(4, 4), dtype="uint16")
    for row in rows:
        plate.annotate(row["well"], **{key: value for key, value in row.items() if key != "well"})
    return plate


def test_dividing_columns_offer_only_what_keeps_both_classes_in_every_part():
    rows = [
        {"well": "A01", "batch": "b1", "compound": "DMSO", "row_note": "x", "class": "ctrl"},
        {"well": "A02", "batch": "b1", "compound": "taxol", "row_note": "x", "class": "drug"},
        {"well": "B01", "batch": "b2", "compound": "DMSO", "row_note": "", "class": "ctrl"},
        {"well": "B02", "batch": "b2", "compound": "taxol", "row_note": "y", "class": "drug"},
    ]
    plate = _annotated_plate(rows)
    # compound: one class per part; row_note: a well without a value; class itself never
    assert dividing_columns(plate) == ["batch"]
    assert dividing_columns(_annotated_plate(rows, timepoints=(1, 2))) == ["timepoint", "batch"]


def test_dividing_columns_without_classes_offer_timepoints_alone():
    rows = [{"well": "A01", "batch": "b1"}, {"well": "A02", "batch": "b2"}]
    assert dividing_columns(_annotated_plate(rows)) == []
    assert dividing_columns(_annotated_plate(rows, timepoints=(1, 2))) == ["timepoint"]
    assert dividing_columns(_annotated_plate(rows), class_column="batch") == []  # one class per batch


def test_dividing_columns_of_the_bundled_time_course():
    from napari_hcs.io import open_plate
    from napari_hcs.samples.bundled import sample_path

    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    plate.annotate("B02", **{"class": "unstimulated"})
    plate.annotate("B04", **{"class": "stimulated"})
    assert dividing_columns(plate) == ["timepoint"]
