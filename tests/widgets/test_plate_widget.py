"""The plate map dock widget: browsing wells and sites, labelling wells, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import QPoint, Qt

from napari_hcs.io import open_plate
from napari_hcs.viewer.layers import META_SITE
from napari_hcs.plate import PLATE_LAYOUTS, Site, well_name
from napari_hcs.project.folder import Project
from napari_hcs.widgets.plate_map import PlateMap, step_well, wells_between
from napari_hcs.project.annotations import merge_classes, rename_class_in_annotations, set_well_class, well_colors
from napari_hcs.widgets.plate_widget import PlateWidget, site_label

from plates import make_plate

LOAD_TIMEOUT_MS = 15_000


# -- pure helpers ---------------------------------------------------------------


def test_wells_between_is_row_major_and_inclusive():
    wells = ["A01", "A02", "A12", "B01", "C05"]
    assert wells_between(wells, "A02", "B01") == ["A02", "A12", "B01"]
    assert wells_between(wells, "B01", "A02") == ["A02", "A12", "B01"]
    assert wells_between(wells, "C05", "C05") == ["C05"]


def test_step_well_skips_wells_without_images():
    wells = ["B02", "B04", "D02", "D05"]
    assert step_well(wells, "B02", "right") == "B04"
    assert step_well(wells, "B04", "right") == "D02"  # wraps to the next row
    assert step_well(wells, "B02", "left") == "B02"  # nothing before the first well
    assert step_well(wells, "B02", "down") == "D02"
    assert step_well(wells, "D02", "up") == "B02"
    assert step_well(wells, "B04", "down") == "B04"  # no well below
    assert step_well(wells, None, "right") == "B02"
    assert step_well([], None, "right") is None
    with pytest.raises(ValueError, match="direction"):
        step_well(wells, "B02", "sideways")


def test_class_helpers_keep_annotations_and_colours_in_step():
    plate = make_plate(wells=("A01", "A02", "A03"))
    set_well_class(plate, ["A01", "A02"], "dmso")
    set_well_class(plate, ["A03"], "drug")
    classes = merge_classes([{"name": "drug", "color": "#ff0000"}], plate.annotations)
    assert [c["name"] for c in classes] == ["drug", "dmso"]
    assert well_colors(plate.annotations, classes) == {
        "A01": classes[1]["color"],
        "A02": classes[1]["color"],
        "A03": "#ff0000",
    }
    assert rename_class_in_annotations(plate, "dmso", "control") == ["A01", "A02"]
    set_well_class(plate, ["A02"], None)
    assert plate.well_annotations("A01") == {"class": "control"}
    assert plate.well_annotations("A02") == {}
    assert site_label(plate, plate.site("A01", 1)) == "field 1"


# -- the map --------------------------------------------------------------------


@pytest.mark.gui
@pytest.mark.parametrize("n_wells", [96, 384, 1536])
def test_plate_map_draws_and_hits_every_format(qtbot, n_wells):
    rows, columns = PLATE_LAYOUTS[n_wells]
    plate_map = PlateMap()
    qtbot.addWidget(plate_map)
    with_images = [well_name(r, c) for r in range(rows) for c in range(0, columns, 2)]
    plate_map.set_layout(rows, columns, with_images)
    plate_map.set_well_colors({with_images[0]: "#e69f00"})
    plate_map.resize(600, 420)
    plate_map.show()
    qtbot.waitExposed(plate_map)
    image = plate_map.grab().toImage()
    assert image.width() > 0
    last = well_name(rows - 1, columns - 1)
    for well in ("A01", with_images[-1], last):
        assert plate_map.well_at(plate_map.well_rect(well).center()) == well
    with qtbot.waitSignal(plate_map.well_clicked) as blocker:
        qtbot.mouseClick(plate_map, Qt.MouseButton.LeftButton, pos=_center(plate_map, last))
    assert blocker.args[0] == last
    corner = plate_map.well_rect("A01").center().toPoint()
    assert image.pixelColor(corner).name() == "#e69f00"


def _center(plate_map: PlateMap, well: str) -> QPoint:
    return plate_map.well_rect(well).center().toPoint()


# -- the widget on a synthetic plate ----------------------------------------------


@pytest.fixture
def synthetic_widget(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = PlateWidget(viewer)
    viewer.window.add_dock_widget(widget)
    plate = make_plate(wells=("A01", "A02", "A03", "B01", "B02", "C03"), n_sites=2)
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        widget.set_plate(plate, project_dir=tmp_path / "project")
    return viewer, widget, plate


@pytest.mark.gui
def test_shift_click_labels_a_row_major_range(synthetic_widget, tmp_path):
    _, widget, plate = synthetic_widget
    widget.add_class("control")
    widget.add_class("treated")
    widget.select_class("treated")
    widget.click_well("A02")
    widget.click_well("B02", Qt.KeyboardModifier.ShiftModifier)
    assert sorted(plate.annotations["class"].dropna().index) == ["A02", "A03", "B01", "B02"]
    widget.set_mode("erase")
    widget.click_well("A03")
    widget.click_well("B01", Qt.KeyboardModifier.ShiftModifier)
    saved = pd.read_csv(tmp_path / "project" / "layout.csv", index_col="well")
    assert saved["class"].dropna().to_dict() == {"A02": "treated", "B02": "treated"}
    assert widget.plate_map.well_color("B02") == widget.classes[1]["color"]
    assert widget.plate_map.well_color("A03") is None


@pytest.mark.gui
def test_classes_are_edited_and_saved(synthetic_widget, tmp_path):
    _, widget, plate = synthetic_widget
    widget.add_class("dmso")
    widget.add_class("drug", color="#123456")
    widget.select_class("dmso")
    widget.click_well("A01")
    widget.rename_class("dmso", "control")
    widget.set_class_color("control", "#ff0000")
    assert plate.well_annotations("A01") == {"class": "control"}
    assert widget.plate_map.well_color("A01") == "#ff0000"
    project = Project(tmp_path / "project")
    assert project.read_classes() == [
        {"name": "control", "color": "#ff0000"},
        {"name": "drug", "color": "#123456"},
    ]
    assert widget.remove_class("control") == ["A01"]
    assert plate.well_annotations("A01") == {}
    assert [c["name"] for c in project.read_classes()] == ["drug"]
    with pytest.raises(ValueError, match="drug"):
        widget.select_class("unknown")


@pytest.mark.gui
def test_layout_tables_load_and_save(synthetic_widget, tmp_path):
    _, widget, plate = synthetic_widget
    table = tmp_path / "layout.tsv"
    table.write_text("Well\tclass\tcompound\nA01\tpositive\tstaurosporine\nB02\tnegative\tDMSO\n")
    widget.load_layout(table)
    assert plate.well_annotations("A01") == {"class": "positive", "compound": "staurosporine"}
    assert [c["name"] for c in widget.classes] == ["positive", "negative"]
    assert widget.plate_map.well_color("B02") == widget.classes[1]["color"]
    out = tmp_path / "out.csv"
    widget.save_layout(out)
    assert pd.read_csv(out, index_col="well").loc["B02", "compound"] == "DMSO"


@pytest.mark.gui
def test_clicking_a_well_without_images_changes_nothing(synthetic_widget):
    _, widget, plate = synthetic_widget
    widget.add_class("x")
    widget.select_class("x")
    widget.click_well("H12")
    assert "has no images" in widget.status_label.text()
    assert plate.annotations.empty or "class" not in plate.annotations


# -- the widget on the real scPortrait plate -------------------------------------------


@pytest.fixture
def scportrait_widget(make_napari_viewer, qtbot, scportrait_dir, tmp_path):
    viewer = make_napari_viewer()
    widget = PlateWidget(viewer)
    viewer.window.add_dock_widget(widget)
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        widget.open_plate(scportrait_dir, pattern="scportrait", project_dir=tmp_path / "project")
    return viewer, widget


@pytest.mark.gui
@pytest.mark.slow
def test_labelling_wells_persists_in_the_project(scportrait_widget, qtbot, scportrait_dir, tmp_path):
    viewer, widget = scportrait_widget
    assert widget.plate.wells == ["B02", "B04"]
    assert [layer.name for layer in viewer.layers] == ["Alexa488", "DAPI", "mCherry"]
    widget.add_class("Unstimulated")
    widget.add_class("Stimulated")
    widget.select_class("Stimulated")
    qtbot.mouseClick(widget.plate_map, Qt.MouseButton.LeftButton, pos=_center(widget.plate_map, "B04"))
    assert widget.plate.well_annotations("B04")["class"] == "Stimulated"
    saved = pd.read_csv(tmp_path / "project" / "layout.csv", index_col="well")
    assert saved.loc["B04", "class"] == "Stimulated"
    widget.select_class("Unstimulated")
    widget.click_well("B02")
    widget.click_well("B04", Qt.KeyboardModifier.ShiftModifier)  # the range B02..B04
    assert widget.plate.annotations["class"].to_dict() == {"B02": "Unstimulated", "B04": "Unstimulated"}
    widget.click_well("B04")
    widget.select_class("Stimulated")
    widget.click_well("B04")

    reopened = open_plate(scportrait_dir, pattern="scportrait")
    assert "class" not in reopened.annotations
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        widget.set_plate(reopened, project_dir=tmp_path / "project")
    assert reopened.annotations["class"].to_dict() == {"B02": "Unstimulated", "B04": "Stimulated"}
    assert [c["name"] for c in widget.classes] == ["Unstimulated", "Stimulated"]
    assert widget.plate_map.well_color("B04") == widget.classes[1]["color"]
    assert Project(tmp_path / "project").read_meta()["pattern"] == "scportrait"


@pytest.mark.gui
@pytest.mark.slow
def test_site_selector_and_keys_change_the_layers(scportrait_widget, qtbot):
    viewer, widget = scportrait_widget
    dapi = viewer.layers["DAPI"]
    first = dapi.data.copy()
    assert widget.site_combo.count() == 3 and widget.site_combo.currentText() == "field 0, t 1"
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        widget.site_combo.setCurrentIndex(2)
    assert widget.current_site == Site("B02", 0, 3)
    assert dapi.metadata[META_SITE] == Site("B02", 0, 3)
    assert not np.array_equal(dapi.data, first)
    assert len(viewer.layers) == 3

    widget.plate_map.setFocus()
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        qtbot.keyClick(widget.plate_map, Qt.Key.Key_Right)
    assert widget.current_site == Site("B04", 0, 3)  # the same timepoint in the next well
    assert widget.plate_map.current_well == "B04"
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        qtbot.keyClick(widget.plate_map, Qt.Key.Key_PageUp)
    assert widget.current_site == Site("B04", 0, 2)
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        qtbot.keyClick(widget.plate_map, Qt.Key.Key_Left)
    assert widget.current_site == Site("B02", 0, 2)
    np.testing.assert_array_equal(
        dapi.data, widget.plate.read_site(Site("B02", 0, 2))[widget.plate.channel_index("DAPI")]
    )


@pytest.mark.gui
@pytest.mark.slow
def test_screenshot_of_the_viewer_is_not_blank(make_napari_viewer, qtbot, scportrait_dir, tmp_path):
    viewer = make_napari_viewer(show=True)
    widget = PlateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Plate map")
    with qtbot.waitSignal(widget.site_changed, timeout=LOAD_TIMEOUT_MS):
        widget.open_plate(scportrait_dir, pattern="scportrait", project_dir=tmp_path / "project")
    widget.add_class("Stimulated")
    widget.select_class("Stimulated")
    widget.click_well("B04")
    qtbot.wait(100)
    screenshot = viewer.screenshot(canvas_only=False, flash=False)
    assert screenshot.ndim == 3 and screenshot.shape[0] > 300
    assert screenshot[..., :3].std() > 10
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert canvas[..., :3].std() > 5
