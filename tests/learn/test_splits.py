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


def test_single_well_class_warns_naming_it_and_goes_to_train():
    table = make_table((4, 1))
    with pytest.warns(UserWarning, match="Class 'c1' has a single well"):
        split = split_by_well(table, "class")
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
    table = pd.concat([make_table((2, 2), plate="P1"), make_table((2, 2), plate="P2")])
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
    split = split_by_well(table, "moa", val_fraction=0.25, seed=0)
    assert (sides_per_well(table, split) == 1).all()
    dmso = table.moa == "DMSO"  # one DMSO well per plate: one goes to val
    assert sorted(split[dmso].groupby(table.plate[dmso]).first()) == ["train", "val"]
    table["fold"] = holdout_split(table, "plate", "Week4_27821")
    with pytest.warns(UserWarning, match="Class 'DMSO' has a single well"):
        split = split_by_well(table, "moa", split_column="fold", val_fraction=0.34, seed=0)
    assert set(split[table.plate == "Week4_27821"]) == {"test"}
    assert set(split[table.plate == "Week4_27801"]) == {"train", "val"}
    assert (split[table.moa == "DMSO"] != "val").all()
