"""The plate map's class fractions per well (pie or heat map) and its paint time at 1536 wells."""

from __future__ import annotations

import math
import time

import pytest
from qtpy.QtCore import QPoint
from qtpy.QtGui import QColor, QPalette

from napari_hcs.plate import PLATE_LAYOUTS, well_name
from napari_hcs.widgets.plate_map import UNLABELLED_FILL, PlateMap

pytestmark = pytest.mark.gui

ORANGE, BLUE, GREEN = "#e69f00", "#56b4e9", "#009e73"


def _map(qtbot, n_wells: int, width: int, wells=None) -> PlateMap:
    rows, columns = PLATE_LAYOUTS[n_wells]
    plate_map = PlateMap()
    qtbot.addWidget(plate_map)
    plate_map.set_layout(rows, columns, wells or [well_name(r, c) for r in range(rows) for c in range(columns)])
    plate_map.resize(width, plate_map.heightForWidth(width))
    plate_map.show()
    qtbot.waitExposed(plate_map)
    return plate_map


def _pixel(image, plate_map: PlateMap, well: str, angle_degrees: float | None = None) -> str:
    """Colour at a well's centre, or at 0.3 cell from it towards a clock angle (0 = 12 o'clock)."""
    rect = plate_map.well_rect(well)
    x, y = rect.center().x(), rect.center().y()
    if angle_degrees is not None:
        radius = 0.3 * rect.width()
        x += radius * math.sin(math.radians(angle_degrees))
        y -= radius * math.cos(math.radians(angle_degrees))
    return image.pixelColor(QPoint(round(x), round(y))).name()


def _close(a: str, b: str, tolerance: int = 6) -> bool:
    first, second = QColor(a), QColor(b)
    return all(abs(u - v) <= tolerance for u, v in zip(first.getRgb()[:3], second.getRgb()[:3]))


def test_pies_show_each_class_fraction_clockwise_from_noon(qtbot):
    plate_map = _map(qtbot, 96, 480, wells=["A01", "A02", "B01", "C03"])
    plate_map.set_well_colors({"A01": "#ff0000", "C03": "#ff0000"})
    plate_map.set_well_fractions({"A01": [(ORANGE, 0.5), (BLUE, 0.25), (GREEN, 0.25)],
                                  "A02": [(GREEN, 1.0)], "B01": [(ORANGE, 0.25)]})
    assert plate_map.fraction_mode == "pie"
    image = plate_map.grab().toImage()
    # A01: orange from 12 to 6 o'clock, blue 6 to 9, green 9 to 12.
    assert _close(_pixel(image, plate_map, "A01", 90), ORANGE)
    assert _close(_pixel(image, plate_map, "A01", 225), BLUE)
    assert _close(_pixel(image, plate_map, "A01", 315), GREEN)
    assert _close(_pixel(image, plate_map, "A02", 180), GREEN)
    assert _close(_pixel(image, plate_map, "B01", 45), ORANGE)
    assert not _close(_pixel(image, plate_map, "B01", 200), ORANGE)  # the rest of the pie stays empty
    # A well with images but no fractions is grey, not its class colour; class colours come back on None.
    assert _close(_pixel(image, plate_map, "C03"), UNLABELLED_FILL)
    plate_map.set_well_fractions(None)
    assert plate_map.fraction_mode is None
    image = plate_map.grab().toImage()
    assert _close(_pixel(image, plate_map, "C03"), "#ff0000") and _close(_pixel(image, plate_map, "A01"), "#ff0000")
    assert _pixel(image, plate_map, "A02") == UNLABELLED_FILL.lower()


def test_heat_map_shows_one_fraction_as_colour_intensity(qtbot):
    plate_map = _map(qtbot, 96, 480)
    plate_map.set_well_fractions({"A01": [(BLUE, 1.0)], "A02": [(BLUE, 0.5)], "A03": [(BLUE, 0.0)]}, mode="heat")
    assert plate_map.fraction_mode == "heat"
    image = plate_map.grab().toImage()
    base = plate_map.palette().color(QPalette.ColorRole.Base)
    full, half, none = (QColor(_pixel(image, plate_map, w)) for w in ("A01", "A02", "A03"))
    assert _close(full.name(), BLUE) and _close(none.name(), base.name())
    for channel in ("red", "green", "blue"):
        expected = (getattr(base, channel)() + getattr(QColor(BLUE), channel)()) / 2
        assert abs(getattr(half, channel)() - expected) <= 6
    assert _close(_pixel(image, plate_map, "B01"), UNLABELLED_FILL)


def test_bad_fractions_are_refused_naming_the_well(qtbot):
    plate_map = _map(qtbot, 96, 300)
    with pytest.raises(ValueError, match="B02.*one fraction per well"):
        plate_map.set_well_fractions({"B02": [(BLUE, 0.5), (ORANGE, 0.5)]}, mode="heat")
    with pytest.raises(ValueError, match="B03.*'nocolour' is not a colour"):
        plate_map.set_well_fractions({"B03": [("nocolour", 0.5)]})
    with pytest.raises(ValueError, match="pie, heat"):
        plate_map.set_well_fractions({}, mode="bars")
    plate_map.set_well_fractions({"B02": [(BLUE, 0.5)]})
    plate_map.set_layout(8, 12, ["A01"])  # another plate: fractions are gone
    assert plate_map.fraction_mode is None


def _paint_ms(plate_map: PlateMap) -> float:
    plate_map.grab()  # warm up fonts and caches
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        plate_map.grab()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def test_a_1536_well_plate_paints_fast_in_a_dock_sized_map(qtbot):
    plate_map = _map(qtbot, 1536, 400)
    rows, columns = plate_map.layout_shape
    wells = [well_name(r, c) for r in range(rows) for c in range(columns)]
    plate_map.set_well_colors({w: (ORANGE if i % 3 else BLUE) for i, w in enumerate(wells)})
    plate_map.set_current_well("P24")
    assert _paint_ms(plate_map) < 200
    plate_map.set_well_fractions({w: [(ORANGE, (i % 7) / 7), (BLUE, 0.2), (GREEN, 0.1)]
                                  for i, w in enumerate(wells)})
    assert _paint_ms(plate_map) < 200
    image = plate_map.grab().toImage()
    assert _close(_pixel(image, plate_map, "A01", 36), BLUE, tolerance=40)  # 0 orange, then 20 % blue
    plate_map.set_well_fractions({w: [(ORANGE, (i % 11) / 10)] for i, w in enumerate(wells)}, mode="heat")
    assert _paint_ms(plate_map) < 200
