"""The session every widget of one viewer shares: plate, project, site, classes.

A :class:`Session` is plain Python (no Qt, no napari): it holds what the user
has open and chosen, saves what must be kept in the project folder at once,
and says what changed through `psygnal <https://psygnal.readthedocs.io>`_
signals. Widgets read it and call its methods; none of them looks for another
widget or for layer names.

Sites move in two steps. :meth:`Session.request_site` says which site the user
wants (``site_requested``); whoever loads pixels into the viewer calls
:meth:`Session.mark_shown` once the image layers hold that site
(``site_shown``). Anything drawn over the image (labels, predictions) follows
``site_shown``, so it always belongs to the site the image layers show.

Examples
--------
>>> session = Session()
>>> shown = []
>>> _ = session.site_shown.connect(shown.append)
>>> session.set_plate(plate, project_dir=tmp_path / "screen.napari-hcs")
>>> session.current_site
Site(well='B02', field=0, timepoint=1)
>>> session.mark_shown(session.current_site)
>>> shown
[Site(well='B02', field=0, timepoint=1)]
>>> session.add_class("stimulated")
{'name': 'stimulated', 'color': '#e69f00'}
>>> session.label_wells(["B04"], "stimulated")
>>> plate.well_annotations("B04")["class"]
'stimulated'
"""

from __future__ import annotations

import os

from psygnal import Signal

from ..io import open_plate, read_layout_table, write_layout_table
from ..plate import Plate, PlateError, Site
from ..images.corrected_loader import with_project_illumination
from ..project import Project, default_project_dir
from ..project import annotations as rules
from .session_cells import CellSession
from .session_embeddings import EmbeddingSession

__all__ = ["Session"]


