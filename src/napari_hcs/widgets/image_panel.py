"""Dock section "Images": preprocessing previewed on the shown site, and illumination correction.

Preprocessing: each step of :data:`~napari_hcs.vocabulary.PREPROCESS_STEPS` is a
checkbox with its parameters (the outlier radius and threshold per channel: pick
the channel, set its values). "Preview" (or any change, with "Live preview" on)
preprocesses the site the image layers show in a background thread and shows it
as extra image layers ``preprocessed <channel>``, placed over the site (a centre
crop sits in the middle). "Save to project" records the options in project.json.

Illumination: "Compute illumination" estimates the functions of every channel
from all sites of the plate (progress, "Cancel") and saves them in the project;
"Apply to this plate" records that the project's plate is read corrected and
reopens the session's plate that way (segmentation, crops, training and the
display then see corrected pixels); unticked, the raw plate comes back.
"""

from __future__ import annotations

import threading

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar,
    QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from ..images.preprocess import PreprocessOptions, preprocess_site, read_preprocessing, save_preprocessing
from ..viewer.layers import channel_colormap, contrast_limits, layer_scale
from ..vocabulary import ILLUMINATION_METHODS, PREPROCESS_STEPS
from .workers import describe_error, relay_to, worker_call

__all__ = ["ImagePanel"]

PREVIEW_DELAY_MS = 500
PREVIEW_PREFIX = "preprocessed "
_STEP_TITLES = {"outliers": "Outlier removal", "rolling_ball": "Rolling ball", "median": "Median filter",
                "tv_denoise": "TV denoising", "centre_crop": "Centre crop"}


def _spin(kind, low, high, value, step=1.0, decimals=0):
    box = QSpinBox() if kind is int else QDoubleSpinBox()
    box.setRange(low, high)
    if kind is float:
        box.setDecimals(decimals)
        box.setSingleStep(step)
    box.setValue(value)
    return box


def _preview_job(plate, site, options):
    pixels = plate.read_site(site)
    return site, preprocess_site(pixels, options, channels=plate.channels)


