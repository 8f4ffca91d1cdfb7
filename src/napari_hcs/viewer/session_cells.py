"""What a session knows about cells: the cell table, cell labels, models, predictions.

:class:`CellSession` is the part of :class:`~napari_hcs.viewer.session.Session`
that begins once a plate is segmented. It keeps the project's cell table, the
classes users gave single cells, the models trained in the project and the
newest predictions in memory, saves each change in the project at once, and
says what changed through the session's signals (``cells_changed``,
``cell_labels_changed``, ``models_changed``, ``model_selected``,
``predictions_changed``, ``cell_requested``).

The shown site and the selected model are kept in ``project.json`` (key
``viewer``), so reopening the project shows the same well, site and model.
"""

from __future__ import annotations

import pandas as pd

from ..plate import PlateError, Site
from ..vocabulary import CROP_INDEX

__all__ = ["CellSession", "VIEWER_STATE_KEY"]

#: Key of project.json holding what the viewer showed last: site and model.
VIEWER_STATE_KEY = "viewer"

_NO_LABELS = pd.DataFrame({CROP_INDEX: pd.Series(dtype="int64"), "class": pd.Series(dtype=object)})


class CellSession:
    """Cell table, cell labels, models and predictions of the session's project.

    Mixed into :class:`~napari_hcs.viewer.session.Session`, which defines the
    signals and the ``project``, ``plate`` and ``message`` this part uses.
    """

    def _init_cells(self) -> None:
        self.cells: pd.DataFrame | None = None
        self.cell_labels: pd.DataFrame = _NO_LABELS
        self.current_model: str | None = None
        self.predictions: pd.DataFrame | None = None

    # -- loading ------------------------------------------------------------------
    def _load_cell_state(self) -> None:
        """Read the project's cells, cell labels, models and predictions (after it opened)."""
        self.cells = self._read_cells()
        self.cell_labels = self._read_cell_labels()
        self.predictions = self._read_predictions()
        self._adopt_predicted_classes()
        saved = self.project.read_meta().get(VIEWER_STATE_KEY, {}) if self.project else {}
        names = self.models.names() if self.models is not None else []
        self.current_model = saved.get("model") if saved.get("model") in names else None
        self.cells_changed.emit(self.cells)
        self.cell_labels_changed.emit(self.cell_labels)
        self.models_changed.emit(names)
        self.model_selected.emit(self.current_model)
        self.predictions_changed.emit(self.predictions)

    def _read_cells(self) -> pd.DataFrame | None:
        from ..project import CellStore

        if self.project is None or not (self.project.folder / CellStore.META).exists():
            return None
        try:
            return self.project.cell_table()
        except (OSError, ValueError, KeyError) as error:
            self.message.emit(f"The cell table of {self.project.folder} could not be read: {error}")
            return None

    def _read_cell_labels(self) -> pd.DataFrame:
        if self.project is None:
            return _NO_LABELS
        try:
            return self.project.cell_labels().read()
        except (OSError, ValueError) as error:
            self.message.emit(f"Cell labels of {self.project.folder} could not be read: {error}")
            return _NO_LABELS

    def _read_predictions(self) -> pd.DataFrame | None:
        from ..classify import read_predictions

        if self.project is None or self.cells is None:
            return None
        try:
            return read_predictions(self.project)
        except (OSError, ValueError) as error:
            self.message.emit(f"Predictions of {self.project.folder} could not be read: {error}")
            return None

    def reload_cells(self) -> pd.DataFrame | None:
        """Read the cell table again (after a segmentation run) and emit ``cells_changed``."""
        self.cells = self._read_cells()
        self.cells_changed.emit(self.cells)
        if self.predictions is None:
            self.predictions = self._read_predictions()
            self.predictions_changed.emit(self.predictions)
        return self.cells

    # -- cells ----------------------------------------------------------------------
    def cell_rows(self, crop_indices) -> pd.DataFrame:
        """Rows of the cell table for ``crop_indices`` (in the table's order).

        Raises
        ------
        ValueError
            When the project has no cells yet, or some crop indices are not cells of it.
        """
        if self.cells is None:
            raise ValueError("The project has no cells yet; segment the plate first (Segment tab).")
        wanted = pd.Index(pd.unique(pd.Series(list(crop_indices), dtype="int64")))
        rows = self.cells[self.cells[CROP_INDEX].isin(wanted)]
        missing = wanted.difference(rows[CROP_INDEX])
        if len(missing):
            shown = ", ".join(str(i) for i in missing[:5])
            raise ValueError(f"No cell with crop index {shown} in project {self.project.folder}.")
        return rows

    def label_cells(self, crop_indices, name: str | None) -> bool:
        """Give cells the class ``name`` (None clears their label), saved in the project at once.

        Returns False (and says why through ``message``) when the labels could
        not be saved, e.g. in a read-only project folder; the labels held before
        are kept.

        Raises
        ------
        ValueError
            If ``name`` is not in the class list, or a crop index is not a cell.
        """
        if name is not None and all(c["name"] != name for c in self.classes):
            raise ValueError(f"No class named {name!r}; add it first.")
        rows = self.cell_rows(crop_indices)
        store = self.project.cell_labels()
        try:
            self.cell_labels = store.set(rows, name)
        except OSError as error:
            self.message.emit(f"Could not save cell labels in {self.project.folder}: {error}")
            return False
        self.cell_labels_changed.emit(self.cell_labels)
        return True

    def cell_class(self, crop_index: int) -> str | None:
        """The class a user gave one cell, or None."""
        hits = self.cell_labels.loc[self.cell_labels[CROP_INDEX] == int(crop_index), "class"]
        return str(hits.iloc[0]) if len(hits) else None

    def _rename_cell_class(self, old: str, new: str | None) -> None:
        if self.project is None or self.cell_labels.empty:
            return
        store = self.project.cell_labels()
        try:
            store.rename_class(old, new) if new is not None else store.remove_class(old)
            self.cell_labels = store.read()
        except OSError as error:
            self.message.emit(f"Could not save cell labels in {self.project.folder}: {error}")
            return
        self.cell_labels_changed.emit(self.cell_labels)

    def request_cell(self, crop_index: int) -> dict:
        """Ask for the site holding a cell to be shown, then emit ``cell_requested``.

        Returns the cell's row as a dict (well, field, timepoint, label,
        centroid_y, centroid_x, crop_index, ...).
        """
        row = self.cell_rows([crop_index]).iloc[0].to_dict()
        site = Site(str(row["well"]), int(row["field"]), int(row["timepoint"]))
        if site.well not in self.plate.sites or site not in self.plate.sites[site.well]:
            raise PlateError(f"Cell {crop_index} is in {site.name}, which plate {self.plate.name!r} lacks.")
        self.request_site(site)
        self.cell_requested.emit(row)
        return row

    # -- models and predictions -------------------------------------------------------
    @property
    def models(self):
        """The project's :class:`~napari_hcs.project.ModelCatalog` (None without a project)."""
        return self.project.models() if self.project is not None else None

    def refresh_models(self) -> list[str]:
        """List the project's models again (after training) and emit ``models_changed``."""
        names = self.models.names() if self.models is not None else []
        if self.current_model not in names:
            self.current_model = None
        self.models_changed.emit(names)
        return names

    def select_model(self, name: str | None) -> None:
        """Make ``name`` the model that predicts and is inspected (kept in the project).

        Raises
        ------
        ValueError
            If the project has no model of that name (the message lists them).
        """
        if name is not None:
            names = self.models.names() if self.models is not None else []
            if name not in names:
                raise ValueError(f"No model named {name!r} in this project; models: {', '.join(names) or 'none'}.")
        self.current_model = name
        self._save_viewer_state(model=name)
        self.model_selected.emit(name)

    def set_predictions(self, predictions: pd.DataFrame | None) -> None:
        """Hold the project's predictions (already saved by whoever made them); emit the change."""
        self.predictions = predictions
        self._adopt_predicted_classes()
        self.predictions_changed.emit(predictions)

    def _adopt_predicted_classes(self) -> None:
        """Add predicted classes missing from the class list, so each keeps one colour everywhere."""
        if self.predictions is None or "pred_class" not in self.predictions.columns:
            return
        known = {c["name"] for c in self.classes}
        missing = sorted({str(n) for n in self.predictions["pred_class"].dropna().unique()} - known - {""})
        for name in missing:
            self.add_class(name)

    # -- what the viewer showed ------------------------------------------------------
    def _save_viewer_state(self, **values) -> None:
        if self.project is None:
            return
        try:
            state = dict(self.project.read_meta().get(VIEWER_STATE_KEY, {}))
            state.update(values)
            self.project.update_meta(**{VIEWER_STATE_KEY: state})
        except (OSError, ValueError) as error:
            self.message.emit(f"Could not save the viewer state in {self.project.meta_path}: {error}")

    def _saved_site(self) -> Site | None:
        """The site shown when the project was last open, if the plate still has it."""
        if self.project is None:
            return None
        saved = self.project.read_meta().get(VIEWER_STATE_KEY, {}).get("site")
        if not saved:
            return None
        site = Site(str(saved[0]), int(saved[1]), int(saved[2]))
        return site if site in self.plate.sites.get(site.well, []) else None
