"""What the plate map's wells show: their classes, or the classes predicted in them.

After a plate-wide prediction the map can show, per well, a pie of the
predicted class fractions, or a heat map of one class's fraction: the
screen-level view of a whole plate.
"""

from __future__ import annotations

import pandas as pd
from qtpy.QtCore import QSignalBlocker
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from ..classify import class_fractions
from ..viewer.session import Session
from ..vocabulary import CROP_INDEX
from .plate_map import PlateMap

__all__ = ["CLASSES_VIEW", "PIE_VIEW", "WellColouring", "well_fraction_colours"]

CLASSES_VIEW = "well classes"
PIE_VIEW = "predicted classes (pie)"
FRACTION_PREFIX = "fraction predicted "


def well_fraction_colours(fractions: pd.DataFrame, classes: list[dict], *, only: str | None = None) -> dict:
    """``{well: [(colour, fraction), ...]}`` of each well (one entry, that class's, with ``only``)."""
    colour = {c["name"]: c["color"] for c in classes}
    names = [only] if only is not None else [str(n) for n in fractions.columns]
    return {
        str(well): [(colour.get(name, "#999999"), float(row.get(name, 0.0))) for name in names]
        for well, row in fractions.iterrows()
    }


class WellColouring(QWidget):
    """A "Wells show" choice under the plate map: well classes, predicted pie, one class's fraction."""

    def __init__(self, session: Session, plate_map: PlateMap, parent=None):
        super().__init__(parent)
        self.session = session
        self.plate_map = plate_map
        self.combo = QComboBox()
        self.combo.setToolTip("After predicting the whole plate: the predicted class fractions per well")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Wells show:"))
        row.addWidget(self.combo, 1)
        self.combo.currentTextChanged.connect(self.refresh)
        for signal in (session.predictions_changed, session.classes_changed, session.cells_changed):
            signal.connect(self._refill)
        self._refill()

    @property
    def view(self) -> str:
        """What the wells show now (the combo's text)."""
        return self.combo.currentText()

    def set_view(self, view: str) -> None:
        """Show ``view``: :data:`CLASSES_VIEW`, :data:`PIE_VIEW` or ``"fraction predicted <class>"``."""
        index = self.combo.findText(view)
        if index < 0:
            choices = [self.combo.itemText(i) for i in range(self.combo.count())]
            raise ValueError(f"Wells cannot show {view!r}; choices: {', '.join(choices)}.")
        self.combo.setCurrentIndex(index)
        self.refresh()

    def _refill(self, *_) -> None:
        current = self.combo.currentText()
        choices = [CLASSES_VIEW]
        if self._fractions() is not None:
            choices += [PIE_VIEW] + [FRACTION_PREFIX + c["name"] for c in self.session.classes]
        with QSignalBlocker(self.combo):
            self.combo.clear()
            self.combo.addItems(choices)
            self.combo.setCurrentIndex(max(choices.index(current), 0) if current in choices else 0)
        self.refresh()

    def _fractions(self) -> pd.DataFrame | None:
        cells, predictions = self.session.cells, self.session.predictions
        if cells is None or predictions is None or predictions.empty:
            return None
        table = cells[[CROP_INDEX, "well"]].merge(predictions[[CROP_INDEX, "pred_class"]], on=CROP_INDEX)
        names = [c["name"] for c in self.session.classes]
        return class_fractions(table, names) if len(table) else None

    def refresh(self, *_) -> None:
        """Draw the wells as chosen."""
        view = self.combo.currentText()
        fractions = self._fractions() if view != CLASSES_VIEW else None
        if fractions is None:
            self.plate_map.set_well_fractions(None)
        elif view == PIE_VIEW:
            self.plate_map.set_well_fractions(well_fraction_colours(fractions, self.session.classes), mode="pie")
        else:
            only = view.removeprefix(FRACTION_PREFIX)
            self.plate_map.set_well_fractions(
                well_fraction_colours(fractions, self.session.classes, only=only), mode="heat")
