"""The cells drawn over the image: predicted classes or clusters, labelled, selected cells, the cell gone to.

One :class:`CellOverlay` per viewer (:func:`cell_overlay`) follows the session:
each time a site is shown, predictions arrive, cells are labelled or classes
change colour, it redraws the layers of :mod:`napari_hcs.viewer.overlays` for
the shown site, from the site's cell label image (the ``cells`` layer, else
``nuclei``). The cells Labels layer's ``features`` become the site's cell-table
rows (predictions and well annotations included), so other plugins can use them.
With the ``clusters`` option the class overlay shows each cell's cluster instead
of its predicted class.

The cells selected (the session's ``cell_selection_changed``, e.g. by a lasso in
the embedding scatter) are framed by squares; Shift-click on a cell adds it to
the selection or takes it out. Going to a cell (the session's ``cell_requested``)
centres the camera on it and rings it once its site is shown.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from qtpy.QtCore import QObject, Signal

from ..plate import Site
from ..viewer.layers import layer_metadata, layer_scale, plate_layers, put_layer_data
from ..viewer.cluster_overlays import SELECTED_NAME, as_cluster_predictions, cluster_classes, selected_cells_data
from ..viewer.overlays import (
    OVERLAY_NAME,
    cell_layer_features,
    centroid_points_data,
    class_overlay_data,
    label_at,
    labelled_cells_data,
)
from ..viewer.session import Session
from ..vocabulary import CROP_INDEX, LABELS_ROLE, META_NAME, META_ROLE, META_SITE, OVERLAY_ROLE
from .site_display import shared_session

__all__ = ["CellOverlay", "OverlayOptions", "cell_overlay", "site_cells"]

#: Label images whose cells the overlay colours, in order of preference.
CELL_LAYER_NAMES = ("cells", "nuclei")
POINTS_NAME = "cell centroids"
LABELLED_NAME = "labelled cells"
HIGHLIGHT_NAME = "selected cell"
#: Camera zoom when going to a cell: screen pixels per image pixel.
JUMP_ZOOM = 1.5

_OVERLAYS: dict[int, "CellOverlay"] = {}
_WARMED_UP: list[bool] = []


@dataclass
class OverlayOptions:
    """How predictions are drawn: confidence as opacity, outlines only, centroid points, clusters."""

    confidence_opacity: bool = False
    outlines: bool = False
    points: bool = False
    clusters: bool = False


def cell_overlay(viewer) -> "CellOverlay":
    """Return the viewer's :class:`CellOverlay` (made on first use)."""
    key = id(viewer)
    if key not in _OVERLAYS:
        _OVERLAYS[key] = CellOverlay(viewer, shared_session(viewer))
        weakref.finalize(viewer, _OVERLAYS.pop, key, None)
    return _OVERLAYS[key]


def site_cells(session: Session, site: Site) -> pd.DataFrame | None:
    """Cell-table rows of a site with the session's predictions joined (None without cells)."""
    cells = session.cells
    if cells is None or site is None:
        return None
    rows = cells[(cells["well"] == site.well) & (cells["field"] == site.field) & (cells["timepoint"] == site.timepoint)]
    predictions = session.predictions
    if predictions is not None and len(rows):
        extra = [c for c in predictions.columns if c != CROP_INDEX and c not in rows.columns]
        rows = rows.merge(predictions[[CROP_INDEX, *extra]], on=CROP_INDEX, how="left")
    return rows.reset_index(drop=True)


