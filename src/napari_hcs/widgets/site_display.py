"""The viewer's one :class:`~napari_hcs.viewer.session.Session`, and the site it shows.

:func:`shared_session` gives every dock widget of a viewer the same session.
With it comes one :class:`SiteDisplay`, which reads each requested site in a
background thread, puts its pixels into the image layers, and only then tells
the session that the site is shown. A plate opened with napari's reader (File >
Open) arrives as layers that carry it; the display hands it to the session.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

from qtpy.QtCore import QObject, QTimer

from ..plate import Plate, Site
from ..viewer.layers import apply_layer_data, plate_layers, site_layer_data
from ..viewer.session import Session
from ..vocabulary import CHANNEL_ROLE, META_PLATE, META_ROLE, META_SITE

__all__ = ["SiteDisplay", "shared_session", "site_display"]

_DISPLAYS: dict[int, "SiteDisplay"] = {}
#: Memory the layer data of recently shown sites may take.
CACHE_BYTES = 256 * 1024**2


def shared_session(viewer) -> Session:
    """Return the session of ``viewer``, made (with its :class:`SiteDisplay`) on first use."""
    key = id(viewer)
    if key not in _DISPLAYS:
        _DISPLAYS[key] = SiteDisplay(viewer, Session())
        weakref.finalize(viewer, _DISPLAYS.pop, key, None)
    return _DISPLAYS[key].session


def site_display(viewer) -> "SiteDisplay":
    """Return the :class:`SiteDisplay` of ``viewer`` (made with its session on first use)."""
    shared_session(viewer)
    return _DISPLAYS[id(viewer)]


def _read_site(plate: Plate, site: Site, label_store) -> list:
    """Layer data of a site, with the labels its project keeps (runs in a worker thread)."""
    stored = label_store.read(site) if label_store is not None else {}
    return site_layer_data(plate, site, project_labels=stored)


def _layer_bytes(layer_data: list) -> int:
    return sum(int(getattr(data, "nbytes", 0)) for data, _, _ in layer_data)


class SiteDisplay(QObject):
    """Loads the sites a session asks for into a viewer's layers, one at a time.

    While a site loads, newer requests replace older ones: when the read ends,
    the newest requested site is loaded next, and a read that is no longer
    wanted is dropped. A failed site is retried only when asked for again.
    The sites read last are kept in memory (up to :data:`CACHE_BYTES`), so going
    back to one (from the plate map or a gallery of cells) needs no read; the
    cache is emptied when the plate, the project or its cells change.
    """

    def __init__(self, viewer, session: Session):
        super().__init__()
        self.viewer = viewer
        self.session = session
        self._worker = None
        self._wanted: Site | None = None
        self._loading: Site | None = None
        self._failed: Site | None = None
        self._adopting: Plate | None = None
        self._cache: OrderedDict[Site, list] = OrderedDict()
        for signal in (session.plate_changed, session.project_changed, session.cells_changed):
            signal.connect(self._forget)
        session.site_requested.connect(self._on_site_requested)
        session.plate_changed.connect(self._on_plate_changed)
        viewer.layers.events.inserted.connect(self._on_layer_inserted)
        for layer in viewer.layers:
            if isinstance(layer.metadata.get(META_PLATE), Plate):
                self._queue_adoption(layer.metadata[META_PLATE])
                break

    @property
    def is_loading(self) -> bool:
        """True while a site is being read."""
        return self._worker is not None

    def _on_plate_changed(self, plate: Plate) -> None:
        self._wanted = self._failed = None
        for layer in plate_layers(self.viewer):
            if layer.metadata.get(META_PLATE) is not plate:
                self.viewer.layers.remove(layer)

    def _on_site_requested(self, site: Site) -> None:
        self._wanted = site
        self._failed = None
        if site == self.session.shown_site and self._shown_in_layers(site):
            return
        if self._worker is None:
            self._start(site)

    def _shown_in_layers(self, site: Site) -> bool:
        layers = [layer for layer in plate_layers(self.viewer) if layer.metadata.get(META_ROLE) == CHANNEL_ROLE]
        return bool(layers) and all(
            layer.metadata.get(META_SITE) == site and layer.metadata.get(META_PLATE) is self.session.plate
            for layer in layers
        )

    def _forget(self, *_) -> None:
        self._cache.clear()

    def _remember(self, site: Site, layer_data: list) -> None:
        self._cache[site] = layer_data
        self._cache.move_to_end(site)
        while len(self._cache) > 1 and sum(_layer_bytes(d) for d in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)

    def _start(self, site: Site) -> None:
        from napari.qt.threading import create_worker

        if site in self._cache:
            self._cache.move_to_end(site)
            self._show(site, self._cache[site])
            return

        self._loading = site
        project = self.session.project
        worker = create_worker(_read_site, self.session.plate, site, project.label_store() if project else None,
                               _start_thread=False)
        worker.returned.connect(self._on_loaded)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.session.message.emit(f"Loading {site.name}…")
        worker.start()

    def _on_loaded(self, layer_data: list) -> None:
        metadata = layer_data[0][1]["metadata"] if layer_data else {}
        site = metadata.get(META_SITE)
        if metadata.get(META_PLATE) is not self.session.plate:
            return
        self._remember(site, layer_data)
        if site == self._wanted:
            self._show(site, layer_data)

    def _show(self, site: Site, layer_data: list) -> None:
        apply_layer_data(self.viewer, layer_data)
        self.session.message.emit("")
        self.session.mark_shown(site)

    def _on_error(self, error: Exception) -> None:
        self._failed = self._loading
        self.session.message.emit(f"Could not show {self._loading.name}: {error}")

    def _on_finished(self) -> None:
        self._worker = None
        if self._wanted not in (None, self.session.shown_site, self._failed):
            self._start(self._wanted)

    # -- plates opened by napari's reader -----------------------------------------
    def _on_layer_inserted(self, event) -> None:
        plate = event.value.metadata.get(META_PLATE)
        if isinstance(plate, Plate) and plate is not self.session.plate:
            self._queue_adoption(plate)

    def _queue_adoption(self, plate: Plate) -> None:
        # napari is still inserting the reader's layers: adopt the plate once it is done
        if self._adopting is plate:
            return
        self._adopting = plate
        QTimer.singleShot(0, self._adopt)

    def _adopt(self) -> None:
        plate, self._adopting = self._adopting, None
        if plate is None or plate is self.session.plate:
            return
        shown = next(
            (layer.metadata.get(META_SITE) for layer in plate_layers(self.viewer)
             if layer.metadata.get(META_PLATE) is plate),
            None,
        )
        self.session.set_plate(plate, shown_site=shown)
