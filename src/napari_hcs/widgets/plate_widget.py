"""The "Plate map" dock widget: open a plate, browse its wells and sites, label wells.

The widget is thin: reading a site into layers is :mod:`napari_hcs.viewer.layers`,
plates and layout tables are :mod:`napari_hcs.io`, persistence is
:class:`napari_hcs.project.folder.Project`, and the map is
:class:`~napari_hcs.widgets.plate_map.PlateMap`. The small pure functions at the
top of this module hold the well-labelling rules.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QColorDialog,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..io import PRESETS, read_layout_table, write_layout_table
from ..io import open_plate as open_plate_source
from ..viewer.layers import META_PLATE, META_SITE, apply_layer_data, plate_layers, site_layer_data
from ..plate import Plate, PlateError, Site
from ..project.folder import DEFAULT_CLASS_COLORS, LABEL_COLUMN, Project, default_project_dir
from .plate_map import PlateMap, step_well, wells_between

__all__ = [
    "PlateWidget",
    "merge_classes",
    "next_class_color",
    "project_folder_for",
    "rename_class_in_annotations",
    "set_well_class",
    "site_label",
    "well_colors",
]

AUTO_PATTERN = "auto"
VIEW_MODE, ASSIGN_MODE, ERASE_MODE = "view", "assign", "erase"
#: A cleared class: NaN, which Plate.well_annotations and the layout table treat as empty.
_NO_CLASS = float("nan")

_ARROW_KEYS = {
    Qt.Key.Key_Left: "left",
    Qt.Key.Key_Right: "right",
    Qt.Key.Key_Up: "up",
    Qt.Key.Key_Down: "down",
}
_CLASS_KEYS = {getattr(Qt.Key, f"Key_{i}"): i - 1 for i in range(1, 10)}


# -- pure helpers -------------------------------------------------------------


def next_class_color(classes: list[dict]) -> str:
    """Return the first default class colour not used yet, as ``#rrggbb`` (cycling when all are)."""
    used = {str(c.get("color", "")).lower() for c in classes}
    for color in DEFAULT_CLASS_COLORS:
        if color.lower() not in used:
            return color.lower()
    return DEFAULT_CLASS_COLORS[len(classes) % len(DEFAULT_CLASS_COLORS)].lower()


def merge_classes(classes: list[dict], annotations: pd.DataFrame) -> list[dict]:
    """Return the class list plus any class named in the annotations but not listed.

    Examples
    --------
    >>> table = pd.DataFrame({"class": ["a", "b", None]}, index=["A01", "A02", "A03"])
    >>> [c["name"] for c in merge_classes([{"name": "b", "color": "#000000"}], table)]
    ['b', 'a']
    """
    merged = [dict(c) for c in classes]
    if LABEL_COLUMN not in annotations.columns:
        return merged
    names = {c["name"] for c in merged}
    for value in annotations[LABEL_COLUMN].dropna():
        name = str(value)
        if name and name not in names:
            merged.append({"name": name, "color": next_class_color(merged)})
            names.add(name)
    return merged


def well_colors(annotations: pd.DataFrame, classes: list[dict]) -> dict[str, str]:
    """Return ``{well: colour}`` of every well whose class is in the class list."""
    if LABEL_COLUMN not in annotations.columns:
        return {}
    color_of = {c["name"]: c["color"] for c in classes}
    colors = {}
    for well, value in annotations[LABEL_COLUMN].dropna().items():
        if str(value) in color_of:
            colors[well] = color_of[str(value)]
    return colors


def well_tooltips(plate: Plate) -> dict[str, str]:
    """Return a hover text per well with images: its name, site count and annotations."""
    tips = {}
    for well, sites in plate.sites.items():
        lines = [f"{well}: {len(sites)} site(s)"]
        lines += [f"{key}: {value}" for key, value in plate.well_annotations(well).items()]
        tips[well] = "\n".join(lines)
    return tips


