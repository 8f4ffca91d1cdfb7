"""Labelling cells on the image: click a cell, or point at it and press 1-9 (0 clears).

:class:`CellLabeller` listens to the viewer's canvas. With labelling on and a
class chosen, a click (not a drag: dragging still pans) on a cell gives it that
class; on the background it says there is no cell. Keys 1-9 choose the class of
that rank and label the cell under the pointer, 0 clears the label of the cell
under the pointer (and makes clicks clear). Labels are saved in the project at
once by the session.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QObject, Signal

from ..viewer.layers import plate_layers
from ..viewer.overlays import label_at
from ..vocabulary import CROP_INDEX
from .cell_overlay import CellOverlay

__all__ = ["CLEAR", "CellLabeller"]

#: The "class" that clears a cell's label (key 0).
CLEAR = None
CLASS_KEYS = [str(k) for k in range(1, 10)]


class CellLabeller(QObject):
    """Gives cells classes from clicks and keys on the viewer's canvas.

    Parameters
    ----------
    overlay : CellOverlay
        The viewer's overlay (it knows the shown site's cells and label layer).

    Signals
    -------
    labelled(object, object)
        ``(crop_index, class or None)`` after a cell's label was saved.
    status(str)
        A message for the user.
    """

    labelled = Signal(object, object)
    status = Signal(str)

    def __init__(self, overlay: CellOverlay):
        super().__init__()
        self.overlay = overlay
        self.viewer = overlay.viewer
        self.session = overlay.session
        self.enabled = False
        self.clearing = False
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self._bind_keys(self.viewer)
        # A selected layer's own keys come first (Labels layers use 1-6 for their tools):
        # the plate's layers get the class keys too.
        for layer in plate_layers(self.viewer):
            self._bind_keys(layer)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)

    def _bind_keys(self, target) -> None:
        for rank, key in enumerate(CLASS_KEYS):
            target.bind_key(key, self._key_handler(rank), overwrite=True)
        target.bind_key("0", self._key_handler(None), overwrite=True)

    def _on_layer_inserted(self, event) -> None:
        if event.value in plate_layers(self.viewer):
            self._bind_keys(event.value)

    def set_enabled(self, enabled: bool) -> None:
        """Turn labelling by clicks on or off."""
        self.enabled = bool(enabled)

    # -- what is under a point --------------------------------------------------------
    def cell_at(self, world_position) -> int | None:
        """Crop index of the cell at a world position of the canvas, or None."""
        layer = self.overlay.cell_layer()
        cells = self.overlay.cells
        if layer is None or cells is None or cells.empty:
            return None
        position = np.asarray(layer.world_to_data(world_position))[-2:]
        label = label_at(np.asarray(layer.data), position, None)
        if not label:
            return None
        hits = cells.loc[cells["label"] == label, CROP_INDEX]
        return int(hits.iloc[0]) if len(hits) else None

    def label_cell_at(self, world_position, name: str | None) -> int | None:
        """Give the cell at a world position the class ``name`` (None clears); return its crop index."""
        crop_index = self.cell_at(world_position)
        if crop_index is None:
            self.status.emit("No cell there: click inside a segmented cell.")
            return None
        if self.session.label_cells([crop_index], name):
            self.labelled.emit(crop_index, name)
            shown = name if name is not None else "no class"
            self.status.emit(f"Cell {crop_index} labelled {shown}.")
        return crop_index

    # -- events --------------------------------------------------------------------
    def _on_mouse(self, viewer, event):
        if not self.enabled or event.type != "mouse_press" or event.button != 1:
            return
        if "Shift" in event.modifiers:  # Shift-click selects the cell for the scatter instead
            return
        start = tuple(event.position)
        yield
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        if dragged:
            return
        name = None if self.clearing else self.session.selected_class
        if name is None and not self.clearing:
            self.status.emit("Choose a class first (keys 1-9 or the class list), or 0 to clear.")
            return
        self.label_cell_at(start, name)

    def _key_handler(self, rank: int | None):
        def handler(viewer_or_layer):
            self._on_class_key(rank)

        handler.__doc__ = f"Label the cell under the pointer with class {rank + 1}" if rank is not None \
            else "Clear the label of the cell under the pointer"
        return handler

    def _on_class_key(self, rank: int | None) -> None:
        classes = self.session.classes
        if rank is not None and rank >= len(classes):
            self.status.emit(f"There is no class {rank + 1}; the class list has {len(classes)}.")
            return
        name = classes[rank]["name"] if rank is not None else None
        self.clearing = rank is None
        if name is not None:
            self.session.select_class(name)
        if self.cell_at(self.viewer.cursor.position) is not None:
            self.label_cell_at(self.viewer.cursor.position, name)
        else:
            self.status.emit(f"Clicks now label cells {name}." if name else "Clicks now clear cell labels.")
