"""Dock widget: segmentation parameters with live preview, and whole-plate runs.

The widget finds the open plate in the metadata of a viewer layer
(``layer.metadata["napari_hcs_plate"]``, with the shown site under
``"napari_hcs_site"``), or is given one with :meth:`PipelineWidget.set_plate`.
Changing a parameter re-segments the current site after a short pause, in a
background thread, and shows ``nuclei`` and ``cells`` Labels layers whose
``features`` hold the site's cell table rows. "Run plate" and "Run selected
wells" run :func:`napari_hcs.pipeline.site.run_plate` in a background thread with a
progress bar; "Cancel" stops it between sites (finished sites are kept and a
later run resumes).
"""

from __future__ import annotations

import threading
from dataclasses import MISSING, fields
from pathlib import Path

import pandas as pd
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..plate import Plate, Site

__all__ = ["PipelineWidget"]

PLATE_KEY = "napari_hcs_plate"
SITE_KEY = "napari_hcs_site"
NO_CHANNEL = "(none: grow nuclei)"
THRESHOLDS = ("otsu", "li", "triangle")
PREVIEW_DELAY_MS = 400


def _param_default(name: str, fallback):
    from ..segmentation.segment import SegmentationParams

    for item in fields(SegmentationParams):
        if item.name == name and item.default is not MISSING:
            return item.default
    return fallback


