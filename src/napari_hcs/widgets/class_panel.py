"""The "Well classes" box: the class list of the session, and how a click labels wells."""

from __future__ import annotations

from qtpy.QtCore import QSignalBlocker, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QColorDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from ..project.annotations import well_class_counts
from ..viewer.session import Session

__all__ = ["ASSIGN_MODE", "ERASE_MODE", "VIEW_MODE", "ClassPanel"]

VIEW_MODE, ASSIGN_MODE, ERASE_MODE = "view", "assign", "erase"


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ClassPanel(QGroupBox):
    """Class list with Add / Rename / Colour / Remove, and the Assign / Eraser modes.

    Signals
    -------
    mode_changed(str)
        ``"view"``, ``"assign"`` or ``"erase"``.
    status(str)
        A message for the user.
    """

    mode_changed = Signal(str)
    status = Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__("Well classes", parent)
        self.session = session
        self.mode = VIEW_MODE
        self._build()
        session.classes_changed.connect(self.refresh)
        session.annotations_changed.connect(self.refresh)
        session.plate_changed.connect(self.refresh)

    def _build(self) -> None:
        column = QVBoxLayout(self)
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(96)
        self.class_list.currentRowChanged.connect(self._on_row_changed)
        self.class_list.itemDoubleClicked.connect(self._on_rename_clicked)
        column.addWidget(self.class_list)
        buttons = QHBoxLayout()
        for text, slot in (("Add", self._on_add_clicked), ("Rename", self._on_rename_clicked),
                           ("Colour", self._on_color_clicked), ("Remove", self._on_remove_clicked)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        column.addLayout(buttons)
        modes = QHBoxLayout()
        self.assign_button = QPushButton("Assign class")
        self.assign_button.setCheckable(True)
        self.assign_button.setToolTip(
            "Click wells to give them the selected class; shift-click for a range (1-9 pick a class)"
        )
        self.assign_button.toggled.connect(self._on_assign_toggled)
        self.erase_button = QPushButton("Eraser")
        self.erase_button.setCheckable(True)
        self.erase_button.setToolTip("Click wells to clear their class; shift-click for a range")
        self.erase_button.toggled.connect(self._on_erase_toggled)
        modes.addWidget(self.assign_button)
        modes.addWidget(self.erase_button)
        column.addLayout(modes)

    # -- state --------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Set what a click on a well does: ``"view"``, ``"assign"`` or ``"erase"``."""
        if mode not in (VIEW_MODE, ASSIGN_MODE, ERASE_MODE):
            raise ValueError(f"Unknown mode {mode!r}: expected view, assign or erase.")
        self.mode = mode
        for button, its_mode in ((self.assign_button, ASSIGN_MODE), (self.erase_button, ERASE_MODE)):
            with QSignalBlocker(button):
                button.setChecked(mode == its_mode)
        self.mode_changed.emit(mode)

    def select_class(self, name: str | None) -> None:
        """Select a class and switch to assign mode (None: no class, view mode)."""
        self.session.select_class(name)
        with QSignalBlocker(self.class_list):
            self.class_list.setCurrentRow(self._row(name))
        self.set_mode(VIEW_MODE if name is None else ASSIGN_MODE)

    def refresh(self, *_) -> None:
        """Redraw the class list with each class's well count, keeping the selection."""
        counts = well_class_counts(self.session.plate.annotations) if self.session.plate else {}
        with QSignalBlocker(self.class_list):
            self.class_list.clear()
            for index, entry in enumerate(self.session.classes):
                count = counts.get(entry["name"], 0)
                text = f"{index + 1}. {entry['name']} ({count} well{'' if count == 1 else 's'})"
                self.class_list.addItem(QListWidgetItem(_swatch(entry["color"]), text))
            self.class_list.setCurrentRow(self._row(self.session.selected_class))

    def _row(self, name: str | None) -> int:
        names = [c["name"] for c in self.session.classes]
        return names.index(name) if name in names else -1

    # -- Qt events ------------------------------------------------------------------
    def _on_row_changed(self, row: int) -> None:
        classes = self.session.classes
        if 0 <= row < len(classes):
            self.session.select_class(classes[row]["name"])
            self.set_mode(ASSIGN_MODE)

    def _on_assign_toggled(self, checked: bool) -> None:
        self.set_mode(ASSIGN_MODE if checked else VIEW_MODE)
        if checked and self.session.selected_class is None and self.session.classes:
            self.class_list.setCurrentRow(0)

    def _on_erase_toggled(self, checked: bool) -> None:
        self.set_mode(ERASE_MODE if checked else VIEW_MODE)

    def _on_add_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Class name:")
        if ok and name.strip():
            try:
                self.session.add_class(name)
            except ValueError as error:
                self.status.emit(str(error))
            else:
                self.select_class(name.strip())

    def _on_rename_clicked(self, *_) -> None:
        old = self._selected_or_say("rename")
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old)
        if ok:
            try:
                self.session.rename_class(old, new)
            except ValueError as error:
                self.status.emit(str(error))

    def _on_color_clicked(self) -> None:
        name = self._selected_or_say("colour")
        if name is None:
            return
        current = QColor(next(c["color"] for c in self.session.classes if c["name"] == name))
        color = QColorDialog.getColor(current, self, f"Colour of {name}")
        if color.isValid():
            self.session.set_class_color(name, color.name())

    def _on_remove_clicked(self) -> None:
        name = self._selected_or_say("remove")
        if name is None:
            return
        answer = QMessageBox.question(self, "Remove class", f"Remove class {name!r} and clear it from its wells?")
        if answer == QMessageBox.StandardButton.Yes:
            self.select_class(None)
            wells = self.session.remove_class(name)
            self.status.emit(f"Removed class {name!r} ({len(wells)} well(s) cleared).")

    def _selected_or_say(self, action: str) -> str | None:
        name = self.session.selected_class
        if name is None:
            self.status.emit(f"Select the class to {action}.")
        return name