class ImagePanel(QWidget):
    """Preprocessing and illumination correction of the session's plate.

    Parameters
    ----------
    session : Session
        The viewer's session.
    napari_viewer : napari.Viewer
        The viewer the preview layers go into.
    """

    def __init__(self, session, napari_viewer):
        super().__init__()
        self.session, self.viewer = session, napari_viewer
        self._per_channel: dict[str, dict[str, float]] = {}
        self._preview_worker = self._illumination_worker = None
        self._preview_pending = False
        self._cancel = threading.Event()
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_steps())
        layout.addWidget(self._build_illumination())
        self.status = QLabel("Open a plate to start.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PREVIEW_DELAY_MS)
        self._debounce.timeout.connect(self.preview)
        session.plate_changed.connect(self._on_plate_changed)
        session.site_shown.connect(self._on_site_shown)
        if session.plate is not None:
            self._on_plate_changed(session.plate)

    # -- building -------------------------------------------------------------------
    def _build_steps(self) -> QGroupBox:
        box = QGroupBox("Preprocessing (shown site)")
        form = QFormLayout(box)
        self.step_boxes = {s: QCheckBox(_STEP_TITLES[s]) for s in PREPROCESS_STEPS}
        self.channel = QComboBox()
        self.outlier_radius = _spin(int, 1, 50, 2)
        self.outlier_threshold = _spin(float, 0, 1e6, 0, step=50)
        self.outlier_threshold.setSpecialValueText("auto")
        self.rolling_ball_radius = _spin(float, 1, 1000, 50, step=5)
        self.median_radius = _spin(int, 1, 25, 1)
        self.tv_weight = _spin(float, 0.001, 1, 0.02, step=0.005, decimals=3)
        self.crop_size = _spin(int, 8, 16384, 1024, step=16)
        rows = {"outliers": (self.channel, self.outlier_radius, self.outlier_threshold),
                "rolling_ball": (self.rolling_ball_radius,), "median": (self.median_radius,),
                "tv_denoise": (self.tv_weight,), "centre_crop": (self.crop_size,)}
        tips = {"outliers": "channel, radius, threshold (0: auto)", "rolling_ball": "ball radius (px)",
                "median": "radius (px)", "tv_denoise": "weight (relative)", "centre_crop": "side (px)"}
        for step, widgets in rows.items():
            line = QHBoxLayout()
            for widget in widgets:
                widget.setToolTip(tips[step])
                line.addWidget(widget)
            form.addRow(self.step_boxes[step], line)
        self.live = QCheckBox("Live preview")
        self.preview_button = QPushButton("Preview")
        self.save_button = QPushButton("Save to project")
        buttons = QHBoxLayout()
        for widget in (self.live, self.preview_button, self.save_button):
            buttons.addWidget(widget)
        form.addRow(buttons)
        self.preview_button.clicked.connect(self.preview)
        self.save_button.clicked.connect(self.save_options)
        self.channel.currentTextChanged.connect(self._show_channel_values)
        for widget in (self.outlier_radius, self.outlier_threshold):
            widget.valueChanged.connect(self._store_channel_values)
        for widget in (*self.step_boxes.values(), self.rolling_ball_radius, self.median_radius,
                       self.tv_weight, self.crop_size, self.outlier_radius, self.outlier_threshold):
            signal = widget.toggled if isinstance(widget, QCheckBox) else widget.valueChanged
            signal.connect(self._changed)
        return box

    def _build_illumination(self) -> QGroupBox:
        box = QGroupBox("Illumination correction (plate)")
        form = QFormLayout(box)
        self.method = QComboBox()
        self.method.addItems(list(ILLUMINATION_METHODS))
        self.compute_button = QPushButton("Compute illumination")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.apply_box = QCheckBox("Apply to this plate")
        line = QHBoxLayout()
        for widget in (self.method, self.compute_button, self.cancel_button):
            line.addWidget(widget)
        form.addRow(line)
        form.addRow(self.progress)
        form.addRow(self.apply_box)
        self.compute_button.clicked.connect(self.compute_illumination)
        self.cancel_button.clicked.connect(self._cancel.set)
        self.apply_box.toggled.connect(self.set_applied)
        return box

    # -- options ---------------------------------------------------------------------
    def _store_channel_values(self, *_) -> None:
        name = self.channel.currentText()
        if name:
            self._per_channel[name] = {"radius": self.outlier_radius.value(),
                                       "threshold": self.outlier_threshold.value()}

    def _show_channel_values(self, name: str) -> None:
        values = self._per_channel.get(name, {"radius": 2, "threshold": 0})
        for widget, key in ((self.outlier_radius, "radius"), (self.outlier_threshold, "threshold")):
            widget.blockSignals(True)
            widget.setValue(values[key])
            widget.blockSignals(False)

    def options(self) -> PreprocessOptions:
        """The options the form shows."""
        channels = list(self.session.plate.channels) if self.session.plate is not None else []
        values = {c: self._per_channel.get(c, {"radius": 2, "threshold": 0}) for c in channels}
        return PreprocessOptions(
            steps=tuple(s for s, box in self.step_boxes.items() if box.isChecked()),
            outlier_radius={c: v["radius"] for c, v in values.items()} or 2,
            outlier_threshold={c: (v["threshold"] or None) for c, v in values.items()} or None,
            rolling_ball_radius=self.rolling_ball_radius.value(), median_radius=self.median_radius.value(),
            tv_weight=self.tv_weight.value(), crop_size=self.crop_size.value(),
        )

    def set_options(self, options: PreprocessOptions) -> None:
        """Show ``options`` in the form."""
        channels = list(self.session.plate.channels) if self.session.plate is not None else []
        for step, box in self.step_boxes.items():
            box.blockSignals(True)
            box.setChecked(step in options.steps)
            box.blockSignals(False)
        for i, channel in enumerate(channels):
            threshold = options.channel_value("outlier_threshold", i, channels)
            self._per_channel[channel] = {"radius": int(options.channel_value("outlier_radius", i, channels)),
                                          "threshold": threshold or 0.0}
        for widget, value in ((self.rolling_ball_radius, options.rolling_ball_radius),
                              (self.median_radius, options.median_radius), (self.tv_weight, options.tv_weight),
                              (self.crop_size, options.crop_size)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self._show_channel_values(self.channel.currentText())

    def save_options(self) -> None:
        """Record the form's options in the project."""
        if self.session.project is None:
            return
        try:
            save_preprocessing(self.session.project.folder, self.options())
        except (OSError, ValueError) as error:
            self.status.setText(describe_error(error, self.session.project.folder))
            return
        self.status.setText(f"Preprocessing saved in {self.session.project.meta_path}.")

    # -- plate and site --------------------------------------------------------------
    def _on_plate_changed(self, plate) -> None:
        from ..images.corrected_loader import CorrectedLoader, illumination_setting

        self.channel.blockSignals(True)
        self.channel.clear()
        self.channel.addItems(list(plate.channels))
        self.channel.blockSignals(False)
        project = self.session.project
        try:
            saved = read_preprocessing(project.folder) if project is not None else None
        except ValueError as error:
            saved = None
            self.status.setText(str(error))
        self.set_options(saved or PreprocessOptions(steps=()))
        setting = illumination_setting(project.read_meta() if project is not None else {})
        self.method.setCurrentText(setting["method"])
        self.apply_box.blockSignals(True)
        self.apply_box.setChecked(isinstance(plate.loader, CorrectedLoader))
        self.apply_box.blockSignals(False)
        self.status.setText(f"Plate {plate.name}: channels {', '.join(plate.channels)}.")

    def _on_site_shown(self, _site) -> None:
        if self.live.isChecked():
            self._debounce.start()

    def _changed(self, *_) -> None:
        if self.live.isChecked() and self.session.shown_site is not None:
            self._debounce.start()

    # -- preview ---------------------------------------------------------------------
    def preview(self) -> None:
        """Preprocess the shown site in a background thread and show it as extra image layers."""
        from napari.qt.threading import create_worker

        plate, site = self.session.plate, self.session.shown_site
        if plate is None or site is None:
            return
        if self._preview_worker is not None:
            self._preview_pending = True
            return
        try:
            options = self.options()
        except ValueError as error:
            self.status.setText(str(error))
            return
        self.status.setText(f"Preprocessing {site.name}…")
        worker = create_worker(worker_call, _preview_job, plate, site, options)
        worker.returned.connect(self._show_preview)
        worker.finished.connect(self._preview_done)
        self._preview_worker = worker
        worker.start()

    def _preview_done(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self._preview_pending = False
            self.preview()

    def _show_preview(self, outcome) -> None:
        result, error = outcome
        if error is not None:
            self.status.setText(f"Preview failed: {describe_error(error)}")
            return
        site, pixels = result
        if site != self.session.shown_site:
            self._preview_pending = True  # the image moved on: preprocess the site shown now
            return
        plate = self.session.plate
        scale = layer_scale(plate)
        offset = [(full - part) // 2 * s for full, part, s in zip(plate.shape, pixels.shape[1:], scale)]
        for index, channel in enumerate(plate.channels):
            name = PREVIEW_PREFIX + channel
            if name in self.viewer.layers:
                layer = self.viewer.layers[name]
                layer.data = pixels[index]
                layer.translate = offset
            else:
                self.viewer.add_image(pixels[index], name=name, colormap=channel_colormap(channel, index),
                                      blending="additive", scale=scale, translate=offset,
                                      contrast_limits=contrast_limits(pixels[index]))
        self.status.setText(f"{site.name}: {', '.join(self.options().steps) or 'no step'} "
                            f"({pixels.shape[1]} x {pixels.shape[2]}, float32).")

    # -- illumination ----------------------------------------------------------------
    def compute_illumination(self) -> None:
        """Estimate and save the plate's illumination functions in a background thread."""
        from napari.qt.threading import create_worker

        from ..images.corrected_loader import raw_plate
        from ..images.illumination import estimate_illumination

        plate, project = self.session.plate, self.session.project
        if plate is None or project is None or self._illumination_worker is not None:
            return
        self._cancel.clear()
        method = self.method.currentText()
        progress = relay_to(self._progress)

        def job():
            functions = estimate_illumination(raw_plate(plate), method=method, progress=progress,
                                              cancel=self._cancel)
            functions.save(project.folder)
            return functions

        worker = create_worker(worker_call, job)
        worker.returned.connect(self._illumination_done)
        worker.errored.connect(lambda error: self.status.setText(f"Illumination failed: {describe_error(error)}"))
        worker.finished.connect(self._illumination_ended)
        self._illumination_worker = worker
        self.compute_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Estimating {method} illumination from {plate.n_sites()} sites…")
        worker.start()

    def _progress(self, args) -> None:
        done, total = args
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _illumination_done(self, outcome) -> None:
        functions, error = outcome
        if error is not None:
            self.status.setText(describe_error(error, self.session.project.folder))
            return
        flat = functions.flatfield
        ranges = ", ".join(f"{c} {flat[i].min():.2f}-{flat[i].max():.2f}" for i, c in enumerate(functions.channels))
        self.status.setText(f"{functions.method} illumination saved ({functions.provenance['n_sites']} sites; {ranges}).")
        if self.apply_box.isChecked():
            self.set_applied(True)

    def _illumination_ended(self) -> None:
        self._illumination_worker = None
        self.compute_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def set_applied(self, applied: bool) -> None:
        """Record whether the plate is read corrected, and reopen the session's plate so."""
        from ..images.corrected_loader import corrected_plate, raw_plate, record_illumination

        plate, project = self.session.plate, self.session.project
        if plate is None or project is None:
            return
        method = self.method.currentText()
        try:
            record_illumination(project.folder, method=method, applied=applied)
            new = corrected_plate(raw_plate(plate), project.folder, method) if applied else raw_plate(plate)
        except (OSError, ValueError, KeyError) as error:
            self.apply_box.blockSignals(True)
            self.apply_box.setChecked(False)
            self.apply_box.blockSignals(False)
            self.status.setText(describe_error(error, project.folder))
            return
        shown = self.session.shown_site
        self.session.set_plate(new, project_dir=project.folder)
        if shown is not None:
            self.session.request_site(shown)
        self.status.setText(f"Plate read {'corrected (' + method + ')' if applied else 'raw'} from now on.")

    def close_workers(self) -> None:
        """Cancel a running illumination estimate (the viewer is closing)."""
        self._cancel.set()
