"""The "Plate map" dock widget: open a plate, browse its wells and sites, label wells.

The widget is thin. What the user has open and chosen is the viewer's shared
:class:`~napari_hcs.viewer.session.Session`; reading sites into layers is
:class:`~napari_hcs.widgets.site_display.SiteDisplay`; the labelling rules are
:mod:`napari_hcs.project.annotations`; the map is
:class:`~napari_hcs.widgets.plate_map.PlateMap` and the class list
:class:`~napari_hcs.widgets.class_panel.ClassPanel`.
"""

from __future__ import annotations

import os

from qtpy.QtCore import QSignalBlocker, Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..io import PRESETS
from ..plate import Plate, PlateError, Site
from ..project import Project
from ..project.annotations import well_colors
from .class_panel import ASSIGN_MODE, VIEW_MODE, ClassPanel
from .plate_colouring import WellColouring
from .plate_map import PlateMap, step_well, wells_between
from .site_display import shared_session, site_display

__all__ = ["PlateWidget", "site_label", "well_tooltips"]

AUTO_PATTERN = "auto"

_ARROW_KEYS = {Qt.Key.Key_Left: "left", Qt.Key.Key_Right: "right", Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down"}
_CLASS_KEYS = {getattr(Qt.Key, f"Key_{i}"): i - 1 for i in range(1, 10)}


def well_tooltips(plate: Plate) -> dict[str, str]:
    """Return a hover text per well with images: its name, site count and annotations."""
    tips = {}
    for well, sites in plate.sites.items():
        lines = [f"{well}: {len(sites)} site(s)"]
        lines += [f"{key}: {value}" for key, value in plate.well_annotations(well).items()]
        tips[well] = "\n".join(lines)
    return tips


def site_label(plate: Plate, site: Site) -> str:
    """Return the text naming a site in the site selector, e.g. ``field 0, t 2``."""
    parts = [f"field {site.field}"]
    if len(plate.timepoints) > 1 or site.timepoint:
        parts.append(f"t {site.timepoint}")
    return ", ".join(parts)


def _has_shift(modifiers) -> bool:
    return bool(Qt.KeyboardModifier(modifiers) & Qt.KeyboardModifier.ShiftModifier)


class PlateWidget(QWidget):
    """Dock widget with the plate map, the site selector and the well classes.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose image layers show the current site.

    Signals
    -------
    site_changed(Plate, Site)
        After the layers of a new site (or a new plate) are shown.
    plate_changed(Plate)
        When another plate is set.
    annotations_changed(Plate)
        When well classes or other annotations changed (already saved).
    """

    site_changed = Signal(object, object)
    plate_changed = Signal(object)
    annotations_changed = Signal(object)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = shared_session(napari_viewer)
        self._anchor: str | None = None
        self._build()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        session = self.session
        session.plate_changed.connect(self._on_plate_changed)
        session.site_requested.connect(self._on_site_requested)
        session.site_shown.connect(self._on_site_shown)
        session.annotations_changed.connect(self._on_annotations_changed)
        session.classes_changed.connect(self._on_annotations_changed)
        session.message.connect(self._set_status)
        session.project_changed.connect(self._on_project_changed)
        if session.plate is not None:
            self._on_plate_changed(session.plate)
            if session.shown_site is not None:
                self._on_site_shown(session.shown_site)

    # -- layout of the widget -----------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_open_box())
        self.info_label = QLabel("No plate open.")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.plate_map = PlateMap(self)
        self.plate_map.well_clicked.connect(self.click_well)
        layout.addWidget(self.plate_map)
        self.well_colouring = WellColouring(self.session, self.plate_map, self)
        layout.addWidget(self.well_colouring)
        site_row = QHBoxLayout()
        self.well_label = QLabel("Well: -")
        self.site_combo = QComboBox()
        self.site_combo.setToolTip("Site of the current well (PageUp / PageDown)")
        self.site_combo.currentIndexChanged.connect(self._on_site_selected)
        site_row.addWidget(self.well_label)
        site_row.addWidget(QLabel("Site:"))
        site_row.addWidget(self.site_combo, 1)
        layout.addLayout(site_row)
        self.class_panel = ClassPanel(self.session, self)
        self.class_panel.status.connect(self._set_status)
        layout.addWidget(self.class_panel)
        layout.addWidget(self._build_layout_box())
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

    def _build_open_box(self) -> QGroupBox:
        box = QGroupBox("Plate")
        grid = QGridLayout(box)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("OME-Zarr plate, folder of TIFFs or TIFF file")
        self.path_edit.returnPressed.connect(self._on_open_clicked)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        self.pattern_combo = QComboBox()
        self.pattern_combo.setEditable(True)
        self.pattern_combo.addItems([AUTO_PATTERN, *PRESETS])
        self.pattern_combo.setToolTip(
            "File naming of a TIFF folder: a preset, 'auto' to detect it, or a regular "
            "expression with named groups (well, field, channel, timepoint)"
        )
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self._on_open_clicked)
        grid.addWidget(self.path_edit, 0, 0, 1, 2)
        grid.addWidget(browse, 0, 2)
        grid.addWidget(QLabel("Naming:"), 1, 0)
        grid.addWidget(self.pattern_combo, 1, 1)
        grid.addWidget(self.open_button, 1, 2)
        self.project_label = QLabel("Project: -")
        self.project_label.setWordWrap(True)
        project_button = QPushButton("Project folder…")
        project_button.setToolTip("Keep annotations and classes in another project folder")
        project_button.clicked.connect(self._on_project_clicked)
        grid.addWidget(self.project_label, 2, 0, 1, 2)
        grid.addWidget(project_button, 2, 2)
        return box

    def _build_layout_box(self) -> QGroupBox:
        box = QGroupBox("Layout table")
        row = QHBoxLayout(box)
        for text, tip, slot in (
            ("Load…", "Read a CSV/TSV with a well column and annotation columns", self._on_load_layout_clicked),
            ("Save…", "Write the well annotations as CSV/TSV", self._on_save_layout_clicked),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            row.addWidget(button)
        return box

    # -- public API -------------------------------------------------------------
    @property
    def plate(self) -> Plate | None:
        """The plate shown, or None."""
        return self.session.plate

    @property
    def project(self) -> Project | None:
        """The project folder where annotations and classes are saved, or None."""
        return self.session.project

    @property
    def current_site(self) -> Site | None:
        """The site selected (its layers may still be loading), or None."""
        return self.session.current_site

    @property
    def shown_site(self) -> Site | None:
        """The site whose pixels the viewer's plate layers hold, or None."""
        return self.session.shown_site

    @property
    def classes(self) -> list[dict]:
        """The class list, ``[{"name", "color"}, ...]`` (a copy)."""
        return [dict(c) for c in self.session.classes]

    @property
    def selected_class(self) -> str | None:
        """Name of the selected class, or None."""
        return self.session.selected_class

    @property
    def mode(self) -> str:
        """What a click on a well does: ``"view"``, ``"assign"`` or ``"erase"``."""
        return self.class_panel.mode

    def open_plate(self, path: str | os.PathLike, pattern: str | None = None,
                   project_dir: str | os.PathLike | None = None) -> Plate:
        """Open a plate and show its first site (PlateError, FileNotFoundError if not a plate)."""
        plate = self.session.open(path, pattern=pattern, project_dir=project_dir)
        self.pattern_combo.setCurrentText(pattern or AUTO_PATTERN)
        return plate

    def set_plate(self, plate: Plate, project_dir: str | os.PathLike | None = None) -> None:
        """Show a plate: restore its saved annotations and classes, draw the map, show a site."""
        self.session.set_plate(plate, project_dir=project_dir)

    def set_project_dir(self, folder: str | os.PathLike) -> None:
        """Keep the annotations and classes in another project folder from now on."""
        self.session.set_project_dir(folder)

    def show_well(self, well: str, site_index: int = 0) -> None:
        """Make a site of a well current and load it into the viewer (in the background).

        :attr:`site_changed` is emitted once the layers hold the site.
        """
        if self.plate is None:
            raise PlateError("No plate is open.")
        self.session.request_well(well, site_index)

    def show_site(self, site_index: int) -> None:
        """Show another site of the current well."""
        if self.current_site is None:
            raise PlateError("No well is shown.")
        self.show_well(self.current_site.well, site_index)

    def step(self, direction: str) -> None:
        """Move the current well like an arrow key: ``left``, ``right``, ``up``, ``down``."""
        if self.plate is None:
            return
        current = self.current_site.well if self.current_site else None
        target = step_well(self.plate.wells, current, direction)
        if target is not None and target != current:
            self.session.request_well(target)

    def step_site(self, delta: int) -> None:
        """Show the previous (-1) or next (+1) site of the current well, if any."""
        if self.plate is None or self.current_site is None:
            return
        sites = self.plate.sites[self.current_site.well]
        index = sites.index(self.current_site) + delta
        if 0 <= index < len(sites):
            self.show_well(self.current_site.well, index)

    def click_well(self, well: str, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
        """Act on a well as a click on the map does.

        In view mode the well is shown. In assign mode the selected class is
        given to the well, in erase mode its class is cleared; with Shift held,
        to every well with images from the last clicked well to this one
        (row-major). Annotations are saved to the project at once.
        """
        plate = self.plate
        if plate is None:
            return
        if well not in plate.sites:
            self._set_status(f"{well} has no images.")
            return
        if self.mode == VIEW_MODE:
            self.session.request_well(well)
        else:
            anchor = self._anchor if self._anchor in plate.sites else well
            wells = wells_between(plate.wells, anchor, well) if _has_shift(modifiers) else [well]
            self._label_wells(wells)
        self._anchor = well

    def set_mode(self, mode: str) -> None:
        """Set what a click on a well does: ``"view"``, ``"assign"`` or ``"erase"``."""
        self.class_panel.set_mode(mode)

    def select_class(self, name: str | None) -> None:
        """Select a class and switch to assign mode (None: no class, view mode)."""
        self.class_panel.select_class(name)

    def add_class(self, name: str, color: str | None = None) -> dict:
        """Add a class (with the next default colour when none is given) and return it."""
        return self.session.add_class(name, color)

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class, in the class list and in every well that has it."""
        self.session.rename_class(old, new)

    def remove_class(self, name: str) -> list[str]:
        """Remove a class and clear it from the wells that had it; return those wells."""
        if self.selected_class == name:
            self.select_class(None)
        return self.session.remove_class(name)

    def set_class_color(self, name: str, color: str) -> None:
        """Set the colour of a class (e.g. ``#ff0000``)."""
        self.session.set_class_color(name, color)

    def load_layout(self, path: str | os.PathLike) -> None:
        """Merge a CSV/TSV layout table into the plate's annotations and save them."""
        self.session.load_layout(path)
        self._set_status(f"Loaded layout {path}.")

    def save_layout(self, path: str | os.PathLike) -> None:
        """Write the plate's annotations to a CSV (or TSV for ``.tsv``) file."""
        self.session.save_layout(path)
        self._set_status(f"Saved layout {path}.")

    @property
    def is_loading(self) -> bool:
        """True while a site is being read in the background."""
        return site_display(self.viewer).is_loading

    # -- session events -----------------------------------------------------------
    def _on_plate_changed(self, plate: Plate) -> None:
        self._anchor = None
        self.path_edit.setText(plate.source or "")
        self._on_project_changed(self.session.project)
        self.plate_map.set_layout(plate.n_rows, plate.n_columns, plate.wells)
        self.info_label.setText(_plate_summary(plate))
        self._on_annotations_changed()
        self.plate_changed.emit(plate)

    def _on_project_changed(self, project: Project) -> None:
        self.project_label.setText(f"Project: {project.folder}")

    def _on_site_requested(self, site: Site) -> None:
        self.plate_map.set_current_well(site.well)
        self.well_label.setText(f"Well: {site.well}")
        self._fill_site_combo(site)

    def _on_site_shown(self, site: Site) -> None:
        self._on_site_requested(site)
        self.site_changed.emit(self.plate, site)

    def _on_annotations_changed(self, *_) -> None:
        plate = self.plate
        if plate is None:
            return
        self.plate_map.set_well_colors(well_colors(plate.annotations, self.session.classes))
        self.plate_map.set_well_tooltips(well_tooltips(plate))
        self.annotations_changed.emit(plate)

    def _label_wells(self, wells: list[str]) -> None:
        name = self.selected_class if self.mode == ASSIGN_MODE else None
        if self.mode == ASSIGN_MODE and name is None:
            self._set_status("Select a class first (Add one if the list is empty).")
            return
        self.session.label_wells(wells, name)
        self._set_status(f"{', '.join(wells)}: {f'class {name!r}' if name else 'no class'}.")

    def _fill_site_combo(self, site: Site) -> None:
        sites = self.plate.sites[site.well]
        with QSignalBlocker(self.site_combo):
            self.site_combo.clear()
            self.site_combo.addItems([site_label(self.plate, s) for s in sites])
            self.site_combo.setCurrentIndex(sites.index(site))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # -- Qt events ---------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        key = event.key()
        classes = self.session.classes
        if key in _ARROW_KEYS:
            self.step(_ARROW_KEYS[key])
        elif key in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            self.step_site(-1 if key == Qt.Key.Key_PageUp else 1)
        elif key == Qt.Key.Key_Escape:
            self.set_mode(VIEW_MODE)
        elif key in _CLASS_KEYS and _CLASS_KEYS[key] < len(classes):
            self.select_class(classes[_CLASS_KEYS[key]]["name"])
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def _on_site_selected(self, index: int) -> None:
        if self.current_site is not None and index >= 0:
            self.show_well(self.current_site.well, index)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open plate folder", self.path_edit.text())
        if folder:
            self.path_edit.setText(folder)
            self._on_open_clicked()

    def _on_open_clicked(self) -> None:
        path = self.path_edit.text().strip()
        if not path:
            self._set_status("Type or browse to a plate first.")
            return
        pattern = self.pattern_combo.currentText().strip()
        try:
            self.open_plate(path, pattern=None if pattern in ("", AUTO_PATTERN) else pattern)
        except (PlateError, OSError) as error:
            self._set_status(f"Could not open {path}: {error}")

    def _on_project_clicked(self) -> None:
        if self.plate is None:
            self._set_status("Open a plate first.")
            return
        start = str(self.project.folder) if self.project else ""
        folder = QFileDialog.getExistingDirectory(self, "Project folder", start)
        if folder:
            self.set_project_dir(folder)

    def _on_load_layout_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load layout table", "", "Layout tables (*.csv *.tsv *.txt);;All files (*)"
        )
        if path:
            try:
                self.load_layout(path)
            except (PlateError, OSError) as error:
                self._set_status(f"Could not load {path}: {error}")

    def _on_save_layout_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save layout table", "layout.csv", "CSV (*.csv);;TSV (*.tsv)")
        if path:
            try:
                self.save_layout(path)
            except OSError as error:
                self._set_status(f"Could not save {path}: {error}")


def _plate_summary(plate: Plate) -> str:
    rows, columns = plate.layout
    text = (
        f"{plate.name}: {len(plate.wells)} wells with images of {rows * columns} "
        f"({rows}x{columns}), {plate.n_sites()} sites, channels {', '.join(plate.channels)}"
    )
    if plate.skipped:
        text += f"; {len(plate.skipped)} item(s) skipped (e.g. {plate.skipped[0]})"
    return text