def set_well_class(plate: Plate, wells: list[str], name: str | None) -> None:
    """Give wells a class (``name``), or clear their class when ``name`` is None."""
    if name is not None:
        for well in wells:
            plate.annotate(well, class_=name)
        return
    if LABEL_COLUMN not in plate.annotations.columns:
        return
    present = [w for w in wells if w in plate.annotations.index]
    if present:
        plate.annotations.loc[present, LABEL_COLUMN] = _NO_CLASS


def rename_class_in_annotations(plate: Plate, old: str, new: str | None) -> list[str]:
    """Rename a class in the plate's annotations (None clears it); return the wells changed."""
    if LABEL_COLUMN not in plate.annotations.columns:
        return []
    column = plate.annotations[LABEL_COLUMN]
    wells = list(column.index[column.astype("string") == old])
    if wells:
        plate.annotations.loc[wells, LABEL_COLUMN] = new if new is not None else _NO_CLASS
    return wells


def site_label(plate: Plate, site: Site) -> str:
    """Return the text naming a site in the site selector, e.g. ``field 0, t 2``."""
    parts = [f"field {site.field}"]
    if len(plate.timepoints) > 1 or site.timepoint:
        parts.append(f"t {site.timepoint}")
    return ", ".join(parts)


def project_folder_for(plate: Plate, project_dir: str | os.PathLike | None = None) -> Path:
    """Return the project folder of a plate: ``project_dir`` or the plate's default."""
    if project_dir is not None:
        return Path(project_dir)
    if plate.source:
        return default_project_dir(plate.source)
    return Path.home() / ".napari-hcs" / "projects" / f"{plate.name}.napari-hcs"


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


def _has_shift(modifiers) -> bool:
    return bool(Qt.KeyboardModifier(modifiers) & Qt.KeyboardModifier.ShiftModifier)


# -- the widget ---------------------------------------------------------------


