"""A clickable confusion matrix: rows are the true classes, columns the predicted ones.

:class:`ConfusionView` shows the counts of
:func:`napari_hcs.classify.confusion_counts` in a read-only table; the diagonal
(right) is tinted green, mistakes red by their share of the row. Clicking a
count emits ``cell_clicked(true_class, predicted_class)``.
"""

from __future__ import annotations

import pandas as pd
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem

__all__ = ["ConfusionView"]

RIGHT, WRONG = QColor(0, 158, 115), QColor(213, 94, 0)
#: Side of a count cell (pixels) and the most the table may grow.
CELL_HEIGHT = 26
MAX_HEIGHT = 240


def _tint(color: QColor, share: float) -> QBrush:
    """``color`` with an opacity that grows with ``share`` (0..1)."""
    tinted = QColor(color)
    tinted.setAlpha(int(35 + 170 * max(0.0, min(1.0, share))))
    return QBrush(tinted)


class ConfusionView(QTableWidget):
    """Counts of cells by true class (rows) and predicted class (columns).

    Signals
    -------
    cell_clicked(str, str)
        ``(true class, predicted class)`` of the count clicked.
    """

    cell_clicked = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts = pd.DataFrame()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(CELL_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Rows: true class; columns: predicted class. Click a count to see those cells.")
        self.cellClicked.connect(self._clicked)
        self.set_counts(None)

    def set_counts(self, counts: pd.DataFrame | None) -> None:
        """Show a true x predicted count table (None or empty: nothing)."""
        self.counts = pd.DataFrame() if counts is None else counts
        rows, columns = list(self.counts.index), list(self.counts.columns)
        self.clear()
        self.setRowCount(len(rows))
        self.setColumnCount(len(columns))
        self.setVerticalHeaderLabels([f"{name} (true)" for name in rows])
        self.setHorizontalHeaderLabels([f"{name}" for name in columns])
        for r, true in enumerate(rows):
            total = max(int(self.counts.loc[true].sum()), 1)
            for c, pred in enumerate(columns):
                count = int(self.counts.loc[true, pred])
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(_tint(RIGHT if true == pred else WRONG, count / total))
                item.setToolTip(f"{count} cells of class {true!r} predicted as {pred!r}")
                self.setItem(r, c, item)
        header = self.horizontalHeader().sizeHint().height() if columns else 0
        self.setFixedHeight(min(MAX_HEIGHT, header + CELL_HEIGHT * max(len(rows), 1) + 2 * self.frameWidth()))

    def count(self, true_class: str, pred_class: str) -> int:
        """The count shown for a true and a predicted class."""
        return int(self.counts.loc[true_class, pred_class])

    def cell_rect(self, true_class: str, pred_class: str):
        """Where a count is drawn, in viewport coordinates (for clicks in tests)."""
        row = list(self.counts.index).index(true_class)
        column = list(self.counts.columns).index(pred_class)
        return self.visualItemRect(self.item(row, column))

    def _clicked(self, row: int, column: int) -> None:
        self.cell_clicked.emit(str(self.counts.index[row]), str(self.counts.columns[column]))