class CellOverlay(QObject):
    """Draws the session's predictions and cell labels over the shown site.

    Signals
    -------
    drawn(object)
        After the overlay of a site was drawn: the site's cells (DataFrame).
    jumped(dict)
        After the camera went to a cell: its row.
    """

    drawn = Signal(object)
    jumped = Signal(object)

    def __init__(self, viewer, session: Session):
        super().__init__()
        self.viewer = viewer
        self.session = session
        self.options = OverlayOptions()
        self.cells: pd.DataFrame | None = None
        self._pending_cell: dict | None = None
        for signal in (session.site_shown, session.predictions_changed, session.cells_changed,
                       session.classes_changed, session.annotations_changed, session.cell_labels_changed):
            signal.connect(self.redraw)
        session.cell_requested.connect(self._on_cell_requested)
        session.site_shown.connect(self._finish_jump)
        session.cell_selection_changed.connect(self._on_selection_changed)
        viewer.mouse_drag_callbacks.append(self._on_mouse)
        _warm_up_label_colours()

    # -- drawing ------------------------------------------------------------------
    def set_options(self, **options) -> None:
        """Change how predictions are drawn (see :class:`OverlayOptions`) and redraw."""
        for name, value in options.items():
            if not hasattr(self.options, name):
                raise ValueError(f"Unknown overlay option {name!r}.")
            setattr(self.options, name, bool(value))
        self.redraw()

    def cell_layer(self):
        """The shown site's cell Labels layer (``cells``, else ``nuclei``), or None."""
        site = self.session.shown_site
        by_name = {layer.metadata.get(META_NAME): layer for layer in plate_layers(self.viewer)
                   if layer.metadata.get(META_ROLE) == LABELS_ROLE and layer.metadata.get(META_SITE) == site}
        return next((by_name[name] for name in CELL_LAYER_NAMES if name in by_name), None)

    def redraw(self, *_) -> None:
        """Draw the overlays of the shown site (removes them where there is nothing to draw)."""
        site = self.session.shown_site
        layer = self.cell_layer()
        cells = site_cells(self.session, site)
        self.cells = cells
        if layer is None or cells is None or cells.empty:
            self._remove(OVERLAY_NAME, POINTS_NAME, LABELLED_NAME, SELECTED_NAME)
            return
        layer.features = cell_layer_features(cells)
        self._draw_predictions(site, np.asarray(layer.data), cells)
        self._draw_labelled(site, cells)
        self._draw_selected(site, cells)
        self.drawn.emit(cells)

    def _coloured_cells(self, cells: pd.DataFrame):
        """The cells with the ``pred_class`` drawn and the class list: predictions, or clusters."""
        if not self.options.clusters:
            return cells, self.session.classes, self.options.confidence_opacity
        if "cluster" not in cells.columns:
            return cells.iloc[0:0], [], False
        return as_cluster_predictions(cells), cluster_classes(self.session.cells["cluster"]), False

    def _draw_predictions(self, site: Site, labels: np.ndarray, cells: pd.DataFrame) -> None:
        plate = self.session.plate
        cells, classes, confidence = self._coloured_cells(cells)
        if "pred_class" not in cells.columns or cells["pred_class"].isna().all():
            self._remove(OVERLAY_NAME, POINTS_NAME)
            return
        self._put(class_overlay_data(plate, site, labels, cells, classes, confidence_opacity=confidence,
                                     outlines=self.options.outlines))
        if self.options.points:
            self._put(centroid_points_data(plate, site, cells.dropna(subset=["pred_class"]), classes))
        else:
            self._remove(POINTS_NAME)

    def _draw_labelled(self, site: Site, cells: pd.DataFrame) -> None:
        labelled = self.session.cell_labels
        mine = labelled[labelled[CROP_INDEX].isin(cells[CROP_INDEX])] if len(labelled) else labelled
        if mine.empty:
            self._remove(LABELLED_NAME)
            return
        self._put(labelled_cells_data(self.session.plate, site, cells, mine, self.session.classes))

    def _draw_selected(self, site: Site, cells: pd.DataFrame) -> None:
        selected = self.session.selected_array
        if not len(selected) or not np.isin(cells[CROP_INDEX].to_numpy(np.int64), selected).any():
            self._remove(SELECTED_NAME)
            return
        self._put(selected_cells_data(self.session.plate, site, cells, selected))

    def _on_selection_changed(self, *_) -> None:
        site, cells = self.session.shown_site, self.cells
        if site is not None and cells is not None and not cells.empty and self.cell_layer() is not None:
            self._draw_selected(site, cells)

    def cell_at(self, world_position) -> int | None:
        """Crop index of the shown site's cell at a world position of the canvas, or None."""
        layer, cells = self.cell_layer(), self.cells
        if layer is None or cells is None or cells.empty:
            return None
        label = label_at(np.asarray(layer.data), np.asarray(layer.world_to_data(world_position))[-2:], None)
        hits = cells.loc[cells["label"] == label, CROP_INDEX] if label else []
        return int(hits.iloc[0]) if len(hits) else None

    def _on_mouse(self, viewer, event):
        """Shift-click on a cell: add it to the selected cells, or take it out."""
        if event.type != "mouse_press" or event.button != 1 or "Shift" not in event.modifiers:
            return
        start = tuple(event.position)
        yield
        if event.type == "mouse_move":
            return  # a drag, not a click
        crop_index = self.cell_at(start)
        if crop_index is not None:
            self.session.select_cells([crop_index], "toggle")

    def _put(self, layer_data) -> None:
        selection = self.viewer.layers.selection
        selected = set(selection)
        put_layer_data(self.viewer, layer_data)
        # Adding a layer selects it; keep the user's selection (and the image's key bindings).
        if set(selection) != selected:
            selection.clear()
            selection.update(layer for layer in selected if layer in self.viewer.layers)

    def _remove(self, *names: str) -> None:
        """Empty the overlay layers of these names (kept: adding napari layers again is slow)."""
        site = self.session.shown_site
        for layer in plate_layers(self.viewer):
            if layer.metadata.get(META_NAME) not in names:
                continue
            if layer.metadata.get(META_ROLE) == OVERLAY_ROLE and site is not None:
                _empty(layer)
                layer.metadata = {**layer.metadata, META_SITE: site}
            else:
                self.viewer.layers.remove(layer)

    # -- going to a cell ------------------------------------------------------------
    def _on_cell_requested(self, row: dict) -> None:
        self._pending_cell = row
        site = Site(str(row["well"]), int(row["field"]), int(row["timepoint"]))
        if self.session.shown_site == site and plate_layers(self.viewer):
            self._finish_jump(site)

    def _finish_jump(self, site: Site) -> None:
        row = self._pending_cell
        if row is None or Site(str(row["well"]), int(row["field"]), int(row["timepoint"])) != site:
            return
        self._pending_cell = None
        scale = layer_scale(self.session.plate)
        centre = (float(row["centroid_y"]) * scale[0], float(row["centroid_x"]) * scale[1])
        self.viewer.scene.camera.center = centre
        self.viewer.scene.camera.zoom = JUMP_ZOOM / scale[0]
        self._highlight(site, row)
        self.jumped.emit(row)

    def _highlight(self, site: Site, row: dict) -> None:
        layer_data = _highlight_data(self.session, site, row)
        existing = next((layer for layer in plate_layers(self.viewer)
                         if layer.metadata.get(META_NAME) == HIGHLIGHT_NAME), None)
        if existing is None:
            self._put(layer_data)
            return
        existing.metadata = layer_data[1]["metadata"]
        existing.data = layer_data[0]  # in place: restyling a points layer costs a redraw each


