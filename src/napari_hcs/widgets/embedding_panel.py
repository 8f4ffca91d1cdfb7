"""The "Embeddings" tab: a scatter of cells, selection shared with the image, computing, wells, export.

:class:`EmbeddingPanel` shows the session's scatter (:mod:`~napari_hcs.viewer.session_embeddings`)
in a :class:`~napari_hcs.widgets.scatter_canvas.ScatterCanvas`: a stored
reduction (``cnn-umap``), two components of a stored embedding, or two columns
of the cell table, coloured by cluster, class, well or any column. A lasso or
box drawn on it selects cells in the session; the image frames the selected
cells of the shown site, and cells Shift-clicked on the image light up here.
Clicking a point goes to that cell. The Compute box embeds cells, reduces an
embedding and clusters cells (:mod:`napari_hcs.profiles`) in a worker thread with
progress and Cancel; the Wells box builds well profiles, clusters them and
draws their dendrogram; Export writes the cells or wells as CSV, Parquet or
AnnData.
"""

from __future__ import annotations

import threading

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..vocabulary import CLUSTER_METHODS, CROP_INDEX, EMBEDDING_SOURCES, EXPORT_FORMATS, EXPORT_LEVELS, REDUCTIONS
from .cell_overlay import cell_overlay
from .dendrogram_view import DendrogramView
from .embedding_jobs import EmbeddingJobs
from .scatter_canvas import MODES, ScatterCanvas
from .workers import describe_error

__all__ = ["COLUMNS_ITEM", "EmbeddingPanel"]

#: The "show" entry that plots two columns of the cell table.
COLUMNS_ITEM = "cell-table columns"
LEGEND_ROWS = 14
EXPORT_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "h5ad": ".h5ad"}


def _combo(items=(), tip: str = "") -> QComboBox:
    combo = QComboBox()
    combo.setMinimumContentsLength(6)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    for item in items:
        combo.addItem(str(item), item)
    combo.setToolTip(tip)
    return combo


def _row(*widgets) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget) if isinstance(widget, QWidget) else layout.addWidget(QLabel(widget))
    return row


