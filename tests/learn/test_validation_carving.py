"""Validation carved from the real BBBC021 table: every plate and class on both sides, no well leaked.

The table (``../shared/data/bbbc021_crops/bbbc021_crops.csv``, 3,598 MCF7 cells): plate
Week4_27801 has DMSO in well B02 (4 sites) and cycloheximide ("Protein synthesis") in B03,
B04 (4 sites each) and B05 (1 site); plate Week4_27821 has DMSO in B02 and cycloheximide in
B03 and B04 (4 sites each). Holding out whole wells for validation used to take the only
DMSO well of a plate.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from napari_hcs.learn import build_split

TRAIN_PLATE, TEST_PLATE = "Week4_27801", "Week4_27821"


@pytest.fixture(scope="module")
def table(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "bbbc021_crops" / "bbbc021_crops.csv")


def _split(table, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = build_split(table, label_column="moa", **options)
    return split, [str(w.message) for w in caught]


def _sides(table, split, columns):
    return split.groupby([table[c] for c in columns]).agg(lambda s: frozenset(s))


def test_holding_out_a_plate_validates_every_class_of_the_other(table):
    split, messages = _split(table, holdout=f"plate={TEST_PLATE}")
    assert (split[table.plate == TEST_PLATE] == "test").all()
    assert (split[table.plate == TRAIN_PLATE] != "test").all()
    trained = table.plate == TRAIN_PLATE
    for cls, sides in split[trained].groupby(table.moa[trained]):
        assert set(sides) == {"train", "val"}, cls
    wells = _sides(table[trained], split[trained], ["well"])
    assert wells.drop("B02").map(len).eq(1).all()  # cycloheximide: whole wells
    assert wells["B02"] == {"train", "val"}  # the one DMSO well: split by whole sites
    assert _sides(table[trained], split[trained], ["well", "site"]).map(len).eq(1).all()
    assert messages == [
        f"Class 'DMSO' has 1 well on plate {TRAIN_PLATE}: validation takes 1 of its 4 sites, not whole wells; "
        "its validation cells share a well with training cells."
    ]


def test_both_plates_training_gives_each_plate_and_class_both_sides(table):
    split, messages = _split(table)
    assert set(split) == {"train", "val"}
    for (plate, cls), sides in split.groupby([table.plate, table.moa]):
        assert set(sides) == {"train", "val"}, (plate, cls)
    assert _sides(table, split, ["plate", "well", "site"]).map(len).eq(1).all()  # no site on both sides
    assert messages == [
        f"Class 'DMSO' has 1 well on plate {TRAIN_PLATE}: validation takes 1 of its 4 sites; "
        f"class 'DMSO' has 1 well on plate {TEST_PLATE}: validation takes 1 of its 4 sites; "
        f"class 'Protein synthesis' has 2 wells on plate {TEST_PLATE}: validation takes 2 of its 8 sites, "
        "not whole wells; their validation cells share a well with training cells."
    ]  # cycloheximide has 3 wells on Week4_27801: whole wells there
    assert _sides(table[table.plate == TRAIN_PLATE], split[table.plate == TRAIN_PLATE], ["well"]).drop("B02") \
        .map(len).eq(1).all()


def test_the_split_is_the_same_for_a_seed(table):
    first, _ = _split(table, seed=3)
    again, _ = _split(table, seed=3)
    assert first.equals(again)


def test_cells_without_wells_take_a_split_column(table):
    cells = table.drop(columns=["well", "site"]).assign(
        fold=lambda t: (t.plate == TEST_PLATE).map({True: "test", False: "train"})
    )
    split, messages = _split(cells, split_column="fold")
    assert messages == []
    assert (split[cells.fold == "test"] == "test").all()
    val = split[cells.plate == TRAIN_PLATE] == "val"
    shares = val.groupby(cells.moa[cells.plate == TRAIN_PLATE]).mean()
    assert shares.between(0.19, 0.21).all()  # a fifth of each class's cells
    cells.loc[cells.index[:100], "fold"] = "val"
    assert _split(cells, split_column="fold")[0].tolist() == cells.fold.tolist()
