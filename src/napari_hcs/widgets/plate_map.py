"""The plate map: a painted grid of wells that scales from 6 to 1536 wells.

:class:`PlateMap` draws every well of the layout in one ``paintEvent`` (no
widget per well): wells without images as empty outlines, wells with images
filled grey or with the colour of their class, and the current well framed.
After a plate-wide prediction, :meth:`PlateMap.set_well_fractions` shows the
predicted class fractions instead: a pie per well, or one class's fraction as
colour intensity (a heat map). Clicking a well emits
:attr:`PlateMap.well_clicked`. Keys are left to the parent widget, which
decides what they mean.

The small pure functions here (:func:`wells_between`, :func:`step_well`) are
the plate-map geometry the widget relies on; they import nothing from Qt.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPalette, QPen
from qtpy.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..plate import row_label, well_name, well_position

__all__ = ["FRACTION_MODES", "PlateMap", "step_well", "wells_between"]

#: Fill of a well that has images but no class.
UNLABELLED_FILL = "#7f7f7f"
#: Frame of the current well.
CURRENT_FRAME = "#ffffff"
#: How :meth:`PlateMap.set_well_fractions` draws fractions: a pie per well, or a heat map.
FRACTION_MODES = ("pie", "heat")
#: Steps of colour intensity of the heat map (wells of a step are painted together).
_HEAT_STEPS = 64
_MIN_CELL = 5.0
_PADDING = 2.0


def wells_between(wells: list[str], start: str, end: str) -> list[str]:
    """Return the wells from ``start`` to ``end`` inclusive, in row-major order.

    Parameters
    ----------
    wells : list of str
        Canonical well names with images (any order).
    start, end : str
        Ends of the range, in either order; each must be in ``wells``.

    Examples
    --------
    >>> wells_between(["A01", "A02", "B01", "B02"], "B01", "A02")
    ['A02', 'B01']
    """
    ordered = sorted(wells, key=well_position)
    first, last = sorted((ordered.index(start), ordered.index(end)))
    return ordered[first : last + 1]


def step_well(wells: list[str], current: str | None, direction: str) -> str | None:
    """Return the well reached from ``current`` by an arrow key.

    Left and right move to the previous or next well with images in row-major
    order (wrapping to the neighbouring row); up and down move to the nearest
    well with images in the same column. Wells without images are skipped.

    Parameters
    ----------
    wells : list of str
        Canonical well names with images.
    current : str or None
        The current well; None starts at the first well.
    direction : {"left", "right", "up", "down"}

    Returns
    -------
    str or None
        The new well; ``current`` when there is none in that direction, None
        when ``wells`` is empty.

    Examples
    --------
    >>> step_well(["B02", "B04", "C02"], "B02", "right"), step_well(["B02", "B04", "C02"], "B02", "down")
    ('B04', 'C02')
    """
    ordered = sorted(wells, key=well_position)
    if not ordered:
        return None
    if current not in ordered:
        return ordered[0]
    index = ordered.index(current)
    if direction in ("left", "right"):
        index += 1 if direction == "right" else -1
        return ordered[index] if 0 <= index < len(ordered) else current
    if direction not in ("up", "down"):
        raise ValueError(f"Unknown direction {direction!r}: expected left, right, up or down.")
    row, column = well_position(current)
    same_column = [w for w in ordered if well_position(w)[1] == column]
    if direction == "down":
        below = [w for w in same_column if well_position(w)[0] > row]
        return below[0] if below else current
    above = [w for w in same_column if well_position(w)[0] < row]
    return above[-1] if above else current


class PlateMap(QWidget):
    """A clickable map of the wells of a plate.

    Signals
    -------
    well_clicked(str, object)
        Canonical name of the clicked well (with or without images) and the
        keyboard modifiers held during the click.
    """

    well_clicked = Signal(str, object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows, self._columns = 8, 12
        self._names = self._well_names()
        self._with_images: set[str] = set()
        self._colors: dict[str, QColor] = {}
        self._tooltips: dict[str, str] = {}
        self._current: str | None = None
        self._fractions: dict[str, list[tuple[str, float]]] | None = None
        self._fraction_mode = "pie"
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    # -- state ----------------------------------------------------------------
    def set_layout(self, rows: int, columns: int, wells_with_images: list[str]) -> None:
        """Set the plate format and which wells have images."""
        self._rows, self._columns = int(rows), int(columns)
        self._names = self._well_names()
        self._with_images = set(wells_with_images)
        self._colors = {}
        self._tooltips = {}
        self._current = None
        self._fractions = None
        self.setMinimumHeight(int(self._rows * _MIN_CELL + self._label_height() + 2 * _PADDING))
        self.updateGeometry()
        self.update()

    def set_well_colors(self, colors: dict[str, str]) -> None:
        """Set the fill colour of wells (``{well: "#rrggbb"}``); others are grey."""
        self._colors = {well: QColor(color) for well, color in colors.items()}
        self.update()

    def set_well_fractions(self, fractions: dict[str, list[tuple[str, float]]] | None, *,
                           mode: str = "pie") -> None:
        """Show per-well class fractions (after a plate-wide prediction), or None for the class colours.

        Parameters
        ----------
        fractions : dict or None
            ``{well: [(colour, fraction), ...]}``. ``"pie"``: one slice per
            class, clockwise from 12 o'clock (fractions summing to less than 1
            leave the rest empty). ``"heat"``: one ``(colour, fraction)`` per
            well, drawn as the colour at that intensity. Wells with images but
            without fractions are grey.
        mode : {"pie", "heat"}

        Raises
        ------
        ValueError
            For another mode, a colour that is not one or, in heat mode, a well
            with more than one fraction (naming the well).
        """
        if mode not in FRACTION_MODES:
            raise ValueError(f"Unknown fraction display {mode!r}: expected one of {', '.join(FRACTION_MODES)}.")
        self._fractions = None if fractions is None else {
            well: _parsed_fractions(well, parts, single=mode == "heat") for well, parts in fractions.items()
        }
        self._fraction_mode = mode
        self.update()

    @property
    def fraction_mode(self) -> str | None:
        """``"pie"`` or ``"heat"`` while fractions are shown, None while class colours are."""
        return None if self._fractions is None else self._fraction_mode

    def set_well_tooltips(self, tooltips: dict[str, str]) -> None:
        """Set the text shown when hovering a well."""
        self._tooltips = dict(tooltips)

    def set_current_well(self, well: str | None) -> None:
        """Frame ``well`` as the current well (None for no current well)."""
        self._current = well
        self.update()

    @property
    def layout_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the plate drawn."""
        return self._rows, self._columns

    @property
    def current_well(self) -> str | None:
        return self._current

    def well_color(self, well: str) -> str | None:
        """Return the ``#rrggbb`` fill of a well, or None when it has no class colour."""
        color = self._colors.get(well)
        return color.name() if color is not None else None

    # -- geometry -------------------------------------------------------------
    def _well_names(self) -> list[list[str]]:
        return [[well_name(r, c) for c in range(self._columns)] for r in range(self._rows)]

    def _label_width(self) -> float:
        return self.fontMetrics().horizontalAdvance(row_label(max(self._rows - 1, 0))) + 6.0

    def _label_height(self) -> float:
        return self.fontMetrics().height() + 2.0

    def _cell_size(self) -> float:
        width = self.width() - self._label_width() - 2 * _PADDING
        height = self.height() - self._label_height() - 2 * _PADDING
        return max(1.0, min(width / self._columns, height / self._rows))

    def _origin(self) -> QPointF:
        return QPointF(self._label_width() + _PADDING, self._label_height() + _PADDING)

    def well_rect(self, well: str) -> QRectF:
        """Return the rectangle of a well's cell in widget coordinates."""
        row, column = well_position(well)
        return self._cell_rect(row, column, self._cell_size(), self._origin())

    @staticmethod
    def _cell_rect(row: int, column: int, cell: float, origin: QPointF) -> QRectF:
        return QRectF(origin.x() + column * cell, origin.y() + row * cell, cell, cell)

    def well_at(self, point: QPointF) -> str | None:
        """Return the well under a point in widget coordinates, or None."""
        cell = self._cell_size()
        origin = self._origin()
        column = math.floor((point.x() - origin.x()) / cell)
        row = math.floor((point.y() - origin.y()) / cell)
        if 0 <= row < self._rows and 0 <= column < self._columns:
            return self._names[row][column]
        return None

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt API)
        cell = (width - self._label_width() - 2 * _PADDING) / self._columns
        return int(max(cell, _MIN_CELL) * self._rows + self._label_height() + 2 * _PADDING)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        width = int(max(24.0, 300.0 / self._columns) * self._columns + self._label_width())
        return QSize(width, self.heightForWidth(width))

    # -- painting -------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        text_color = self.palette().color(QPalette.ColorRole.WindowText)
        cell = self._cell_size()
        round_wells = cell >= 9
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, round_wells)
        self._paint_labels(painter, cell, text_color)
        outline = QColor(text_color)
        outline.setAlpha(110)
        if self.fraction_mode == "pie":
            self._paint_pies(painter, cell)
        painter.setPen(QPen(outline, 1.0))
        for fill, shapes in self._wells_by_fill(cell).items():
            painter.setBrush(QColor(fill) if fill else Qt.BrushStyle.NoBrush)
            for shape in shapes:
                if round_wells:
                    painter.drawEllipse(shape)
                else:
                    painter.drawRect(shape)
        if self._current is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setPen(QPen(QColor(CURRENT_FRAME), max(1.5, cell * 0.08)))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.well_rect(self._current).adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()

    def _wells_by_fill(self, cell: float) -> dict[str | None, list[QRectF]]:
        """Group the well shapes by fill colour (None: empty well) to paint them in batches."""
        origin = self._origin()
        inset = max(0.5, cell * 0.1)
        groups: dict[str | None, list[QRectF]] = {}
        fill_of = self._fill_function()
        for row, names in enumerate(self._names):
            for column, well in enumerate(names):
                fill = fill_of(well) if well in self._with_images else None
                rect = self._cell_rect(row, column, cell, origin)
                groups.setdefault(fill, []).append(rect.adjusted(inset, inset, -inset, -inset))
        return groups

    def _fill_function(self):
        """``well -> "#rrggbb" or None`` (None: outline only, e.g. under a pie) for wells with images."""
        mode, fractions = self.fraction_mode, self._fractions or {}
        if mode is None:
            return lambda well: self._colors[well].name() if well in self._colors else UNLABELLED_FILL
        if mode == "pie":
            return lambda well: None if well in fractions else UNLABELLED_FILL
        base = self.palette().color(QPalette.ColorRole.Base)
        return lambda well: _heat_fill(base, *fractions[well][0]) if fractions.get(well) else UNLABELLED_FILL

    def _paint_pies(self, painter: QPainter, cell: float) -> None:
        """Paint the pie slices of every well, batched by colour, under the well outlines."""
        slices: dict[str, list[tuple[QRectF, int, int]]] = {}
        inset = max(0.5, cell * 0.1)
        origin, fractions = self._origin(), self._fractions or {}
        for row, names in enumerate(self._names):
            for column, well in enumerate(names):
                parts = fractions.get(well)
                if not parts or well not in self._with_images:
                    continue
                rect = self._cell_rect(row, column, cell, origin).adjusted(inset, inset, -inset, -inset)
                start = 90 * 16
                for color, fraction in parts:
                    span = round(fraction * 360 * 16)
                    if span > 0:
                        slices.setdefault(color, []).append((rect, start, -span))
                    start -= span
        painter.setPen(Qt.PenStyle.NoPen)
        for fill, pies in slices.items():
            painter.setBrush(QColor(fill))
            for rect, start, span in pies:
                painter.drawPie(rect, start, span)

    def _paint_labels(self, painter: QPainter, cell: float, color: QColor) -> None:
        painter.setPen(color)
        metrics = self.fontMetrics()
        origin = self._origin()
        column_every = max(1, math.ceil((metrics.horizontalAdvance("48") + 4) / cell))
        row_every = max(1, math.ceil(metrics.height() / cell))
        for column in range(0, self._columns, column_every):
            rect = QRectF(origin.x() + column * cell, 0, cell, self._label_height())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(column + 1))
        for row in range(0, self._rows, row_every):
            rect = QRectF(0, origin.y() + row * cell, self._label_width() - 2, cell)
            painter.drawText(
                rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, row_label(row)
            )

    # -- interaction ----------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        well = self.well_at(_event_point(event))
        if well is not None:
            self.well_clicked.emit(well, event.modifiers())
        event.accept()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            well = self.well_at(QPointF(event.pos()))
            if well is None:
                QToolTip.hideText()
            else:
                text = self._tooltips.get(well) or (
                    well if well in self._with_images else f"{well}: no images"
                )
                QToolTip.showText(event.globalPos(), text, self)
            return True
        return super().event(event)


def _parsed_fractions(well: str, parts, *, single: bool) -> list[tuple[str, float]]:
    """``[(#rrggbb, fraction in [0, 1]), ...]`` of one well, checked."""
    parsed = []
    for color, fraction in parts:
        qcolor = QColor(str(color))
        if not qcolor.isValid():
            raise ValueError(f"Well {well}: {color!r} is not a colour; give '#rrggbb' or a colour name.")
        value = float(fraction)
        parsed.append((qcolor.name(), min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0))
    if single and len(parsed) > 1:
        raise ValueError(f"Well {well}: a heat map shows one fraction per well; got {len(parsed)}.")
    return parsed


def _heat_fill(base: QColor, color: str, fraction: float) -> str:
    """``color`` at intensity ``fraction`` over ``base`` (in :data:`_HEAT_STEPS` steps), as ``#rrggbb``."""
    weight = round(fraction * _HEAT_STEPS) / _HEAT_STEPS
    mixed = [round(b + (c - b) * weight) for b, c in zip(base.getRgb()[:3], QColor(color).getRgb()[:3])]
    return QColor(*mixed).name()


def _event_point(event) -> QPointF:
    if hasattr(event, "position"):
        return event.position()
    return QPointF(event.pos())