class Session(CellSession, EmbeddingSession):
    """What the user has open and chosen in one viewer, with change signals.

    Signals
    -------
    plate_changed(Plate)
        Another plate is open (its project is open too).
    project_changed(Project)
        Annotations and classes are kept in another project folder from now on.
    site_requested(Site)
        The user asked to see a site; its pixels are not shown yet.
    site_shown(Site)
        The image layers now hold this site.
    annotations_changed(Plate)
        Well classes or other well annotations changed (already saved).
    classes_changed(list)
        The class list changed (already saved).
    selection_changed(list)
        The selected wells changed.
    message(str)
        Something the user should read (a file that could not be saved, ...).
    cells_changed(DataFrame or None)
        The project's cell table was (re)read.
    cell_labels_changed(DataFrame)
        Cells were given a class or cleared (already saved).
    models_changed(list)
        The names of the project's models.
    model_selected(str or None)
        The model that predicts and is inspected.
    predictions_changed(DataFrame or None)
        The project's predictions (already saved).
    cell_requested(dict)
        The user asked to go to a cell (its cell-table row); its site was requested.
    embeddings_changed(list)
        The names of the project's stored embeddings and reductions.
    scatter_changed(ScatterData or None)
        The scatter's points or their colours changed (``scatter``, ``scatter_colours``).
    cell_selection_changed(frozenset)
        The crop indices of the selected cells.
    """

    plate_changed = Signal(object)
    project_changed = Signal(object)
    site_requested = Signal(object)
    site_shown = Signal(object)
    annotations_changed = Signal(object)
    classes_changed = Signal(list)
    selection_changed = Signal(list)
    message = Signal(str)
    cells_changed = Signal(object)
    cell_labels_changed = Signal(object)
    models_changed = Signal(list)
    model_selected = Signal(object)
    predictions_changed = Signal(object)
    cell_requested = Signal(dict)
    embeddings_changed = Signal(list)
    scatter_changed = Signal(object)
    cell_selection_changed = Signal(object)

    def __init__(self) -> None:
        self.plate: Plate | None = None
        self.project: Project | None = None
        self.pattern: str | None = None
        self.classes: list[dict] = []
        self.selected_class: str | None = None
        self.selected_wells: list[str] = []
        self.current_site: Site | None = None
        self.shown_site: Site | None = None
        self._init_cells()
        self._init_embeddings()

    # -- plate and project ------------------------------------------------------
    def open(self, path: str | os.PathLike, *, pattern: str | None = None,
             project_dir: str | os.PathLike | None = None) -> Plate:
        """Open a plate from a path and make it current (see :meth:`set_plate`).

        Raises
        ------
        PlateError, FileNotFoundError
            When the path is not a plate.
        """
        plate = open_plate(path, pattern=pattern)
        self.pattern = pattern
        self.set_plate(plate, project_dir=project_dir)
        if pattern:
            self.project.update_meta(pattern=pattern)
        return plate

    def set_plate(self, plate: Plate, *, project_dir: str | os.PathLike | None = None,
                  shown_site: Site | None = None) -> None:
        """Make ``plate`` current, open its project and ask for a site.

        Parameters
        ----------
        plate : Plate
            The plate.
        project_dir : path, optional
            Project folder; by default :func:`~napari_hcs.project.default_project_dir`.
        shown_site : Site, optional
            A site of this plate that the image layers already hold (a plate opened
            by napari's reader); otherwise the first site is requested.
        """
        self.plate = plate
        self.current_site = self.shown_site = None
        self.selected_wells = []
        folder = project_dir if project_dir is not None else default_project_dir(plate)
        self._open_project(Project(folder), keep_classes=False)
        plate = self.plate  # read corrected when the project says so
        self.plate_changed.emit(plate)
        if shown_site is not None:
            self.current_site = shown_site
            self.mark_shown(shown_site)
        else:
            self.request_site(self._saved_site() or plate.site(plate.wells[0], 0))

    def set_project_dir(self, folder: str | os.PathLike) -> None:
        """Keep the annotations and classes in another project folder from now on.

        The classes already defined are merged with those saved in that folder.
        """
        self._require_plate("choosing its project folder")
        self._open_project(Project(folder), keep_classes=True)
        self.annotations_changed.emit(self.plate)

    def _open_project(self, project: Project, *, keep_classes: bool) -> None:
        previous = self.classes if keep_classes else []
        self.project = project
        plate = self.plate
        if plate.source:
            try:
                project.check_plate(plate)
            except ValueError as error:  # the folder holds another plate's project
                self.message.emit(f"{error} Its recorded plate is left as it was.")
            else:
                project.record_plate(plate)
        try:
            project.apply_annotations(plate)
        except (PlateError, ValueError) as error:
            self.message.emit(f"Saved annotations in {project.layout_path} were not applied: {error}")
        # A project that records illumination correction shows (and segments) corrected pixels.
        try:
            self.plate = plate = with_project_illumination(plate, project.folder, project.read_meta())
        except (OSError, ValueError) as error:
            self.message.emit(f"Illumination correction recorded in {project.folder} is not applied: {error}")
        classes = [dict(c) for c in project.read_classes()]
        classes += [dict(c) for c in previous if all(c["name"] != k["name"] for k in classes)]
        self.classes = rules.merge_classes(classes, plate.annotations)
        self.selected_class = None
        self._save_classes()
        self._save_annotations()
        self.project_changed.emit(project)
        self._reset_embeddings()
        self._load_cell_state()
        self._load_embedding_state()

    # -- sites ------------------------------------------------------------------
    def request_site(self, site: Site) -> None:
        """Ask for ``site`` to be shown (emits ``site_requested``)."""
        self._require_plate("showing a site")
        if site.well not in self.plate.sites or site not in self.plate.sites[site.well]:
            raise PlateError(f"Site {site.name} is not on plate {self.plate.name!r}.")
        self.current_site = site
        self.site_requested.emit(site)

    def request_well(self, well: str, site_index: int | None = None) -> Site:
        """Ask for a site of a well: ``site_index``, else the current field and timepoint."""
        self._require_plate("showing a well")
        well = self.plate.site(well).well  # PlateError naming the wells when unknown
        index = self.site_index_in(well) if site_index is None else site_index
        site = self.plate.site(well, index)
        self.request_site(site)
        return site

    def site_index_in(self, well: str) -> int:
        """Index of the current site's field and timepoint in another well (else 0)."""
        if self.current_site is None or self.plate is None:
            return 0
        for index, site in enumerate(self.plate.sites[well]):
            if (site.field, site.timepoint) == (self.current_site.field, self.current_site.timepoint):
                return index
        return 0

    def mark_shown(self, site: Site) -> None:
        """Record that the image layers now hold ``site`` (emits ``site_shown``)."""
        self.shown_site = site
        self._save_viewer_state(site=[site.well, site.field, site.timepoint])
        self.site_shown.emit(site)

    # -- wells ------------------------------------------------------------------
    def select_wells(self, wells: list[str]) -> None:
        """Set the selected wells (emits ``selection_changed``)."""
        self.selected_wells = list(wells)
        self.selection_changed.emit(list(wells))

    def label_wells(self, wells: list[str], name: str | None) -> None:
        """Give wells the class ``name`` (None clears it) and save the annotations.

        Raises
        ------
        ValueError
            If ``name`` is not in the class list.
        """
        self._require_plate("labelling wells")
        if name is not None and all(c["name"] != name for c in self.classes):
            raise ValueError(f"No class named {name!r}; add it first.")
        rules.set_well_class(self.plate, wells, name)
        self._annotations_edited()

    def load_layout(self, path: str | os.PathLike) -> None:
        """Merge a CSV/TSV layout table into the plate's annotations and save them."""
        self._require_plate("loading a layout table")
        read_layout_table(path, plate=self.plate)
        self.classes = rules.merge_classes(self.classes, self.plate.annotations)
        self._save_classes()
        self._annotations_edited()

    def save_layout(self, path: str | os.PathLike) -> None:
        """Write the plate's annotations to a CSV (or TSV for ``.tsv``) file."""
        self._require_plate("saving its layout table")
        write_layout_table(self.plate.annotations, path)

    # -- classes ----------------------------------------------------------------
    def add_class(self, name: str, color: str | None = None) -> dict:
        """Add a class (the next default colour when none is given) and return it."""
        self._set_classes(rules.add_class(self.classes, name, color))
        return dict(self.classes[-1])

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class, in the class list and in every well that has it."""
        self._set_classes(rules.rename_class(self.classes, old, new))
        if self.selected_class == old:
            self.selected_class = new.strip()
        if self.plate is not None:
            rules.rename_class_in_annotations(self.plate, old, new.strip())
            self._annotations_edited()
        self._rename_cell_class(old, new.strip())

    def remove_class(self, name: str) -> list[str]:
        """Remove a class and clear it from its wells; return those wells."""
        self._set_classes(rules.remove_class(self.classes, name))
        if self.selected_class == name:
            self.selected_class = None
        wells = rules.rename_class_in_annotations(self.plate, name, None) if self.plate else []
        self._annotations_edited()
        self._rename_cell_class(name, None)
        return wells

    def set_class_color(self, name: str, color: str) -> None:
        """Set the colour of a class (a colour name or ``#rrggbb``)."""
        self._set_classes(rules.set_class_color(self.classes, name, color))
        self.annotations_changed.emit(self.plate)

    def select_class(self, name: str | None) -> None:
        """Select the class that labelling gives (None: none)."""
        if name is not None and all(c["name"] != name for c in self.classes):
            known = ", ".join(c["name"] for c in self.classes) or "none"
            raise ValueError(f"No class named {name!r}; classes are: {known}.")
        self.selected_class = name

    def _set_classes(self, classes: list[dict]) -> None:
        self.classes = classes
        self._save_classes()
        self.classes_changed.emit([dict(c) for c in classes])

    # -- persistence --------------------------------------------------------------
    def _annotations_edited(self) -> None:
        self._save_annotations()
        self.annotations_changed.emit(self.plate)

    def _save_annotations(self) -> None:
        if self.project is None or self.plate is None:
            return
        try:
            self.project.save_annotations(self.plate)
        except OSError as error:
            self.message.emit(f"Could not save annotations to {self.project.layout_path}: {error}")

    def _save_classes(self) -> None:
        if self.project is None:
            return
        try:
            self.project.save_classes(self.classes)
        except OSError as error:
            self.message.emit(f"Could not save classes to {self.project.classes_path}: {error}")

    def _require_plate(self, what: str) -> None:
        if self.plate is None:
            raise PlateError(f"Open a plate before {what}.")