def _empty(layer) -> None:
    """Show nothing in an overlay layer (labels: all background; points: none)."""
    if type(layer).__name__ == "Points":
        if len(layer.data):
            layer.data = np.empty((0, 2))
    elif np.any(layer.data):
        layer.data = np.zeros(np.shape(layer.data), dtype=np.uint8)


def _warm_up() -> None:
    """Do, once, the slow first steps the dock will need (runs in a thread).

    napari compiles its colouring of dict-coloured labels (2-3 s), pandas imports its
    Arrow conversion on the first Parquet read (~0.5 s), and the first training step
    imports torch's compiler stack (~0.5 s, holding the interpreter): done in the event
    loop or beside a training, each would freeze the viewer that long.
    """
    import io

    from napari.utils.colormaps import DirectLabelColormap

    try:
        colours = {0: (0, 0, 0, 0), None: (0, 0, 0, 0), 1: (1, 0, 0, 1)}
        DirectLabelColormap(color_dict=colours).map(np.array([[1]], np.uint8))
        buffer = io.BytesIO()
        pd.DataFrame({CROP_INDEX: [0], "class": ["a"]}).to_parquet(buffer)
        pd.read_parquet(io.BytesIO(buffer.getvalue()))
        import torch._dynamo  # noqa: F401
    except Exception:  # noqa: BLE001 - only a head start: the real use reports its own errors
        return


def _warm_up_label_colours() -> None:
    """Start :func:`_warm_up` in a thread, once per process, when the first dock opens."""
    from napari.qt.threading import create_worker

    if _WARMED_UP:
        return
    _WARMED_UP.append(True)
    create_worker(_warm_up).start()


def _highlight_data(session: Session, site: Site, row: dict):
    """A ring around the cell gone to (a points layer tied to its site)."""
    kwargs = {
        "name": HIGHLIGHT_NAME, "size": 24, "symbol": "ring", "face_color": "yellow", "border_width": 0,
        "scale": layer_scale(session.plate), "metadata": layer_metadata(session.plate, site, OVERLAY_ROLE, HIGHLIGHT_NAME),
    }
    return (np.array([[row["centroid_y"], row["centroid_x"]]]), kwargs, "points")
