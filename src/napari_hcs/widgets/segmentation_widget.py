"""Dock widget: segmentation parameters with live preview, and whole-plate runs.

The parameters are a magicgui form filled from
:class:`~napari_hcs.segmentation.SegmentationParams`. The preview segments the
site the image layers show (the session's ``site_shown``), in a background
thread, and shows ``nuclei`` and ``cells`` Labels layers tied to that site,
whose ``features`` hold the site's cell-table rows. Choosing another site in the
form asks the session for it: the image is shown first, then segmented.
"Run plate" and "Run selected wells" run :func:`napari_hcs.pipeline.run_plate`
in a background thread with a progress bar; "Cancel" stops it between sites
(finished sites are kept and a later run resumes).
"""

from __future__ import annotations

from dataclasses import MISSING, fields

import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ..plate import Plate, Site
from ..segmentation import SegmentationParams
from ..viewer.layers import labels_layer_data, put_layer_data
from ..vocabulary import AUTOMATIC_THRESHOLDS, CELL_DYES, LABEL_NAMES, NUCLEAR_DYES, guess_channel
from .run_panel import RunPanel
from .site_display import shared_session

__all__ = ["SegmentationWidget", "form_parameters", "parameter_form"]

NO_CHANNEL = "(none: grow nuclei)"
PREVIEW_DELAY_MS = 400


def _default(name: str):
    return next(f.default for f in fields(SegmentationParams) if f.name == name and f.default is not MISSING)


def parameter_form() -> Container:
    """Return the magicgui form of the segmentation parameters (and crop size).

    Its values give :class:`~napari_hcs.segmentation.SegmentationParams` through
    :func:`form_parameters`; channel choices are filled when a plate is set.
    """
    diameter = FloatSpinBox(name="diameter", label="diameter (px)", min=0, max=500, step=1,
                            tooltip="Nucleus diameter in pixels; 'auto' estimates it per site.")
    diameter.native.setSpecialValueText("auto")
    return Container(widgets=[
        ComboBox(name="site", label="site", choices=[], nullable=True),
        ComboBox(name="nuclei_channel", label="nuclei channel", choices=[], nullable=True),
        ComboBox(name="cell_channel", label="cell channel", choices=[(NO_CHANNEL, None)]),
        diameter,
        ComboBox(name="threshold", label="threshold", choices=AUTOMATIC_THRESHOLDS, value=_default("threshold")),
        FloatSpinBox(name="smoothing", label="smoothing (px)", min=0, max=20, step=0.5, value=_default("smoothing")),
        SpinBox(name="crop_size", label="crop size (px)", min=8, max=512, step=8, value=32),
        CheckBox(name="live_preview", text="live preview", value=True),
    ])


def form_parameters(form: Container) -> SegmentationParams:
    """Return the :class:`~napari_hcs.segmentation.SegmentationParams` a form holds."""
    return SegmentationParams(
        nuclei_channel=form.nuclei_channel.value,
        cell_channel=form.cell_channel.value,
        diameter=form.diameter.value or None,
        threshold=form.threshold.value,
        smoothing=form.smoothing.value,
    )


