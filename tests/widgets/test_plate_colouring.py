"""After a plate-wide prediction the plate map shows each well's predicted class fractions."""

from __future__ import annotations

import pytest
from qtpy.QtCore import QPoint
from qtpy.QtGui import QColor

from napari_hcs.classify import read_predictions
from napari_hcs.project import Project
from napari_hcs.widgets.plate_colouring import CLASSES_VIEW, PIE_VIEW, WellColouring
from napari_hcs.widgets.plate_map import PlateMap
from napari_hcs.viewer.session import Session

from predicted_sample import CLASSES, plausible_predictions, segmented_sample


@pytest.fixture
def session(tmp_path):
    project = Project(segmented_sample(tmp_path / "project"))
    session = Session()
    session.open(project.open_plate().source, project_dir=project.folder)
    for name in CLASSES:
        session.add_class(name)
    return session


def _colour_at(plate_map: PlateMap, well: str, dx: float, dy: float) -> QColor:
    image = plate_map.grab().toImage()
    rect = plate_map.well_rect(well)
    point = QPoint(round(rect.center().x() + dx * rect.width()), round(rect.center().y() + dy * rect.height()))
    return image.pixelColor(point)


def test_wells_show_pies_of_predicted_classes_then_their_classes_again(qtbot, session):
    plate_map = PlateMap()
    qtbot.addWidget(plate_map)
    plate_map.set_layout(session.plate.n_rows, session.plate.n_columns, session.plate.wells)
    plate_map.resize(420, plate_map.heightForWidth(420))
    colouring = WellColouring(session, plate_map)
    qtbot.addWidget(colouring)
    assert [colouring.combo.itemText(i) for i in range(colouring.combo.count())] == [CLASSES_VIEW]

    predictions = plausible_predictions(session.project)
    session.set_predictions(read_predictions(session.project))
    choices = [colouring.combo.itemText(i) for i in range(colouring.combo.count())]
    assert choices == [CLASSES_VIEW, PIE_VIEW] + [f"fraction predicted {name}" for name in CLASSES]
    colouring.set_view(PIE_VIEW)
    assert plate_map.fraction_mode == "pie"
    b02 = predictions.merge(session.cells[["crop_index", "well"]])
    share = (b02.loc[b02["well"] == "B02", "pred_class"] == CLASSES[0]).mean()
    assert share > 0.5  # most of B02's pie, clockwise from noon, is the first class
    first = QColor(session.classes[0]["color"])
    assert abs(_colour_at(plate_map, "B02", 0.15, -0.1).red() - first.red()) < 10  # just past noon

    colouring.set_view(f"fraction predicted {CLASSES[1]}")
    assert plate_map.fraction_mode == "heat"
    colouring.set_view(CLASSES_VIEW)
    assert plate_map.fraction_mode is None
    with pytest.raises(ValueError, match="Wells cannot show 'nope'"):
        colouring.set_view("nope")
