"""Class list and well-class rules."""

from __future__ import annotations

import pytest

from napari_hcs.project import annotations as rules

from plates import make_plate


def test_class_list_rules():
    classes = rules.add_class([], "a")
    classes = rules.add_class(classes, "b", "#123456")
    assert [c["color"] for c in classes] == ["#e69f00", "#123456"]
    with pytest.raises(ValueError, match="already exists"):
        rules.add_class(classes, "a")
    with pytest.raises(ValueError, match="needs a name"):
        rules.add_class(classes, "  ")
    with pytest.raises(ValueError, match="not a colour"):
        rules.set_class_color(classes, "a", "no-such-colour")
    assert [c["name"] for c in rules.rename_class(classes, "a", "c")] == ["c", "b"]
    with pytest.raises(ValueError, match="already used"):
        rules.rename_class(classes, "a", "b")
    assert [c["name"] for c in rules.remove_class(classes, "a")] == ["b"]
    assert classes[0]["name"] == "a"  # the rules return new lists


def test_default_colours_cycle_when_all_are_used():
    classes = []
    for index in range(len(rules.DEFAULT_CLASS_COLORS) + 1):
        classes = rules.add_class(classes, f"class {index}")
    assert classes[-1]["color"] == classes[0]["color"]


def test_well_counts_and_colours():
    plate = make_plate(wells=("A01", "A02", "A03"))
    rules.set_well_class(plate, ["A01", "A02"], "dmso")
    rules.set_well_class(plate, ["A03"], "drug")
    assert rules.well_class_counts(plate.annotations) == {"dmso": 2, "drug": 1}
    rules.set_well_class(plate, ["A02"], None)
    assert rules.well_class_counts(plate.annotations) == {"dmso": 1, "drug": 1}
    assert rules.well_colors(plate.annotations, [{"name": "drug", "color": "#000000"}]) == {"A03": "#000000"}
