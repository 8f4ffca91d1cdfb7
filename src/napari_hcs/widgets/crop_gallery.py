"""A gallery of single-cell crops: click one to show it in the viewer, select some to label them.

:class:`CropGallery` shows the crops of the cells it is given (a frame with a
``crop_index`` column, and optionally ``true_class``, ``pred_class`` and
``pred_confidence``), in the given order. The crops are read from the
project's crop store (only the rows shown, in sorted order; in a worker thread
when there are many) and composed with the colours and contrast limits of the
viewer's image layers, in the channel order of the crop store; without a viewer,
with the colours guessed from the channel names and robust contrast limits of
the crops shown. Clicking a crop asks the session for that cell
(:meth:`~napari_hcs.viewer.session.Session.request_cell`); "Label selected"
gives the selected cells the chosen class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from qtpy.QtCore import QSize, Qt, Signal
from qtpy.QtGui import QColor, QIcon, QImage, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..plate import Site
from ..viewer.crop_images import colormap_rgb, compose_crops
from ..viewer.layers import channel_colormap, contrast_limits
from ..vocabulary import CHANNEL_ROLE, CROP_INDEX, META_NAME, META_ROLE

__all__ = ["CropGallery", "display_settings", "read_crops"]

#: Icon side in pixels, and the most crops one gallery shows.
ICON_SIZE = 64
MAX_SHOWN = 300
#: More crops than this are read in a worker thread.
THREAD_ABOVE = 200
CROP_ROLE = Qt.ItemDataRole.UserRole
NO_CLASS = "(no class)"


def read_crops(store, crop_indices) -> np.ndarray:
    """Read the crops of ``crop_indices`` (any order) from a cell store, in that order.

    The rows are read once each, in sorted order (the fast way through the zarr chunks).
    """
    wanted = np.asarray(crop_indices, dtype=np.int64)
    if wanted.size == 0:
        return np.zeros((0, len(store.channels), store.crop_size, store.crop_size), np.float32)
    unique, inverse = np.unique(wanted, return_inverse=True)
    return np.asarray(store.crops.oindex[unique])[inverse]


def display_settings(viewer, channels: list[str], crops: np.ndarray) -> dict:
    """Colours, contrast limits and gammas to compose crops with, in ``channels`` order.

    Each channel takes the colour (the colormap's brightest colour), contrast
    limits and gamma of the viewer's image layer of that channel; a hidden
    layer's channel is left out (black). Channels without a layer, or no viewer,
    get the colour guessed from the name and robust limits of the crops themselves.

    Returns
    -------
    dict
        ``colormaps``, ``contrast_limits`` and ``gamma``: the keywords of
        :func:`~napari_hcs.viewer.crop_images.compose_crops`.
    """
    layers = {}
    if viewer is not None:
        layers = {layer.metadata.get(META_NAME): layer for layer in viewer.layers
                  if layer.metadata.get(META_ROLE) == CHANNEL_ROLE}
    colormaps, limits, gammas = [], [], []
    for index, channel in enumerate(channels):
        layer = layers.get(channel)
        if layer is not None:
            colormaps.append(colormap_rgb(layer.colormap) if layer.visible else (0.0, 0.0, 0.0))
            limits.append(tuple(float(v) for v in layer.contrast_limits))
            gammas.append(float(getattr(layer, "gamma", 1.0)))
        else:
            colormaps.append(channel_colormap(channel, index))
            limits.append(contrast_limits(crops[:, index]) if len(crops) else (0.0, 1.0))
            gammas.append(1.0)
    return {"colormaps": colormaps, "contrast_limits": limits, "gamma": gammas}


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(ICON_SIZE, ICON_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)


def _tooltip(row: dict) -> str:
    site = Site(str(row["well"]), int(row["field"]), int(row["timepoint"]))
    lines = [f"cell {int(row['label'])} of {site.name} (crop {int(row[CROP_INDEX])})"]
    for key, words in (("true_class", "true"), ("pred_class", "predicted")):
        if isinstance(row.get(key), str) and row[key]:
            lines.append(f"{words}: {row[key]}")
    if pd.notna(row.get("pred_confidence", np.nan)):
        lines.append(f"confidence: {float(row['pred_confidence']):.2f}")
    return "\n".join(lines)


class CropGallery(QWidget):
    """Crops of chosen cells, with "Label selected".

    Parameters
    ----------
    session : Session
        The viewer's session (its project's crops, its classes and cell labels).
    viewer : napari.Viewer, optional
        Whose image layers give the colours and contrast limits.

    Signals
    -------
    crops_shown(int)
        The number of crops shown, once they are read and drawn.
    crop_clicked(int)
        The crop index of the crop clicked (the session was asked for its cell).
    """

    crops_shown = Signal(int)
    crop_clicked = Signal(int)

    def __init__(self, session, viewer=None, parent=None):
        super().__init__(parent)
        self.session = session
        self.viewer = viewer
        self.cells = pd.DataFrame({CROP_INDEX: pd.Series(dtype="int64")})
        self._generation = 0
        self._worker = None
        self._build()
        session.classes_changed.connect(self._fill_classes)
        session.cell_labels_changed.connect(self._mark_labelled)
        self._fill_classes(session.classes)

    def _build(self) -> None:
        self.title = QLabel("Click a count of the confusion matrix, or ask for the most uncertain cells.")
        self.title.setWordWrap(True)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.list.setGridSize(QSize(ICON_SIZE + 8, ICON_SIZE + 8))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setMinimumHeight(2 * ICON_SIZE + 24)
        self.list.itemClicked.connect(self._clicked)
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class that 'Label selected' gives the selected cells.")
        self.label_button = QPushButton("Label selected")
        self.label_button.setToolTip("Give the selected cells this class (saved in the project at once).")
        self.label_button.clicked.connect(lambda: self.label_selected())
        row = QHBoxLayout()
        row.addWidget(self.class_combo, 1)
        row.addWidget(self.label_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)

    # -- what is shown ----------------------------------------------------------------
    def crop_indices(self) -> list[int]:
        """Crop indices shown, in gallery order."""
        return [int(self.list.item(i).data(CROP_ROLE)) for i in range(self.list.count())]

    def selected_indices(self) -> list[int]:
        """Crop indices of the selected crops, in gallery order."""
        selected = {id(item) for item in self.list.selectedItems()}
        return [int(self.list.item(i).data(CROP_ROLE)) for i in range(self.list.count())
                if id(self.list.item(i)) in selected]

    def item(self, crop_index: int) -> QListWidgetItem:
        """The gallery item of a crop (KeyError when it is not shown)."""
        for i in range(self.list.count()):
            if int(self.list.item(i).data(CROP_ROLE)) == int(crop_index):
                return self.list.item(i)
        raise KeyError(f"Crop {crop_index} is not in the gallery.")

    def item_rect(self, crop_index: int):
        """Where a crop is drawn, in the list's viewport coordinates (for clicks)."""
        return self.list.visualItemRect(self.item(crop_index))

    def show_cells(self, cells: pd.DataFrame, *, title: str = "") -> None:
        """Show the crops of ``cells`` (rows with ``crop_index``), in their order.

        At most :data:`MAX_SHOWN` are shown; the title says how many there were.
        """
        self._generation += 1
        total = len(cells)
        self.cells = cells.head(MAX_SHOWN).reset_index(drop=True)
        more = f" (the first {MAX_SHOWN} of {total})" if total > MAX_SHOWN else ""
        self.title.setText(f"{title}: {total} cells{more}" if title else f"{total} cells{more}")
        self.list.clear()
        project = self.session.project
        if self.cells.empty or project is None:
            self.crops_shown.emit(0)
            return
        indices = self.cells[CROP_INDEX].to_numpy(dtype=np.int64)
        store = project.cell_store()
        if len(indices) <= THREAD_ABOVE:
            self._show_crops(self._generation, indices, read_crops(store, indices), store.channels)
            return
        from napari.qt.threading import create_worker

        generation = self._generation
        worker = create_worker(read_crops, store, indices)
        worker.returned.connect(lambda crops: self._show_crops(generation, indices, crops, store.channels))
        worker.errored.connect(lambda error: self.title.setText(f"Crops could not be read: {error}"))
        self._worker = worker
        worker.start()

    def _show_crops(self, generation: int, indices: np.ndarray, crops: np.ndarray, channels: list[str]) -> None:
        if generation != self._generation:  # a newer request replaced this one
            return
        images = compose_crops(crops, **display_settings(self.viewer, channels, crops))
        for crop_index, image, row in zip(indices, images, self._rows(indices)):
            item = QListWidgetItem(QIcon(_pixmap(image)), "")
            item.setData(CROP_ROLE, int(crop_index))
            item.setToolTip(_tooltip(row))
            self.list.addItem(item)
        self._mark_labelled(self.session.cell_labels)
        self.crops_shown.emit(len(indices))

    def _rows(self, indices: np.ndarray) -> list[dict]:
        """Each shown cell's row: its cell-table row with the gallery frame's columns over it."""
        shown = self.cells.set_index(CROP_INDEX)
        table = self.session.cells
        if table is not None:
            table = table.set_index(CROP_INDEX)
            extra = [c for c in ("well", "field", "timepoint", "label") if c not in shown.columns]
            shown = shown.join(table[extra], how="left")
        return [{CROP_INDEX: int(i), **shown.loc[int(i)].to_dict()} for i in indices]

    # -- clicks and labels ----------------------------------------------------------------
    def _clicked(self, item: QListWidgetItem) -> None:
        if QApplication.keyboardModifiers() != Qt.KeyboardModifier.NoModifier:
            return  # ctrl/shift-click selects; a plain click shows the cell
        crop_index = int(item.data(CROP_ROLE))
        try:
            self.session.request_cell(crop_index)
        except ValueError as error:
            self.title.setText(str(error))
            return
        self.crop_clicked.emit(crop_index)

    def _fill_classes(self, classes: list[dict]) -> None:
        current = self.class_combo.currentText()
        self.class_combo.clear()
        for c in classes:
            pixmap = QPixmap(12, 12)
            pixmap.fill(QColor(c["color"]))
            self.class_combo.addItem(QIcon(pixmap), c["name"])
        self.class_combo.addItem(NO_CLASS)
        if self.class_combo.findText(current) >= 0:
            self.class_combo.setCurrentText(current)

    def label_selected(self, name: str | None = None) -> bool:
        """Give the selected cells the class ``name`` (default: the class chosen).

        Returns False, saying why in the title, when nothing is selected or the
        labels could not be saved.
        """
        name = self.class_combo.currentText() if name is None else name
        name = None if name in (NO_CLASS, "") else name
        indices = self.selected_indices()
        if not indices:
            self.title.setText("Select crops first (ctrl- or shift-click to select several).")
            return False
        try:
            saved = self.session.label_cells(indices, name)
        except ValueError as error:
            self.title.setText(str(error))
            return False
        if saved is not False:
            words = f"class {name!r}" if name else "no class"
            self.title.setText(f"{len(indices)} cells now have {words} (saved).")
        return saved is not False

    def _mark_labelled(self, labels: pd.DataFrame) -> None:
        """Tint the crops of cells that a user labelled in their class colour."""
        colors = {c["name"]: c["color"] for c in self.session.classes}
        given = dict(zip(labels[CROP_INDEX].astype(int), labels["class"])) if labels is not None else {}
        for i in range(self.list.count()):
            item = self.list.item(i)
            name = given.get(int(item.data(CROP_ROLE)))
            color = QColor(colors.get(name, "#888888")) if name else None
            if color is not None:
                color.setAlpha(200)
            item.setBackground(color if color is not None else QColor(0, 0, 0, 0))
