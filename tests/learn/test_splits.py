"""Splits hold out whole wells (or plates), stratified by class, deterministically."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from napari_hcs.learn import (
    LabelError,
    build_split,
    group_labels,
    holdout_split,
    parse_holdout,
    split_by_well,
    split_summary,
)


def make_table(wells_per_class=(5, 5, 5), cells=20, plate=None) -> pd.DataFrame:
    rows = []
    for k, n_wells in enumerate(wells_per_class):
        for w in range(n_wells):
            well = f"{'ABC'[k]}{w + 1:02d}"
            rows += [{"well": well, "class": f"c{k}", "cell": i} for i in range(cells)]
    table = pd.DataFrame(rows)
    if plate is not None:
        table["plate"] = plate
    return table


def sides_per_well(table, split, group="well"):
    used = split != ""
    return split[used].groupby(group_labels(table, group)[used]).nunique()


def test_default_split_holds_out_whole_wells_with_val_in_every_class():
    table = make_table()
    split = split_by_well(table, "class")
    assert split.index.equals(table.index)
    assert set(split) == {"train", "val"}
    assert (sides_per_well(table, split) == 1).all()
    val_classes = set(table.loc[split == "val", "class"])
    assert val_classes == {"c0", "c1", "c2"}
    # 20% of 5 wells: one val well per class.
    assert table.loc[split == "val"].groupby("class").well.nunique().tolist() == [1, 1, 1]


def test_test_fraction_gives_three_disjoint_sides():
    table = make_table((6, 6))
    split = split_by_well(table, "class", val_fraction=0.2, test_fraction=0.3, seed=3)
    assert set(split) == {"train", "val", "test"}
    assert (sides_per_well(table, split) == 1).all()
    summary = split_summary(table, split, "class")
    assert summary.loc[("test", "c0"), "groups"] == 2
    assert summary.loc[("val", "c0"), "groups"] == 1


def test_same_seed_same_split_other_seed_other_split():
    table = make_table((10, 10))
    first = split_by_well(table, "class", seed=7)
    assert first.equals(split_by_well(table, "class", seed=7))
    others = [split_by_well(table, "class", seed=s) for s in range(8)]
    assert any(not first.equals(o) for o in others)


def test_single_group_class_warns_naming_it_and_goes_to_train():
    table = make_table((4, 1), plate="P1")
    with pytest.warns(UserWarning, match=r"Class 'c1' has a single plate/well \(P1/B01\)"):
        split = split_by_well(table, "class", group_column="plate,well")
    assert (split[table["class"] == "c1"] == "train").all()


def test_missing_labels_are_unused():
    table = make_table((3, 3))
    table.loc[[0, 5, 30], "class"] = [None, "", np.nan]
    split = split_by_well(table, "class")
    assert (split.loc[[0, 5, 30]] == "").all()
    assert (split.drop([0, 5, 30]) != "").all()


def test_same_well_name_on_two_plates_is_two_groups():
    table = pd.concat([make_table((3, 3), plate="P1"), make_table((3, 3), plate="P2")])
    table = table.reset_index(drop=True)
    groups = group_labels(table)
    assert groups.nunique() == 12
    split = split_by_well(table, "class", val_fraction=0.34)
    assert (sides_per_well(table, split) == 1).all()


def test_group_by_plate_never_puts_a_plate_on_both_sides():
    table = pd.concat([make_table((2, 2), plate=f"P{p}") for p in range(4)], ignore_index=True)
    table["class"] = np.where(table.plate.isin(["P0", "P1"]), "x", "y")
    split = split_by_well(table, "class", group_column="plate", val_fraction=0.5)
    assert (split.groupby(table.plate).nunique() == 1).all()
    assert set(split) == {"train", "val"}


def test_split_column_values_are_validated():
    table = make_table((2, 2))
    table["fold"] = "train"
    table.loc[3, "fold"] = "holdout"
    with pytest.raises(LabelError, match="Split column 'fold' holds 'holdout'"):
        split_by_well(table, "class", split_column="fold")
    with pytest.raises(LabelError, match="Split column 'nope' is not in the cell table; columns are: well, class"):
        split_by_well(table, "class", split_column="nope")


def test_split_column_without_val_carves_val_wells_from_train():
    table = make_table((4, 4))
    table["fold"] = np.where(table.well.isin(["A04", "B04"]), "test", "Train")
    split = split_by_well(table, "class", split_column="fold")
    assert (split[table.fold == "test"] == "test").all()
    assert set(split[table.fold != "test"]) == {"train", "val"}
    assert (sides_per_well(table, split) == 1).all()


def test_split_column_with_val_is_kept_as_is():
    table = make_table((2, 2))
    table["fold"] = np.where(table.well.str.endswith("01"), "train", "val")
    split = split_by_well(table, "class", split_column="fold")
    assert split.tolist() == table.fold.tolist()


def test_leaky_split_column_warns():
    table = make_table((2, 2))
    table["fold"] = np.where(table.cell < 10, "train", "val")
    with pytest.warns(UserWarning, match="both sides"):
        split_by_well(table, "class", split_column="fold")


def test_holdout_split_tests_on_one_plate():
    table = pd.concat([make_table((3, 3), plate="P1"), make_table((3, 3), plate="P2")])
    table = table.reset_index(drop=True)
    table["fold"] = holdout_split(table, "plate", "P2")
    assert (table.loc[table.plate == "P2", "fold"] == "test").all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = split_by_well(table, "class", split_column="fold")
    assert set(split[table.plate == "P1"]) == {"train", "val"}
    with pytest.raises(ValueError, match="'P3' not found in column 'plate'"):
        holdout_split(table, "plate", ["P3"])


def test_bad_arguments_raise_clear_errors():
    table = make_table((2, 2))
    with pytest.raises(LabelError, match="Label column 'label' is not in the cell table; columns are"):
        split_by_well(table, "label")
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_well(table, "class", val_fraction=1.5)
    with pytest.raises(KeyError, match="'plate'"):
        split_by_well(table, "class", group_column="plate")


def test_split_column_may_be_a_series():
    table = make_table((4, 4))
    given = pd.Series(np.where(table.well.isin(["A04", "B04"]), "test", "train"), index=table.index)
    assert split_by_well(table, "class", split_column=given).equals(
        split_by_well(table.assign(fold=given), "class", split_column="fold")
    )


def test_label_free_split_holds_out_wells_unstratified():
    table = make_table((4, 4)).drop(columns="class")
    split = split_by_well(table, None, val_fraction=0.25, seed=2)
    assert (sides_per_well(table, split) == 1).all()
    assert split.groupby(table.well).first().value_counts().to_dict() == {"train": 6, "val": 2}


def test_several_group_columns_hold_out_their_combination():
    table = make_table((2, 2), cells=20, plate="P1")
    table["site"] = table.cell % 2
    assert group_labels(table, "plate,well,site").iloc[:2].tolist() == ["P1/A01/0", "P1/A01/1"]
    assert group_labels(table, ["well", "site"]).nunique() == 8
    split = split_by_well(table, "class", group_column="well,site", val_fraction=0.25)
    assert (split.groupby([table.well, table.site]).nunique() == 1).all()
    assert (split.groupby(table.well).nunique() == 2).any()  # sites of a well on both sides
    with pytest.raises(KeyError, match="'sites'"):
        group_labels(table, "well,sites")


def test_build_split_is_split_by_well_with_a_holdout():
    table = pd.concat([make_table((3, 3), plate="P1"), make_table((3, 3), plate="P2")], ignore_index=True)
    assert build_split(table, label_column="class", seed=4).equals(split_by_well(table, "class", seed=4))
    split = build_split(table, label_column="class", holdout="plate=P2", val_fraction=0.34)
    assert set(split[table.plate == "P2"]) == {"test"}
    assert set(split[table.plate == "P1"]) == {"train", "val"}
    assert split.equals(build_split(table, label_column="class", holdout=("plate", ["P2"]), val_fraction=0.34))
    by_two = build_split(table, label_column="class", holdout="well=A01,B02", val_fraction=0)
    assert set(table.well[by_two == "test"]) == {"A01", "B02"}
    assert set(build_split(table, label_column=None, holdout="plate=P1", val_fraction=0)) == {"train", "test"}


def test_build_split_errors():
    table = make_table((2, 2), plate="P1")
    with pytest.raises(ValueError, match="not both"):
        build_split(table, label_column="class", split_column="well", holdout="plate=P1")
    with pytest.raises(ValueError, match="COLUMN=VALUE"):
        build_split(table, label_column="class", holdout="plate")
    with pytest.raises(ValueError, match="'P9' not found in column 'plate'"):
        build_split(table, label_column="class", holdout="plate=P9")
    with pytest.raises(ValueError, match="leaves no row to train on"):
        build_split(table, label_column="class", holdout="plate=P1")
    assert parse_holdout(" plate = P1 ,P2 ") == ("plate", ["P1", "P2"])


def test_real_bbbc021_table_splits_by_plate_and_well(shared_data):
    table = pd.read_csv(shared_data / "bbbc021_crops" / "bbbc021_crops.csv")
    assert group_labels(table).nunique() == 7  # B02-B05 on one plate, B02-B04 on the other
    table["fold"] = holdout_split(table, "plate", "Week4_27821")
    with pytest.warns(UserWarning, match="Class 'DMSO' has 1 well on plate Week4_27801"):
        split = split_by_well(table, "moa", split_column="fold", val_fraction=0.34, seed=0)
    assert set(split[table.plate == "Week4_27821"]) == {"test"}
    assert set(split[table.plate == "Week4_27801"]) == {"train", "val"}
    dmso = (table.moa == "DMSO") & (table.plate == "Week4_27801")
    assert set(split[dmso]) == {"train", "val"}  # its only well gives val a site, not the well


# -- validation within wells: classes with few wells on a plate ---------------------------
def make_plates(wells_per_class, plates=("P1", "P2"), sites=4, cells=5, site_column="site") -> pd.DataFrame:
    """``wells_per_class`` {class: wells per plate}; every well has ``sites`` sites of ``cells`` cells."""
    rows = []
    for plate in plates:
        well = 2
        for cls, n_wells in wells_per_class.items():
            for _ in range(n_wells):
                rows += [{"plate": plate, "well": f"B{well:02d}", site_column: s, "class": cls}
                         for s in range(1, sites + 1) for _ in range(cells)]
                well += 1
    return pd.DataFrame(rows)


def sides_per(table, split, columns):
    return split.groupby([table[c] for c in columns]).nunique()


def test_a_class_with_few_wells_on_a_plate_gives_val_whole_sites():
    table = make_plates({"DMSO": 1, "drug": 2, "other": 4})
    with pytest.warns(UserWarning) as caught:
        split = split_by_well(table, "class", seed=3)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1  # one warning per call, naming every such stratum
    assert messages[0].startswith("Class 'DMSO' has 1 well on plate P1: validation takes 1 of its 4 sites; "
                                  "class 'drug' has 2 wells on plate P1: validation takes 2 of its 8 sites; "
                                  "class 'DMSO' has 1 well on plate P2: validation takes 1 of its 4 sites; ")
    assert messages[0].endswith(", not whole wells; their validation cells share a well with training cells.")
    assert (sides_per(table, split, ["plate", "well", "site"]) == 1).all()  # no site on both sides
    by_well = sides_per(table, split, ["plate", "well"])
    few = table["class"] != "other"
    assert (by_well[table[few].groupby(["plate", "well"]).size().index] == 2).all()
    assert (by_well[table[~few].groupby(["plate", "well"]).size().index] == 1).all()  # whole wells
    for (plate, cls), sides in split.groupby([table.plate, table["class"]]):
        assert set(sides) == {"train", "val"}, (plate, cls)


def test_two_sites_of_each_well_stay_in_train():
    table = make_plates({"a": 1, "b": 1}, plates=["P1"], sites=4)
    table = pd.concat([table, make_plates({"b": 1}, plates=["P1"], sites=2).assign(well="C09")], ignore_index=True)
    with pytest.warns(UserWarning, match=r"; class 'b' has 2 wells: validation takes 2 of its 6 sites"):
        split = split_by_well(table, "class", val_fraction=0.6)
    assert (split[table.well == "C09"] == "train").all()  # its two sites both stay
    assert sides_per(table, split, ["well"]).eq(2).sum() == 2
    assert (table[split == "train"].groupby("well")["site"].nunique() >= 2).all()


def test_wells_of_two_sites_give_val_cells_not_half_their_sites():
    table = make_plates({"a": 1, "b": 1}, plates=["P1"], sites=2, cells=10)
    with pytest.warns(UserWarning, match=r"Class 'a' has 1 well with fewer than 3 sites: validation takes 4 of its"):
        split = split_by_well(table, "class")
    assert (table[split == "train"].groupby("well")["site"].nunique() == 2).all()


def test_field_and_timepoint_name_the_sites_without_a_site_column():
    table = make_plates({"a": 1, "b": 3}, plates=["P1"], sites=4, site_column="timepoint").assign(field=0)
    with pytest.warns(UserWarning, match=r"Class 'a' has 1 well: validation takes 1 of its 4 sites"):
        split = split_by_well(table, "class")
    assert (sides_per(table, split, ["well", "field", "timepoint"]) == 1).all()


def test_wells_with_a_single_site_give_val_cells_with_an_optimism_warning():
    table = make_plates({"a": 1, "b": 2}, plates=["P1", "P2"], sites=1, cells=10)
    with pytest.warns(UserWarning) as caught:
        split = split_by_well(table, "class", val_fraction=0.25, seed=1)
    message = str(caught[0].message)
    assert message.startswith("Class 'a' has 1 well on plate P1 with fewer than 3 sites: validation takes 2 of "
                              "its 10 cells at random; class 'b' has 2 wells on plate P1 with fewer than 3 sites "
                              "each: ")
    assert ("class 'b' has 2 wells on plate P2 with fewer than 3 sites each: validation takes 5 of its 20 cells"
            in message)
    assert message.endswith("not whole wells or sites; their validation scores are optimistic.")
    counts = (split == "val").groupby([table.plate, table["class"]]).sum()
    assert counts.to_dict() == {("P1", "a"): 2, ("P1", "b"): 5, ("P2", "a"): 2, ("P2", "b"): 5}


def test_val_cells_are_the_same_cells_whatever_order_the_store_holds_them_in():
    """Two segmentation runs can store the same cells in another order; validation must not change."""
    table = make_plates({"a": 1, "b": 1}, plates=["P1"], sites=2, cells=10, site_column="timepoint")
    table = table.assign(field=0, label=table.groupby(["well", "timepoint"]).cumcount() + 1)
    shuffled = table.sample(frac=1.0, random_state=7).reset_index(drop=True)
    identity = ["well", "field", "timepoint", "label"]

    def val_cells(frame):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            split = split_by_well(frame, "class", seed=0)
        return sorted(map(tuple, frame.loc[split == "val", identity].to_numpy().tolist()))

    assert len(val_cells(table)) == 8
    assert val_cells(shuffled) == val_cells(table)


def test_no_site_column_gives_val_cells():
    table = make_table((1, 3))
    with pytest.warns(UserWarning, match=r"Class 'c0' has 1 well and the table has no site column: validation "
                                         r"takes 4 of its 20 cells at random.*optimistic"):
        split = split_by_well(table, "class")
    assert (split[table["class"] == "c0"] == "val").sum() == 4
    assert (sides_per(table, split, ["well"])[["B01", "B02", "B03"]] == 1).all()


def test_test_takes_whole_wells_only_and_classes_with_few_wells_are_not_tested():
    table = make_plates({"a": 2, "b": 5}, plates=["P1"])
    with pytest.warns(UserWarning) as caught:
        split = split_by_well(table, "class", val_fraction=0.2, test_fraction=0.2, seed=2)
    messages = [str(w.message) for w in caught]
    assert messages[0] == "Class 'a' has only 2 wells: none is left to hold out for test, so the class is not tested."
    assert messages[1].startswith("Class 'a' has 2 wells: validation takes 2 of its 8 sites")
    assert (split[table["class"] == "a"] != "test").all()
    tested = table[split == "test"]
    assert tested.well.nunique() == 1 and (sides_per(table, split, ["well"])[tested.well.unique()] == 1).all()


def test_val_fraction_zero_with_few_wells_carves_nothing_and_warns_about_test_only():
    table = make_plates({"a": 1, "b": 4}, plates=["P1"])
    with pytest.warns(UserWarning, match=r"Class 'a' has a single well \(B02\).*no test cells") as caught:
        split = split_by_well(table, "class", val_fraction=0, test_fraction=0.25)
    assert len(caught) == 1 and set(split) == {"train", "test"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(split_by_well(table, "class", val_fraction=0)) == {"train"}


def test_strata_are_per_plate_so_every_plate_keeps_training_cells():
    table = make_plates({"a": 3, "b": 3}, plates=["P1", "P2", "P3"])
    split = split_by_well(table, "class", val_fraction=0.34, test_fraction=0.34, seed=5)
    counts = split.groupby([table.plate, table["class"]]).value_counts().unstack()
    assert (counts[["train", "val", "test"]] == 5 * 4).all().all()  # one well of each on each plate


def test_carving_within_wells_is_deterministic_for_a_seed():
    table = make_plates({"a": 1, "b": 2}, sites=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = [split_by_well(table, "class", seed=s) for s in (4, 4, 5, 6, 7)]
    assert splits[0].equals(splits[1])
    assert any(not splits[0].equals(other) for other in splits[2:])


def test_cells_without_wells_are_each_their_own_group():
    table = make_table((1, 1), cells=20).drop(columns="well")
    table["fold"] = np.where(table.cell < 4, "val", "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = build_split(table, label_column="class", split_column="fold")
        carved = build_split(table, label_column="class", val_fraction=0.25, seed=1)
    assert given.tolist() == table.fold.tolist()
    assert (carved == "val").groupby(table["class"]).sum().to_dict() == {"c0": 5, "c1": 5}
    assert split_summary(table, carved, "class").loc[("val", "c0"), "groups"] == 5
    with pytest.raises(KeyError, match="'plate'"):
        split_by_well(table, "class", group_column="plate")


def test_a_plate_column_with_missing_plates_is_refused_by_count():
    table = make_plates({"a": 3, "b": 3})
    table.loc[:6, "plate"] = None
    with pytest.raises(ValueError, match=r"7 of 240 row\(s\) have no plate"):
        split_by_well(table, "class")


def test_a_held_out_timepoint_leaves_validation_within_the_wells_it_shares():
    """Wells on both sides of a given split never go whole to val, but give it cells."""
    table = make_plates({"a": 1, "b": 1}, plates=["P1"], sites=3, cells=10, site_column="timepoint")
    with pytest.warns(UserWarning) as caught:
        split = build_split(table, label_column="class", holdout="timepoint=3")
    assert (split[table.timepoint == 3] == "test").all()
    assert ((split == "val").groupby(table["class"]).sum() == 4).all()  # 20 % of each class's 20 train cells
    assert any("validation takes 4 of its 20 cells" in str(w.message) for w in caught)