class SegmentationWidget(QWidget):
    """Segmentation preview and plate runs for the session's plate.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer this widget is docked in.
    """

    #: The :class:`~napari_hcs.pipeline.SiteResult` of each preview shown.
    preview_finished = Signal(object)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = shared_session(napari_viewer)
        self._preview_worker = None
        self._preview_pending = False
        self._sites: list[Site] = []
        self._build()
        self.session.plate_changed.connect(self._on_plate_changed)
        self.session.site_shown.connect(self._on_site_shown)
        self.session.project_changed.connect(self._on_project_changed)
        if self.session.plate is not None:
            self._on_plate_changed(self.session.plate)
            if self.session.shown_site is not None:
                self._on_site_shown(self.session.shown_site)

    def _build(self) -> None:
        self.form = parameter_form()
        self.form.site.changed.connect(self._on_site_chosen)
        for name in ("nuclei_channel", "cell_channel", "diameter", "threshold", "smoothing", "crop_size"):
            getattr(self.form, name).changed.connect(self._parameters_changed)
        self.preview_button = QPushButton("Preview site")
        self.preview_button.clicked.connect(self.preview)
        self.run_panel = RunPanel(self.session, parameters=self.parameters, crop_size=lambda: self.form.crop_size.value)
        self.status = QLabel("Open a plate to start.")
        self.status.setWordWrap(True)
        self.run_panel.status.connect(self.status.setText)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.preview_button)
        layout.addWidget(self.run_panel)
        layout.addWidget(self.status)
        layout.addStretch()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PREVIEW_DELAY_MS)
        self._debounce.timeout.connect(self.preview)

    # -- state ----------------------------------------------------------------
    @property
    def plate(self) -> Plate | None:
        """The session's plate."""
        return self.session.plate

    @property
    def site(self) -> Site | None:
        """The site the preview segments: the one the image layers show."""
        return self.session.shown_site

    def parameters(self) -> SegmentationParams:
        """Return the segmentation parameters set in the form."""
        return form_parameters(self.form)

    def set_plate(self, plate: Plate, site: Site | None = None) -> None:
        """Make ``plate`` the session's plate and show ``site`` (the first by default)."""
        self.session.set_plate(plate)
        if site is not None:
            self.session.request_site(site)

    def _on_plate_changed(self, plate: Plate) -> None:
        self._sites = list(plate.iter_sites())
        form = self.form
        with form.changed.blocked(), form.site.changed.blocked(), \
                form.nuclei_channel.changed.blocked(), form.cell_channel.changed.blocked():
            form.site.choices = [(s.name, s) for s in self._sites]
            form.nuclei_channel.choices = list(plate.channels)
            form.nuclei_channel.value = plate.channels[guess_channel(plate.channels, NUCLEAR_DYES)]
            form.cell_channel.choices = [(NO_CHANNEL, None), *((c, c) for c in plate.channels)]
            cell = guess_channel(plate.channels, CELL_DYES, default=None)
            form.cell_channel.value = None if cell is None else plate.channels[cell]
        self.run_panel.set_project_dir(self.session.project.folder)
        self.run_panel.set_wells(plate.wells)
        self.status.setText(f"Plate {plate.name}: {plate.n_sites()} sites, channels {', '.join(plate.channels)}.")

    def _on_project_changed(self, project) -> None:
        self.run_panel.set_project_dir(project.folder)

    def _on_site_shown(self, site: Site) -> None:
        with self.form.site.changed.blocked():
            self.form.site.value = site
        # A site the project has segmented shows its stored labels (those its cells come
        # from); only changed parameters or "Preview site" segment it again.
        if self.form.live_preview.value and not self._segmented(site):
            self._debounce.start()

    def _segmented(self, site: Site) -> bool:
        project = self.session.project
        return project is not None and bool(project.label_store().names(site))

    def _on_site_chosen(self, site: Site | None) -> None:
        if site is not None and site != self.session.shown_site:
            self.session.request_site(site)

    def _parameters_changed(self, *_) -> None:
        if self.plate is not None and self.form.live_preview.value:
            self._debounce.start()

    # -- preview ----------------------------------------------------------------
    def preview(self) -> None:
        """Segment the shown site in a background thread and show its labels."""
        from napari.qt.threading import create_worker

        from ..pipeline import process_site

        site = self.session.shown_site
        if self.plate is None or site is None:
            return
        if self._preview_worker is not None:
            self._preview_pending = True  # re-run with the newest parameters and site once done
            return
        self.status.setText(f"Previewing {site.name}…")
        worker = create_worker(process_site, self.plate, site, self.parameters(),
                               crop_size=self.form.crop_size.value, features=True)
        worker.returned.connect(self._show_preview)
        worker.errored.connect(lambda error, site=site: self.status.setText(f"Preview of {site.name} failed: {error}"))
        worker.finished.connect(self._preview_done)
        self._preview_worker = worker
        worker.start()

    def _preview_done(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self._preview_pending = False
            self.preview()

    def _show_preview(self, result) -> None:
        if result.site != self.session.shown_site:
            self._preview_pending = True  # the image moved on: segment the site it shows now
            return
        table = result.rows
        if result.features is not None:
            table = table.merge(result.features, on="label", how="left")
        table = pd.concat([pd.DataFrame({"index": table["label"]}), table], axis=1)
        for name, data in zip(LABEL_NAMES, (result.nuclei, result.cells)):
            layer = put_layer_data(self.viewer, labels_layer_data(self.plate, result.site, name, data, features=table))
            if name == "cells":
                layer.contour = 2
        notes = f" ({'; '.join(result.warnings)})" if result.warnings else ""
        self.status.setText(f"{result.site.name}: {result.n_cells} cells in {result.seconds:.1f} s{notes}")
        self.preview_finished.emit(result)

    def cancel(self) -> None:
        """Stop a plate run after the sites in progress (they are kept)."""
        self.run_panel.cancel()