class EmbeddingPanel(EmbeddingJobs, QWidget):
    """Scatter of the cells' embeddings, selection, computing embeddings and clusters, wells, export.

    Parameters
    ----------
    session : Session
        The viewer's session.
    napari_viewer : napari.Viewer, optional
        The viewer (its overlay frames the selected cells); not needed otherwise.

    Signals
    -------
    work_finished(str, object)
        After a job (``"embed"``, ``"reduce"``, ``"cluster"``, ``"profile"``,
        ``"cluster wells"``, ``"export"``): what it made, or the error that stopped it.
    """

    work_finished = Signal(str, object)

    def __init__(self, session, napari_viewer=None, parent=None):
        super().__init__(parent)
        self.session = session
        self.viewer = napari_viewer
        self.overlay = cell_overlay(napari_viewer) if napari_viewer is not None else None
        self._worker = None
        self._cancel = threading.Event()
        self.destroyed.connect(lambda *_, event=self._cancel: event.set())
        self._drawn_scatter = None
        self._next_selected = 0
        self._filling = False
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_scatter())
        layout.addWidget(self._build_compute())
        layout.addWidget(self._build_wells())
        layout.addWidget(self._build_export())
        layout.addStretch(1)
        session.embeddings_changed.connect(self._fill_sources)
        session.scatter_changed.connect(self._draw_scatter)
        session.cell_selection_changed.connect(self._show_selection)
        session.cells_changed.connect(self._fill_columns)
        session.cell_requested.connect(self._mark_current)
        session.project_changed.connect(lambda *_: self._show_tree())
        self._fill_sources(session.embedding_names)
        self._fill_columns()
        self._draw_scatter(session.scatter)
        self._show_tree()

    # -- layout -----------------------------------------------------------------------
    def _build_scatter(self) -> QGroupBox:
        box = QGroupBox("Scatter")
        self.source = _combo(tip="A stored reduction or embedding, or two columns of the cell table")
        self.x_choice, self.y_choice = _combo(tip="x axis"), _combo(tip="y axis")
        self.colour = _combo(tip="Colour the points by a column: cluster, class, well, predicted class, ...")
        self.source.currentIndexChanged.connect(self._source_chosen)
        self.x_choice.currentIndexChanged.connect(self._axes_chosen)
        self.y_choice.currentIndexChanged.connect(self._axes_chosen)
        self.colour.currentIndexChanged.connect(self._colour_chosen)
        self.canvas = ScatterCanvas()
        self.canvas.setMinimumHeight(330)
        self.canvas.selected.connect(self._selected_in_scatter)
        self.canvas.clicked.connect(self._point_clicked)
        self.mode_buttons = QButtonGroup(self)
        buttons = []
        tips = {"pan": "Pan and zoom; click a point to go to its cell",
                "lasso": "Draw around points (Shift adds, Ctrl removes)", "box": "Drag a rectangle"}
        for mode in MODES:
            button = QPushButton(mode.capitalize())
            button.setCheckable(True)
            button.setChecked(mode == "pan")
            button.setToolTip(tips[mode])
            button.clicked.connect(lambda _=False, m=mode: self.canvas.set_mode(m))
            self.mode_buttons.addButton(button)
            buttons.append(button)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.session.clear_cell_selection)
        self.next_button = QPushButton("Next ▸")
        self.next_button.setToolTip("Go to the next selected cell on the image")
        self.next_button.clicked.connect(self.go_to_next_selected)
        self.selection_label, self.legend = QLabel(), QLabel()
        self.legend.setWordWrap(True)
        grid = QGridLayout(box)
        grid.addWidget(_row("show", self.source), 0, 0, 1, 2)
        grid.addWidget(_row("x", self.x_choice), 1, 0)
        grid.addWidget(_row("y", self.y_choice), 1, 1)
        grid.addWidget(_row("colour", self.colour), 2, 0, 1, 2)
        grid.addWidget(self.canvas, 3, 0, 1, 2)
        grid.addWidget(_row(*buttons, self.clear_button, self.next_button), 4, 0, 1, 2)
        grid.addWidget(self.selection_label, 5, 0, 1, 2)
        grid.addWidget(self.legend, 6, 0, 1, 2)
        return box

    def _build_compute(self) -> QGroupBox:
        box = QGroupBox("Compute")
        self.embed_source = _combo(EMBEDDING_SOURCES, "cnn: the selected model's penultimate layer; features: "
                                   "the classical features; pca: PCA of the crops; autoencoder: trained on the crops")
        self.embed_button = QPushButton("Embed")
        self.reduction = _combo(REDUCTIONS, "Reduce the embedding to 2-D")
        self.reduce_button = QPushButton("Reduce")
        self.cluster_method = _combo(CLUSTER_METHODS, "How the cells or wells are clustered")
        self.k = QSpinBox()
        self.k.setRange(2, 200)
        self.k.setToolTip("Number of clusters (k-means, hierarchical)")
        self.on_reduction = QCheckBox("on the 2-D reduction")
        self.cluster_button = QPushButton("Cluster cells")
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.status = QLabel("Embed the cells, reduce the embedding to 2-D, then cluster.")
        self.status.setWordWrap(True)
        self.embed_button.clicked.connect(lambda: self.embed())
        self.reduce_button.clicked.connect(lambda: self.reduce())
        self.cluster_button.clicked.connect(lambda: self.cluster_cells())
        self.cancel_button.clicked.connect(self.cancel)
        grid = QGridLayout(box)
        grid.addWidget(_row("embedding", self.embed_source, self.embed_button), 0, 0)
        grid.addWidget(_row("reduction", self.reduction, self.reduce_button), 1, 0)
        grid.addWidget(_row(self.cluster_method, "k", self.k, self.cluster_button), 2, 0)
        grid.addWidget(self.on_reduction, 3, 0)
        grid.addWidget(_row(self.progress, self.cancel_button), 4, 0)
        grid.addWidget(self.status, 5, 0)
        return box

    def _build_wells(self) -> QGroupBox:
        box = QGroupBox("Wells")
        self.profile_button = QPushButton("Profile wells")
        self.profile_button.setToolTip("Median per well of the chosen embedding (or the features), "
                                       "normalised per plate")
        self.cluster_wells_button = QPushButton("Cluster wells")
        self.cluster_wells_button.setToolTip("Cluster the well profiles with the method and k above")
        self.dendrogram = DendrogramView()
        self.dendrogram.well_clicked.connect(self._well_clicked)
        self.profile_button.clicked.connect(lambda: self.profile_wells())
        self.cluster_wells_button.clicked.connect(lambda: self.cluster_wells())
        layout = QVBoxLayout(box)
        layout.addWidget(_row(self.profile_button, self.cluster_wells_button))
        layout.addWidget(self.dendrogram)
        return box

    def _build_export(self) -> QGroupBox:
        box = QGroupBox("Export")
        self.export_format = _combo(EXPORT_FORMATS, "csv and parquet for pandas and R, h5ad for scanpy")
        self.export_level = _combo(EXPORT_LEVELS, "A row per cell, or per well profile")
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._choose_export)
        layout = QVBoxLayout(box)
        layout.addWidget(_row(self.export_format, self.export_level, self.export_button))
        return box

    # -- choices ------------------------------------------------------------------------
    def _fill_sources(self, names) -> None:
        self._filling = True
        self.source.clear()
        for name in names:
            self.source.addItem(name, name)
        self.source.addItem(COLUMNS_ITEM, None)
        self._select_current_source()
        self._filling = False

    def _select_current_source(self) -> None:
        scatter = self.session.scatter
        wanted = None if scatter is None or "columns" in scatter.source else scatter.source["embedding"]
        index = self.source.findData(wanted) if wanted is not None else -1
        self.source.blockSignals(True)
        self.source.setCurrentIndex(index if index >= 0 else self.source.count() - 1)
        self.source.blockSignals(False)
        self._fill_axes()
        self.colour.blockSignals(True)
        self.colour.setCurrentIndex(max(self.colour.findData(self.session.colour_column), 0))
        self.colour.blockSignals(False)

    def _fill_axes(self) -> None:
        scatter, name = self.session.scatter, self.source.currentData()
        if name is not None:
            dimensions = self._dimensions(name)
            items = [(f"{name} {i + 1}", i) for i in range(dimensions)]
            chosen = scatter.source.get("components", [0, 1]) if scatter is not None and \
                scatter.source.get("embedding") == name else [0, min(1, dimensions - 1)]
        else:
            items = [(c, c) for c in self.session.scatter_columns()]
            chosen = scatter.source["columns"] if scatter is not None and "columns" in scatter.source else \
                [c for _, c in items[:2]]
        for combo, value in zip((self.x_choice, self.y_choice), list(chosen) + [None, None]):
            combo.blockSignals(True)
            combo.clear()
            for text, data in items:
                combo.addItem(text, data)
            combo.setCurrentIndex(max(combo.findData(value), 0) if value is not None else -1)
            combo.blockSignals(False)

    def _dimensions(self, name: str) -> int:
        try:
            return self.session.embedding_store.read(name).dimensions
        except (OSError, ValueError):
            return 0

    def _fill_columns(self, *_) -> None:
        self.colour.blockSignals(True)
        self.colour.clear()
        self.colour.addItem("(one colour)", None)
        for column in self.session.colour_columns():
            self.colour.addItem(column, column)
        self.colour.setCurrentIndex(max(self.colour.findData(self.session.colour_column), 0))
        self.colour.blockSignals(False)
        if self.source.currentData() is None and not self._filling:
            self._fill_axes()

    def _source_chosen(self, *_) -> None:
        if self._filling:
            return
        self._fill_axes()
        self._axes_chosen()

    def _axes_chosen(self, *_) -> None:
        x, y, name = self.x_choice.currentData(), self.y_choice.currentData(), self.source.currentData()
        if x is None or y is None:
            return
        try:
            self.session.show_embedding(name, (x, y)) if name is not None else self.session.show_columns(x, y)
        except (OSError, ValueError, KeyError) as error:
            self.status.setText(f"Could not show the scatter: {describe_error(error)}")

    def _colour_chosen(self, *_) -> None:
        try:
            self.session.colour_by(self.colour.currentData())
        except KeyError as error:
            self.status.setText(str(error.args[0]))

    # -- drawing ------------------------------------------------------------------------
    def _draw_scatter(self, scatter) -> None:
        colours = self.session.scatter_colours
        if scatter is None or colours is None:
            self.canvas.set_points(np.zeros((0, 2)), np.zeros(0), np.zeros((1, 4)))
            self.legend.setText("Nothing to show yet: embed and reduce the cells (Compute), or choose "
                                f"{COLUMNS_ITEM!r} to plot two features.")
        elif scatter is self._drawn_scatter:
            self.canvas.set_colours(colours.codes, colours.table)
        else:
            self.canvas.set_points(scatter.xy, colours.codes, colours.table, labels=(scatter.x_label, scatter.y_label))
        if scatter is not self._drawn_scatter:
            self._select_current_source()
        self._drawn_scatter = scatter
        if scatter is not None and colours is not None:
            self.legend.setText(self._legend_html(colours, scatter))
        self._show_selection()

    @staticmethod
    def _legend_html(colours, scatter) -> str:
        rows = [f'<span style="color:{hex_}">&#9632;</span> {name}: {int(count)}'
                for name, hex_, count in zip(colours.names, colours.hex_colours, colours.counts)]
        more = f"<br>… and {len(rows) - LEGEND_ROWS} more" if len(rows) > LEGEND_ROWS else ""
        dropped = f" ({scatter.dropped} without values left out)" if scatter.dropped else ""
        title = f"{len(scatter)} cells{dropped}" + (f", by {colours.column}:" if colours.column else "")
        return title + "<br>" + " &nbsp; ".join(rows[:LEGEND_ROWS]) + more

    def _scatter_rows(self, crop_indices: np.ndarray) -> np.ndarray:
        scatter = self.session.scatter
        if scatter is None or not len(crop_indices):
            return np.zeros(0, np.int64)
        return np.flatnonzero(np.isin(scatter.crop_index, crop_indices)).astype(np.int64)

    def _show_selection(self, *_) -> None:
        selected = self.session.selected_array
        if self._drawn_scatter is self.session.scatter:
            self.canvas.set_selected(self._scatter_rows(selected))
        if not len(selected):
            self.canvas.show_outline(None)
        site_cells = self.overlay.cells if self.overlay is not None else None
        on_site = int(np.isin(site_cells[CROP_INDEX].to_numpy(), selected).sum()) \
            if site_cells is not None and len(selected) and CROP_INDEX in site_cells else 0
        self.selection_label.setText(f"{len(selected)} cells selected, {on_site} on the site shown."
                                     if len(selected) else "No cells selected: draw a lasso or a box.")

    def _selected_in_scatter(self, rows, mode: str) -> None:
        scatter = self.session.scatter
        if scatter is not None:
            self.session.select_cells(scatter.crop_index[np.asarray(rows, np.int64)], mode)

    def _point_clicked(self, row: int) -> None:
        scatter = self.session.scatter
        if scatter is not None and self.session.plate is not None:
            self._go_to(int(scatter.crop_index[row]))

    def _go_to(self, crop_index: int) -> None:
        try:
            self.session.request_cell(crop_index)
        except (ValueError, KeyError) as error:
            self.status.setText(str(error))

    def go_to_next_selected(self) -> int | None:
        """Go to the next selected cell (in crop-index order); return its crop index."""
        selected = self.session.selected_array
        if not len(selected):
            self.status.setText("No cells selected.")
            return None
        crop_index = int(selected[self._next_selected % len(selected)])
        self._next_selected += 1
        self._go_to(crop_index)
        return crop_index

    def _mark_current(self, row: dict) -> None:
        rows = self._scatter_rows(np.array([int(row[CROP_INDEX])]))
        self.canvas.set_current(int(rows[0]) if len(rows) else None)

    def _show_tree(self) -> None:
        try:
            self.dendrogram.set_tree(self.session.well_tree())
        except (OSError, ValueError, KeyError) as error:
            self.dendrogram.set_tree(None, f"The well clusters could not be read: {error}")

    def _well_clicked(self, label: str) -> None:
        well = label.split(" ")[-1]
        if self.session.plate is not None and well in self.session.plate.sites:
            self.session.request_well(well)