class PlateWidget(QWidget):
    """Dock widget with the plate map, the site selector and the well classes.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose Image layers show the current site.

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
        self._plate: Plate | None = None
        self._project: Project | None = None
        self._classes: list[dict] = []
        self._current: Site | None = None
        self._shown: Site | None = None
        self._wanted: Site | None = None
        self._loading: Site | None = None
        self._failed: Site | None = None
        self._worker = None
        self._anchor: str | None = None
        self._mode = VIEW_MODE
        self._adopting: Plate | None = None
        self._build()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        for layer in self.viewer.layers:
            if isinstance(layer.metadata.get(META_PLATE), Plate):
                self._queue_adoption(layer.metadata[META_PLATE])
                break

    # -- layout of the widget ---------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_open_box())
        self.info_label = QLabel("No plate open.")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.plate_map = PlateMap(self)
        self.plate_map.well_clicked.connect(self.click_well)
        layout.addWidget(self.plate_map)
        site_row = QHBoxLayout()
        self.well_label = QLabel("Well: -")
        self.site_combo = QComboBox()
        self.site_combo.setToolTip("Site of the current well (PageUp / PageDown)")
        self.site_combo.currentIndexChanged.connect(self._on_site_selected)
        site_row.addWidget(self.well_label)
        site_row.addWidget(QLabel("Site:"))
        site_row.addWidget(self.site_combo, 1)
        layout.addLayout(site_row)
        layout.addWidget(self._build_class_box())
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

    def _build_class_box(self) -> QGroupBox:
        box = QGroupBox("Well classes")
        column = QVBoxLayout(box)
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(120)
        self.class_list.currentRowChanged.connect(self._on_class_row_changed)
        self.class_list.itemDoubleClicked.connect(self._on_rename_clicked)
        column.addWidget(self.class_list)
        buttons = QHBoxLayout()
        for text, slot in (
            ("Add", self._on_add_clicked),
            ("Rename", self._on_rename_clicked),
            ("Colour", self._on_color_clicked),
            ("Remove", self._on_remove_clicked),
        ):
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
        return box

    def _build_layout_box(self) -> QGroupBox:
        box = QGroupBox("Layout table")
        row = QHBoxLayout(box)
        load = QPushButton("Load…")
        load.setToolTip("Read a CSV/TSV with a well column and annotation columns")
        load.clicked.connect(self._on_load_layout_clicked)
        save = QPushButton("Save…")
        save.setToolTip("Write the well annotations as CSV/TSV")
        save.clicked.connect(self._on_save_layout_clicked)
        row.addWidget(load)
        row.addWidget(save)
        return box

    # -- public API -------------------------------------------------------------
    @property
    def plate(self) -> Plate | None:
        """The plate shown, or None."""
        return self._plate

    @property
    def project(self) -> Project | None:
        """The project folder where annotations and classes are saved, or None."""
        return self._project

    @property
    def current_site(self) -> Site | None:
        """The site selected (its layers may still be loading), or None."""
        return self._current

    @property
    def shown_site(self) -> Site | None:
        """The site whose pixels the viewer's plate layers hold, or None."""
        return self._shown

    @property
    def classes(self) -> list[dict]:
        """The class list, ``[{"name", "color"}, ...]`` (a copy)."""
        return [dict(c) for c in self._classes]

    @property
    def selected_class(self) -> str | None:
        """Name of the selected class, or None."""
        row = self.class_list.currentRow()
        return self._classes[row]["name"] if 0 <= row < len(self._classes) else None

    @property
    def mode(self) -> str:
        """What a click on a well does: ``"view"``, ``"assign"`` or ``"erase"``."""
        return self._mode

    @property
    def is_loading(self) -> bool:
        """True while a site is being read in the background."""
        return self._worker is not None

    def open_plate(
        self,
        path: str | os.PathLike,
        pattern: str | None = None,
        project_dir: str | os.PathLike | None = None,
    ) -> Plate:
        """Open a plate and show its first site.

        Parameters
        ----------
        path : path
            OME-Zarr plate, folder of TIFFs or TIFF file.
        pattern : str, optional
            TIFF folder naming: a preset or a regular expression; detected when None.
        project_dir : path, optional
            Project folder; by default ``<plate>.napari-hcs`` beside the plate.

        Raises
        ------
        PlateError, FileNotFoundError
            When the path is not a plate.
        """
        plate = open_plate_source(path, pattern=pattern)
        self.set_plate(plate, project_dir=project_dir)
        self.pattern_combo.setCurrentText(pattern or AUTO_PATTERN)
        if pattern:
            self._project.update_meta(pattern=pattern)
        return plate

    def set_plate(self, plate: Plate, project_dir: str | os.PathLike | None = None) -> None:
        """Show a plate: restore its saved annotations and classes, draw the map, show a site.

        When the viewer already holds layers of this plate (opened with the
        reader), their site becomes the current site; otherwise the first site
        of the first well is loaded.
        """
        self._plate = plate
        self._adopting = None
        self._anchor = None
        self._current = self._shown = self._wanted = self._failed = None
        self._open_project(Project(project_folder_for(plate, project_dir)), keep_classes=False)
        for layer in plate_layers(self.viewer):
            if layer.metadata.get(META_PLATE) is not plate:
                self.viewer.layers.remove(layer)
        self.path_edit.setText(plate.source or "")
        self.plate_map.set_layout(plate.n_rows, plate.n_columns, plate.wells)
        self.info_label.setText(self._plate_summary(plate))
        self._refresh_annotations()
        self.plate_changed.emit(plate)
        shown = self._site_in_viewer(plate)
        if shown is not None:
            self._current = shown
            self._mark_shown(shown)
        else:
            self.show_well(plate.wells[0], 0)

    def set_project_dir(self, folder: str | os.PathLike) -> None:
        """Keep the annotations and classes in another project folder from now on.

        Annotations and classes saved in that folder are merged with the current
        ones, then everything is saved there.
        """
        if self._plate is None:
            raise PlateError("Open a plate before choosing its project folder.")
        self._open_project(Project(folder), keep_classes=True)
        self._refresh_annotations()

    def show_well(self, well: str, site_index: int = 0) -> None:
        """Make a site of a well current and load it into the viewer (in the background).

        :attr:`site_changed` is emitted once the layers hold the site.

        Raises
        ------
        PlateError
            If the well is not on the plate or has no such site.
        """
        if self._plate is None:
            raise PlateError("No plate is open.")
        site = self._plate.site(well, site_index)
        self._current = site
        self.plate_map.set_current_well(site.well)
        self.well_label.setText(f"Well: {site.well}")
        self._fill_site_combo(site)
        self._request_site(site)

    def show_site(self, site_index: int) -> None:
        """Show another site of the current well."""
        if self._current is None:
            raise PlateError("No well is shown.")
        self.show_well(self._current.well, site_index)

    def step(self, direction: str) -> None:
        """Move the current well like an arrow key: ``left``, ``right``, ``up``, ``down``."""
        if self._plate is None:
            return
        current = self._current.well if self._current else None
        target = step_well(self._plate.wells, current, direction)
        if target is not None and target != current:
            self.show_well(target, self._site_index_in(target))

    def step_site(self, delta: int) -> None:
        """Show the previous (-1) or next (+1) site of the current well, if any."""
        if self._plate is None or self._current is None:
            return
        sites = self._plate.sites[self._current.well]
        index = sites.index(self._current) + delta
        if 0 <= index < len(sites):
            self.show_well(self._current.well, index)

    def click_well(self, well: str, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
        """Act on a well as a click on the map does.

        In view mode the well is shown. In assign mode the selected class is
        given to the well, in erase mode its class is cleared; with Shift held,
        to every well with images from the last clicked well to this one
        (row-major). Annotations are saved to the project at once.
        """
        if self._plate is None:
            return
        if well not in self._plate.sites:
            self._set_status(f"{well} has no images.")
            return
        if self._mode == VIEW_MODE:
            self.show_well(well, self._site_index_in(well))
        else:
            anchor = self._anchor if self._anchor in self._plate.sites else well
            wells = wells_between(self._plate.wells, anchor, well) if _has_shift(modifiers) else [well]
            self._label_wells(wells)
        self._anchor = well

    def set_mode(self, mode: str) -> None:
        """Set what a click on a well does: ``"view"``, ``"assign"`` or ``"erase"``."""
        if mode not in (VIEW_MODE, ASSIGN_MODE, ERASE_MODE):
            raise ValueError(f"Unknown mode {mode!r}: expected view, assign or erase.")
        self._mode = mode
        for button, its_mode in ((self.assign_button, ASSIGN_MODE), (self.erase_button, ERASE_MODE)):
            button.blockSignals(True)
            button.setChecked(mode == its_mode)
            button.blockSignals(False)

    def select_class(self, name: str | None) -> None:
        """Select a class and switch to assign mode (None: no class, view mode).

        Raises
        ------
        ValueError
            If no class has that name.
        """
        if name is None:
            self.class_list.setCurrentRow(-1)
            self.set_mode(VIEW_MODE)
            return
        self.class_list.setCurrentRow(self._class_row(name))
        self.set_mode(ASSIGN_MODE)

    def add_class(self, name: str, color: str | None = None) -> dict:
        """Add a class (with the next default colour when none is given) and return it."""
        name = str(name).strip()
        if not name:
            raise ValueError("A class needs a name.")
        if any(c["name"] == name for c in self._classes):
            raise ValueError(f"Class {name!r} already exists.")
        entry = {"name": name, "color": QColor(color or next_class_color(self._classes)).name()}
        self._classes.append(entry)
        self._save_classes()
        self._refresh_annotations(select=name)
        return dict(entry)

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class, in the class list and in every well that has it."""
        new = str(new).strip()
        row = self._class_row(old)
        if not new or (new != old and any(c["name"] == new for c in self._classes)):
            raise ValueError(f"Cannot rename {old!r} to {new!r}: empty or already used.")
        self._classes[row]["name"] = new
        if self._plate is not None:
            rename_class_in_annotations(self._plate, old, new)
        self._save_classes()
        self._save_annotations()
        self._refresh_annotations()

    def remove_class(self, name: str) -> list[str]:
        """Remove a class and clear it from the wells that had it; return those wells."""
        row = self._class_row(name)
        self.select_class(None)
        del self._classes[row]
        wells = rename_class_in_annotations(self._plate, name, None) if self._plate else []
        self._save_classes()
        self._save_annotations()
        self._refresh_annotations()
        return wells

    def set_class_color(self, name: str, color: str) -> None:
        """Set the colour of a class (any colour Qt understands, e.g. ``#ff0000``)."""
        self._classes[self._class_row(name)]["color"] = QColor(color).name()
        self._save_classes()
        self._refresh_annotations()

    def load_layout(self, path: str | os.PathLike) -> None:
        """Merge a CSV/TSV layout table into the plate's annotations and save them."""
        if self._plate is None:
            raise PlateError("Open a plate before loading a layout table.")
        read_layout_table(path, plate=self._plate)
        self._classes = merge_classes(self._classes, self._plate.annotations)
        self._save_classes()
        self._save_annotations()
        self._refresh_annotations()
        self._set_status(f"Loaded layout {path}.")

    def save_layout(self, path: str | os.PathLike) -> None:
        """Write the plate's annotations to a CSV (or TSV for ``.tsv``) file."""
        if self._plate is None:
            raise PlateError("Open a plate before saving its layout table.")
        write_layout_table(self._plate.annotations, path)
        self._set_status(f"Saved layout {path}.")

    # -- projects and annotations -------------------------------------------------
    def _open_project(self, project: Project, *, keep_classes: bool) -> None:
        """Make ``project`` the plate's project: apply its annotations, merge classes, save."""
        previous = self._classes if keep_classes else []
        self._project = project
        plate = self._plate
        if plate.source:
            project.update_meta(plate=str(Path(plate.source).resolve()))
        try:
            project.apply_annotations(plate)
        except (PlateError, ValueError) as error:
            self._set_status(f"Saved annotations in {project.layout_path} were not applied: {error}")
        self._classes = [dict(c) for c in project.read_classes()]
        for entry in previous:
            if all(c["name"] != entry["name"] for c in self._classes):
                self._classes.append(dict(entry))
        self._classes = merge_classes(self._classes, plate.annotations)
        self._save_classes()
        self._save_annotations()
        self.project_label.setText(f"Project: {project.folder}")
        self._refresh_class_list(select=None)

    def _label_wells(self, wells: list[str]) -> None:
        name = self.selected_class if self._mode == ASSIGN_MODE else None
        if self._mode == ASSIGN_MODE and name is None:
            self._set_status("Select a class first (Add one if the list is empty).")
            return
        set_well_class(self._plate, wells, name)
        self._save_annotations()
        self._refresh_annotations()
        action = f"class {name!r}" if name else "no class"
        self._set_status(f"{', '.join(wells)}: {action}.")

    def _save_annotations(self) -> None:
        if self._project is None or self._plate is None:
            return
        try:
            self._project.save_annotations(self._plate)
        except OSError as error:
            self._set_status(f"Could not save annotations to {self._project.layout_path}: {error}")

    def _save_classes(self) -> None:
        if self._project is None:
            return
        try:
            self._project.save_classes(self._classes)
        except OSError as error:
            self._set_status(f"Could not save classes to {self._project.classes_path}: {error}")

    def _refresh_annotations(self, select: str | None = None) -> None:
        """Redraw the well colours and the class list (keeping the selected class)."""
        self._refresh_class_list(select=select or self.selected_class)
        if self._plate is None:
            return
        self.plate_map.set_well_colors(well_colors(self._plate.annotations, self._classes))
        self.plate_map.set_well_tooltips(well_tooltips(self._plate))
        self.annotations_changed.emit(self._plate)

    def _refresh_class_list(self, select: str | None = None) -> None:
        self.class_list.blockSignals(True)
        self.class_list.clear()
        counts = {}
        if self._plate is not None and LABEL_COLUMN in self._plate.annotations.columns:
            counts = self._plate.annotations[LABEL_COLUMN].dropna().astype(str).value_counts()
        for index, entry in enumerate(self._classes):
            count = int(counts.get(entry["name"], 0))
            text = f"{index + 1}. {entry['name']} ({count} well{'' if count == 1 else 's'})"
            item = QListWidgetItem(_swatch(entry["color"]), text)
            self.class_list.addItem(item)
        names = [c["name"] for c in self._classes]
        self.class_list.setCurrentRow(names.index(select) if select in names else -1)
        self.class_list.blockSignals(False)

    def _class_row(self, name: str) -> int:
        for row, entry in enumerate(self._classes):
            if entry["name"] == name:
                return row
        known = ", ".join(c["name"] for c in self._classes) or "none"
        raise ValueError(f"No class named {name!r}; classes are: {known}.")

    # -- sites and layers ---------------------------------------------------------
    def _site_index_in(self, well: str) -> int:
        """Index of the current site's field and timepoint in another well (else 0)."""
        if self._current is None:
            return 0
        for index, site in enumerate(self._plate.sites[well]):
            if (site.field, site.timepoint) == (self._current.field, self._current.timepoint):
                return index
        return 0

    def _fill_site_combo(self, site: Site) -> None:
        sites = self._plate.sites[site.well]
        self.site_combo.blockSignals(True)
        self.site_combo.clear()
        self.site_combo.addItems([site_label(self._plate, s) for s in sites])
        self.site_combo.setCurrentIndex(sites.index(site))
        self.site_combo.blockSignals(False)

    def _request_site(self, site: Site) -> None:
        self._wanted = site
        self._failed = None
        if self._worker is None:
            self._start_loading(site)

    def _start_loading(self, site: Site) -> None:
        from napari.qt.threading import create_worker

        self._loading = site
        worker = create_worker(site_layer_data, self._plate, site, _start_thread=False)
        worker.returned.connect(self._on_site_loaded)
        worker.errored.connect(self._on_load_error)
        worker.finished.connect(self._on_load_finished)
        self._worker = worker
        self._set_status(f"Loading {site.name}…")
        worker.start()

    def _on_site_loaded(self, layer_data: list) -> None:
        metadata = layer_data[0][1]["metadata"] if layer_data else {}
        site = metadata.get(META_SITE)
        if metadata.get(META_PLATE) is not self._plate or site != self._wanted:
            return
        apply_layer_data(self.viewer, layer_data)
        self._set_status("")
        self._mark_shown(site)

    def _on_load_error(self, error: Exception) -> None:
        self._failed = self._loading
        self._set_status(f"Could not show {self._loading.name}: {error}")

    def _on_load_finished(self) -> None:
        self._worker = None
        # a site asked for while another was loading; a failed site is retried only on request
        if self._wanted not in (None, self._shown, self._failed):
            self._start_loading(self._wanted)

    def _mark_shown(self, site: Site) -> None:
        self._shown = site
        self.plate_map.set_current_well(site.well)
        self.well_label.setText(f"Well: {site.well}")
        self._fill_site_combo(site)
        self.site_changed.emit(self._plate, site)

    def _site_in_viewer(self, plate: Plate) -> Site | None:
        for layer in plate_layers(self.viewer):
            if layer.metadata.get(META_PLATE) is plate:
                return layer.metadata.get(META_SITE)
        return None

    def _on_layer_inserted(self, event) -> None:
        plate = event.value.metadata.get(META_PLATE)
        if isinstance(plate, Plate) and plate is not self._plate:
            self._queue_adoption(plate)

    def _queue_adoption(self, plate: Plate) -> None:
        # layers are still being inserted: adopt the plate once napari is done
        if self._adopting is plate:
            return
        self._adopting = plate
        QTimer.singleShot(0, self._adopt_queued_plate)

    def _adopt_queued_plate(self) -> None:
        plate = self._adopting
        if plate is None or plate is self._plate:
            return
        self.set_plate(plate)

    def _plate_summary(self, plate: Plate) -> str:
        rows, columns = plate.layout
        text = (
            f"{plate.name}: {len(plate.wells)} wells with images of {rows * columns} "
            f"({rows}x{columns}), {plate.n_sites()} sites, channels {', '.join(plate.channels)}"
        )
        if plate.skipped:
            text += f"; {len(plate.skipped)} item(s) skipped (e.g. {plate.skipped[0]})"
        return text

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # -- Qt events ---------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        key = event.key()
        if key in _ARROW_KEYS:
            self.step(_ARROW_KEYS[key])
        elif key == Qt.Key.Key_PageUp:
            self.step_site(-1)
        elif key == Qt.Key.Key_PageDown:
            self.step_site(1)
        elif key == Qt.Key.Key_Escape:
            self.set_mode(VIEW_MODE)
        elif key in _CLASS_KEYS and _CLASS_KEYS[key] < len(self._classes):
            self.select_class(self._classes[_CLASS_KEYS[key]]["name"])
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def _on_site_selected(self, index: int) -> None:
        if self._current is not None and index >= 0:
            self.show_well(self._current.well, index)

    def _on_class_row_changed(self, row: int) -> None:
        if 0 <= row < len(self._classes):
            self.set_mode(ASSIGN_MODE)

    def _on_assign_toggled(self, checked: bool) -> None:
        self.set_mode(ASSIGN_MODE if checked else VIEW_MODE)
        if checked and self.selected_class is None and self._classes:
            self.class_list.setCurrentRow(0)

    def _on_erase_toggled(self, checked: bool) -> None:
        self.set_mode(ERASE_MODE if checked else VIEW_MODE)

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
        if self._plate is None:
            self._set_status("Open a plate first.")
            return
        start = str(self._project.folder) if self._project else ""
        folder = QFileDialog.getExistingDirectory(self, "Project folder", start)
        if folder:
            self.set_project_dir(folder)

    def _on_add_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Class name:")
        if ok and name.strip():
            try:
                self.add_class(name)
            except ValueError as error:
                self._set_status(str(error))
            else:
                self.select_class(name.strip())

    def _on_rename_clicked(self, *_) -> None:
        old = self.selected_class
        if old is None:
            self._set_status("Select the class to rename.")
            return
        new, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old)
        if ok:
            try:
                self.rename_class(old, new)
            except ValueError as error:
                self._set_status(str(error))

    def _on_color_clicked(self) -> None:
        name = self.selected_class
        if name is None:
            self._set_status("Select the class to colour.")
            return
        current = QColor(self._classes[self._class_row(name)]["color"])
        color = QColorDialog.getColor(current, self, f"Colour of {name}")
        if color.isValid():
            self.set_class_color(name, color.name())

    def _on_remove_clicked(self) -> None:
        name = self.selected_class
        if name is None:
            self._set_status("Select the class to remove.")
            return
        answer = QMessageBox.question(
            self, "Remove class", f"Remove class {name!r} and clear it from its wells?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            wells = self.remove_class(name)
            self._set_status(f"Removed class {name!r} ({len(wells)} well(s) cleared).")

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
        path, _ = QFileDialog.getSaveFileName(
            self, "Save layout table", "layout.csv", "CSV (*.csv);;TSV (*.tsv)"
        )
        if path:
            try:
                self.save_layout(path)
            except OSError as error:
                self._set_status(f"Could not save {path}: {error}")