class PipelineWidget(QWidget):
    """Segmentation preview and plate runs for the plate open in the viewer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer this widget is docked in.
    """

    #: ``(sites done, sites to do)`` during a run (emitted from the run thread).
    progress_changed = Signal(int, int)
    #: The run summary (dict) once a run ends.
    run_finished = Signal(object)
    #: The :class:`~napari_hcs.pipeline.site.SiteResult` of each finished preview.
    preview_finished = Signal(object)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.plate: Plate | None = None
        self.site: Site | None = None
        self.source_layer = None
        self._preview_worker = None
        self._preview_pending = False
        self._run_worker = None
        self._cancel = threading.Event()
        self._build()
        self.progress_changed.connect(self._show_progress)
        self.viewer.layers.events.inserted.connect(self._find_plate)
        self._find_plate()

    # -- layout ---------------------------------------------------------------
    def _build(self) -> None:
        self.nuclei_channel = QComboBox()
        self.cell_channel = QComboBox()
        self.site_choice = QComboBox()
        self.diameter = QDoubleSpinBox(minimum=0, maximum=500, decimals=1, singleStep=1)
        self.diameter.setSpecialValueText("auto")
        self.diameter.setToolTip("Nucleus diameter in pixels; 'auto' estimates it per site.")
        self.threshold = QComboBox()
        self.threshold.addItems(THRESHOLDS)
        self.smoothing = QDoubleSpinBox(minimum=0, maximum=20, decimals=1, singleStep=0.5)
        self.smoothing.setValue(float(_param_default("smoothing", 1.0)))
        self.crop_size = QSpinBox(minimum=8, maximum=512, singleStep=8)
        self.crop_size.setValue(32)
        self.live_preview = QCheckBox("live preview")
        self.live_preview.setChecked(True)
        self.preview_button = QPushButton("Preview site")

        parameters = QFormLayout()
        parameters.addRow("site", self.site_choice)
        parameters.addRow("nuclei channel", self.nuclei_channel)
        parameters.addRow("cell channel", self.cell_channel)
        parameters.addRow("diameter (px)", self.diameter)
        parameters.addRow("threshold", self.threshold)
        parameters.addRow("smoothing (px)", self.smoothing)
        parameters.addRow("crop size (px)", self.crop_size)
        preview_row = QHBoxLayout()
        preview_row.addWidget(self.live_preview)
        preview_row.addWidget(self.preview_button)
        parameters.addRow(preview_row)
        parameters_box = QGroupBox("Segmentation")
        parameters_box.setLayout(parameters)

        self.project = QLineEdit()
        self.project.setPlaceholderText("project folder")
        self.browse = QPushButton("…")
        self.wells = QListWidget()
        self.wells.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.wells.setMaximumHeight(110)
        self.workers = QSpinBox(minimum=1, maximum=64)
        self.measure = QCheckBox("measure features")
        self.measure.setChecked(True)
        self.run_plate_button = QPushButton("Run plate")
        self.run_wells_button = QPushButton("Run selected wells")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("Open a plate to start.")
        self.status.setWordWrap(True)

        run = QFormLayout()
        project_row = QHBoxLayout()
        project_row.addWidget(self.project)
        project_row.addWidget(self.browse)
        run.addRow("project", project_row)
        run.addRow("wells", self.wells)
        run.addRow("workers", self.workers)
        run.addRow(self.measure)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_plate_button)
        buttons.addWidget(self.run_wells_button)
        buttons.addWidget(self.cancel_button)
        run.addRow(buttons)
        run.addRow(self.progress)
        run_box = QGroupBox("Run")
        run_box.setLayout(run)

        layout = QVBoxLayout(self)
        layout.addWidget(parameters_box)
        layout.addWidget(run_box)
        layout.addWidget(self.status)
        layout.addStretch()

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PREVIEW_DELAY_MS)
        self._debounce.timeout.connect(self.preview)
        for combo in (self.site_choice, self.nuclei_channel, self.cell_channel, self.threshold):
            combo.currentIndexChanged.connect(self._parameters_changed)
        for spin in (self.diameter, self.smoothing, self.crop_size):
            spin.valueChanged.connect(self._parameters_changed)
        self.preview_button.clicked.connect(self.preview)
        self.browse.clicked.connect(self._choose_project)
        self.run_plate_button.clicked.connect(self.run_plate)
        self.run_wells_button.clicked.connect(self.run_selected_wells)
        self.cancel_button.clicked.connect(self.cancel)

    # -- plate ----------------------------------------------------------------
    def _find_plate(self, event=None) -> None:
        for layer in reversed(list(self.viewer.layers)):
            plate = layer.metadata.get(PLATE_KEY)
            if isinstance(plate, Plate) and plate is not self.plate:
                self.set_plate(plate, layer.metadata.get(SITE_KEY), source_layer=layer)
                return

    def _follow_site(self, event=None) -> None:
        """Preview the site that the plate layers now show."""
        if self.source_layer is None or self.source_layer.metadata.get(PLATE_KEY) is not self.plate:
            return
        site = self.source_layer.metadata.get(SITE_KEY)
        if site in self._sites and site != self.site:
            self.site_choice.setCurrentIndex(self._sites.index(site))

    def set_plate(self, plate: Plate, site: Site | None = None, *, source_layer=None) -> None:
        """Use ``plate`` and preview ``site`` (the first site by default)."""
        self.plate = plate
        if self.source_layer is not None:
            self.source_layer.events.data.disconnect(self._follow_site)
        self.source_layer = source_layer
        if source_layer is not None:
            source_layer.events.data.connect(self._follow_site)
        self._sites = list(plate.iter_sites())
        site = site if site in self._sites else self._sites[0]
        self.site = site
        with _SignalsBlocked(self.site_choice, self.nuclei_channel, self.cell_channel):
            self.site_choice.clear()
            self.site_choice.addItems([s.name for s in self._sites])
            self.site_choice.setCurrentIndex(self._sites.index(site))
            self.nuclei_channel.clear()
            self.nuclei_channel.addItems(plate.channels)
            self.nuclei_channel.setCurrentIndex(_guess_channel(plate.channels, ("dapi", "hoechst", "dna", "nuc")))
            self.cell_channel.clear()
            self.cell_channel.addItems([NO_CHANNEL, *plate.channels])
            guess = _guess_channel(plate.channels, ("cherry", "actin", "phalloidin", "cyto", "cell", "membrane"), -1)
            self.cell_channel.setCurrentIndex(guess + 1)
        self.wells.clear()
        self.wells.addItems(plate.wells)
        if not self.project.text() and plate.source:
            from ..project.folder import default_project_dir

            self.project.setText(str(default_project_dir(plate.source)))
        self.status.setText(f"Plate {plate.name}: {plate.n_sites()} sites, channels {', '.join(plate.channels)}.")
        self._parameters_changed()

    def _choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder", self.project.text())
        if folder:
            self.project.setText(folder)

    # -- parameters -------------------------------------------------------------
    def parameters(self):
        """Return the :class:`~napari_hcs.segmentation.segment.SegmentationParams` set in the widget."""
        from ..segmentation.segment import SegmentationParams

        cell = self.cell_channel.currentText()
        return SegmentationParams(
            nuclei_channel=self.nuclei_channel.currentText(),
            cell_channel=None if cell in ("", NO_CHANNEL) else cell,
            diameter=self.diameter.value() or None,
            threshold=self.threshold.currentText(),
            smoothing=self.smoothing.value(),
        )

    def _parameters_changed(self, *args) -> None:
        if self.plate is None:
            return
        self.site = self._sites[max(0, self.site_choice.currentIndex())]
        if self.live_preview.isChecked():
            self._debounce.start()

    # -- preview ----------------------------------------------------------------
    def preview(self) -> None:
        """Segment the current site in a background thread and show its labels."""
        from napari.qt.threading import create_worker

        from ..pipeline.site import process_site

        if self.plate is None:
            return
        if self._preview_worker is not None:
            self._preview_pending = True  # re-run with the newest parameters once done
            return
        self.status.setText(f"Previewing {self.site.name}…")
        worker = create_worker(
            process_site, self.plate, self.site, self.parameters(),
            crop_size=self.crop_size.value(), features=True,
        )
        worker.returned.connect(self._show_preview)
        worker.errored.connect(self._preview_failed)
        worker.finished.connect(self._preview_done)
        self._preview_worker = worker
        worker.start()

    def _preview_done(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self._preview_pending = False
            self.preview()

    def _preview_failed(self, error: Exception) -> None:
        self.status.setText(f"Preview of {self.site.name} failed: {error}")

    def _show_preview(self, result) -> None:
        table = result.rows
        if result.features is not None:
            table = table.merge(result.features, on="label", how="left")
        table = pd.concat([pd.DataFrame({"index": table["label"]}), table], axis=1)
        for name, data in (("nuclei", result.nuclei), ("cells", result.cells)):
            self._set_labels_layer(name, data, table, result.site)
        notes = f" ({'; '.join(result.warnings)})" if result.warnings else ""
        self.status.setText(
            f"{result.site.name}: {result.n_cells} cells in {result.seconds:.1f} s{notes}"
        )
        self.preview_finished.emit(result)

    def _set_labels_layer(self, name: str, data, table: pd.DataFrame, site: Site) -> None:
        placement = {}
        if self.source_layer is not None and tuple(self.source_layer.data.shape[-2:]) == data.shape:
            placement = {"scale": self.source_layer.scale[-2:], "translate": self.source_layer.translate[-2:]}
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            layer.features = table
        else:
            layer = self.viewer.add_labels(data, name=name, features=table, opacity=0.5, **placement)
            if name == "cells":
                layer.contour = 2
        layer.metadata[SITE_KEY] = site

    # -- runs -------------------------------------------------------------------
    def selected_wells(self) -> list[str]:
        return [item.text() for item in self.wells.selectedItems()]

    def run_plate(self) -> None:
        """Run every site of the plate."""
        self.run(selected_only=False)

    def run_selected_wells(self) -> None:
        """Run the sites of the wells selected in the list."""
        self.run(selected_only=True)

    def run(self, *, selected_only: bool = False) -> None:
        """Run the plate (or the selected wells) into the project folder."""
        from napari.qt.threading import create_worker

        from ..pipeline.site import run_plate

        if self.plate is None or self._run_worker is not None:
            return
        project = self.project.text().strip()
        if not project:
            self.status.setText("Choose a project folder first.")
            return
        wells = self.selected_wells() if selected_only else None
        if selected_only and not wells:
            self.status.setText("Select the wells to run first.")
            return
        self._cancel.clear()
        self.progress.setValue(0)
        worker = create_worker(
            run_plate, self.plate, Path(project), self.parameters(),
            crop_size=self.crop_size.value(), wells=wells, workers=self.workers.value(),
            features=self.measure.isChecked(), progress=self.progress_changed.emit,
            cancel=self._cancel.is_set,
        )
        worker.returned.connect(self._run_done)
        worker.errored.connect(self._run_failed)
        worker.finished.connect(self._run_ended)
        self._run_worker = worker
        self._set_running(True)
        self.status.setText("Running…")
        worker.start()

    def cancel(self) -> None:
        """Stop the run after the sites in progress (they are kept)."""
        self._cancel.set()
        self.status.setText("Cancelling after the current site…")

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _run_done(self, summary: dict) -> None:
        self._run_ended()
        if not summary["cancelled"]:
            self.progress.setValue(self.progress.maximum())
        state = "cancelled" if summary["cancelled"] else "done"
        self.status.setText(
            f"Run {state}: {summary['sites']} sites, {summary['cells']} cells, "
            f"{summary['skipped_done']} already done, {len(summary['failures'])} failed "
            f"({summary['seconds']:.0f} s)."
        )
        self.run_finished.emit(summary)

    def _run_failed(self, error: Exception) -> None:
        self._run_ended()
        self.status.setText(f"Run failed: {error}")
        self.run_finished.emit({"error": str(error)})

    def _run_ended(self) -> None:
        self._run_worker = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_plate_button.setEnabled(not running)
        self.run_wells_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)


def _guess_channel(channels: list[str], hints: tuple[str, ...], default: int = 0) -> int:
    for index, name in enumerate(channels):
        if any(hint in name.lower() for hint in hints):
            return index
    return default


class _SignalsBlocked:
    """Block the signals of widgets while they are refilled."""

    def __init__(self, *widgets):
        self.widgets = widgets

    def __enter__(self):
        for widget in self.widgets:
            widget.blockSignals(True)

    def __exit__(self, *exc):
        for widget in self.widgets:
            widget.blockSignals(False)
