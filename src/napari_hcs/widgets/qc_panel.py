"""The "Quality control" section: run QC on the plate, a heat map of any QC metric, a well's sites.

:class:`QcPanel` runs :func:`napari_hcs.images.qc_run.run_qc` in a worker thread
(progress bar, Cancel), then colours the plate map by the median of a QC metric
over each well's sites for one channel (:func:`well_metric`, colours from
:func:`metric_colours`), with wells holding a flagged site outlined in red.
Clicking a well lists its sites sorted by the metric, flagged ones in red with
their reasons; clicking a site shows it (``session.request_site``). "Keep site"
keeps a flagged site in training and profiles, "Exclude site" leaves it out
again (:class:`~napari_hcs.images.site_exclusions.SiteExclusions`).

The table functions here (:func:`well_metric`, :func:`well_sites`,
:func:`metric_colours`) import nothing from Qt.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from qtpy.QtCore import QSignalBlocker, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..cancel import Cancelled
from .plate_map import PlateMap
from .workers import describe_error, relay_to, worker_call

__all__ = ["FLAG_COLOUR", "QcPanel", "QcPlateMap", "metric_colours", "well_metric", "well_sites"]

#: Outline of a well holding a flagged site, and text of a flagged site in the list.
FLAG_COLOUR = "#ff3030"
#: Colormap of the heat map (napari's names).
HEAT_COLORMAP = "viridis"
SITE_ROLE = Qt.ItemDataRole.UserRole
_IDENTITY = ("plate", "well", "field", "timepoint", "site_key", "channel", "error", "flags", "reasons")


def qc_metrics(table: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a QC table, in its order."""
    return [c for c in table.columns if c not in _IDENTITY and pd.api.types.is_numeric_dtype(table[c])
            and table[c].notna().any()]


def well_metric(table: pd.DataFrame, metric: str, channel: str) -> pd.Series:
    """The median of ``metric`` over each well's sites, for one channel (index: well).

    Examples
    --------
    >>> table = pd.DataFrame({"well": ["B02", "B02", "B04"], "channel": "DAPI", "focus_score": [1.0, 3.0, 5.0]})
    >>> well_metric(table, "focus_score", "DAPI").to_dict()
    {'B02': 2.0, 'B04': 5.0}
    """
    rows = table[table["channel"] == channel]
    return rows.groupby("well", sort=True)[metric].median().dropna()


def well_sites(table: pd.DataFrame, well: str, metric: str, channel: str) -> pd.DataFrame:
    """A well's sites sorted by ``metric`` (of ``channel``), with each site's flags and reasons over all channels.

    Returns
    -------
    DataFrame
        ``site_key``, ``field``, ``timepoint``, ``value``, ``flags`` (sorted, ``;``-joined)
        and ``reasons``, one row per site, lowest value first (sites without a value last).
    """
    rows = table[table["well"] == well]
    flags = rows.groupby("site_key")["flags"].agg(lambda v: ";".join(sorted({f for s in v for f in str(s).split(";")
                                                                            if f})))
    said = rows["channel"].astype(str) + ": " + rows["reasons"].astype(str)
    reasons = said.where(rows["reasons"] != "", "").groupby(rows["site_key"]).agg(
        lambda v: "; ".join(dict.fromkeys(r for r in v if r)))
    sites = rows.drop_duplicates("site_key").set_index("site_key")[["field", "timepoint"]]
    values = rows[rows["channel"] == channel].set_index("site_key")[metric]
    out = sites.assign(value=values.reindex(sites.index), flags=flags, reasons=reasons).reset_index()
    return out.sort_values(["value", "site_key"], na_position="last").reset_index(drop=True)


def metric_colours(values: pd.Series, colormap: str = HEAT_COLORMAP) -> dict[str, str]:
    """``{well: "#rrggbb"}``: each well's value on ``colormap``, from the lowest to the highest value."""
    from napari.utils.colormaps import ensure_colormap

    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    if finite.empty:
        return {}
    low, high = float(finite.min()), float(finite.max())
    scaled = (finite.to_numpy(dtype=float) - low) / (high - low) if high > low else np.full(len(finite), 0.5)
    rgba = ensure_colormap(colormap).map(scaled)
    return {str(w): QColor.fromRgbF(*map(float, c[:3])).name() for w, c in zip(finite.index, rgba)}


class QcPlateMap(PlateMap):
    """The plate map with wells that hold a flagged site outlined in :data:`FLAG_COLOUR`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._flagged: set[str] = set()

    def set_flagged_wells(self, wells) -> None:
        self._flagged = set(wells)
        self.update()

    @property
    def flagged_wells(self) -> set[str]:
        return set(self._flagged)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().paintEvent(event)
        if not self._flagged:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for well in self._flagged:
            rect = self.well_rect(well)
            painter.setPen(QPen(QColor(FLAG_COLOUR), max(2.0, rect.width() * 0.12)))
            painter.drawEllipse(rect.adjusted(1.5, 1.5, -1.5, -1.5))
        painter.end()


class QcPanel(QWidget):
    """The "Quality control" section of the dock.

    Parameters
    ----------
    session : Session
        The viewer's session (plate, project, shown site).
    napari_viewer : napari.Viewer, optional
        Not needed; accepted like every panel.

    Signals
    -------
    qc_finished(object)
        The :class:`~napari_hcs.images.qc_run.QcResult`, or the error that stopped the run.
    """

    qc_finished = Signal(object)

    def __init__(self, session, napari_viewer=None, parent=None):
        super().__init__(parent)
        self.session = session
        self.viewer = napari_viewer
        self.table: pd.DataFrame | None = None
        self.current_well: str | None = None
        self._worker = None
        self._cancel = threading.Event()
        cancel = self._cancel
        self.destroyed.connect(lambda *_: cancel.set())
        self._build()
        session.plate_changed.connect(self._on_plate)
        session.project_changed.connect(lambda *_: self.reload())
        session.site_shown.connect(self._on_site_shown)
        self._on_plate()

    # -- layout -----------------------------------------------------------------
    def _build(self) -> None:
        box = QGroupBox("Quality control")
        inner = QVBoxLayout(box)
        self.run_button = QPushButton("Run QC on the plate")
        self.run_button.setToolTip("Focus, saturation and intensity of every site and channel, flagged "
                                   "robustly per plate and channel (median / MAD); raw images.")
        self.run_button.clicked.connect(self.run_qc)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        inner.addWidget(_row(self.run_button, self.cancel_button, self.progress))
        form = QFormLayout()
        self.metric = QComboBox()
        self.channel = QComboBox()
        self.metric.currentTextChanged.connect(self.refresh)
        self.channel.currentTextChanged.connect(self.refresh)
        form.addRow("Metric:", self.metric)
        form.addRow("Channel:", self.channel)
        inner.addLayout(form)
        self.plate_map = QcPlateMap()
        self.plate_map.well_clicked.connect(lambda well, _modifiers: self.show_well(well))
        inner.addWidget(self.plate_map)
        self.scale = QLabel()
        self.scale.setWordWrap(True)
        inner.addWidget(self.scale)
        self.sites_label = QLabel("Click a well to list its sites.")
        inner.addWidget(self.sites_label)
        self.site_list = QListWidget()
        self.site_list.setMinimumHeight(120)
        self.site_list.itemClicked.connect(self._site_clicked)
        self.site_list.currentItemChanged.connect(lambda *_: self._update_buttons())
        inner.addWidget(self.site_list)
        self.site_details = QLabel()
        self.site_details.setWordWrap(True)
        self.site_details.setStyleSheet(f"color: {FLAG_COLOUR}")
        inner.addWidget(self.site_details)
        self.keep_button = QPushButton("Keep site")
        self.keep_button.setToolTip("Keep this flagged site in training and profiles.")
        self.keep_button.clicked.connect(lambda: self._set_kept(True))
        self.exclude_button = QPushButton("Exclude site")
        self.exclude_button.setToolTip("Leave this flagged site out of training and profiles again.")
        self.exclude_button.clicked.connect(lambda: self._set_kept(False))
        inner.addWidget(_row(self.keep_button, self.exclude_button))
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._update_buttons()

    # -- state ------------------------------------------------------------------
    def _on_plate(self, *_) -> None:
        plate = self.session.plate
        if plate is not None:
            self.plate_map.set_layout(plate.n_rows, plate.n_columns, plate.wells)
        self.current_well = None
        self.reload()

    def _on_site_shown(self, site) -> None:
        if site is not None and self.session.plate is not None:
            self.plate_map.set_current_well(site.well)

    def _exclusions(self):
        from ..images.site_exclusions import SiteExclusions

        return SiteExclusions(self.session.project.folder)

    def reload(self) -> None:
        """Read the project's QC table (if quality control has run) and redraw."""
        from ..images.qc_run import read_qc_table

        project = self.session.project
        self.table = read_qc_table(project.folder) if project is not None else None
        metrics = qc_metrics(self.table) if self.table is not None else []
        channels = list(dict.fromkeys(self.table["channel"])) if self.table is not None else []
        for combo, items, preferred in ((self.metric, metrics, "power_log_log_slope"),
                                        (self.channel, channels, None)):
            current = combo.currentText()
            with QSignalBlocker(combo):
                combo.clear()
                combo.addItems(items)
                choice = current if current in items else (preferred if preferred in items else None)
                combo.setCurrentIndex(items.index(choice) if choice in items else (0 if items else -1))
        if self.table is None:
            self.status.setText("Quality control has not run on this plate yet." if project is not None
                                else "Open a plate first (Plate tab).")
        self.refresh()

    def refresh(self, *_) -> None:
        """Redraw the heat map, the flagged wells and the current well's sites."""
        table, metric, channel = self.table, self.metric.currentText(), self.channel.currentText()
        if table is None or not metric or not channel:
            self.plate_map.set_well_colors({})
            self.plate_map.set_flagged_wells(())
            self.scale.setText("")
            self._fill_sites()
            return
        values = well_metric(table, metric, channel)
        self.plate_map.set_well_colors(metric_colours(values))
        flagged = table[table["flags"] != ""]
        self.plate_map.set_flagged_wells(flagged["well"].unique())
        self.plate_map.set_well_tooltips({
            str(w): f"{w}: {metric} {v:.4g} ({channel})" for w, v in values.items()})
        if len(values):
            self.scale.setText(f"{metric} of {channel}, median per well: {values.min():.4g} (dark) to "
                               f"{values.max():.4g} (yellow). Red ring: a flagged site "
                               f"({flagged['site_key'].nunique()} site(s) on the plate).")
        self._fill_sites()

    def show_well(self, well: str) -> None:
        """List the sites of ``well`` sorted by the metric."""
        self.current_well = well
        self.plate_map.set_current_well(well)
        self._fill_sites()

    def _fill_sites(self) -> None:
        self.site_list.clear()
        well, table = self.current_well, self.table
        if well is None or table is None or not self.metric.currentText():
            self.sites_label.setText("Click a well to list its sites." if table is not None else "")
            self._update_buttons()
            return
        metric, channel = self.metric.currentText(), self.channel.currentText()
        sites = well_sites(table, well, metric, channel)
        self.sites_label.setText(f"Sites of {well} by {metric} ({channel}), lowest first:")
        exclusions = self._exclusions()
        kept = exclusions.kept()
        for row in sites.itertuples(index=False):
            value = "n/a" if pd.isna(row.value) else f"{row.value:.4g}"
            text = f"f{row.field} t{row.timepoint}   {value}"
            if row.flags:
                state = "kept" if row.site_key in kept else "excluded"
                text += f"   ⚑ {row.flags.replace(';', ', ')} ({state})"
            item = QListWidgetItem(text)
            item.setData(SITE_ROLE, {"key": row.site_key, "field": int(row.field), "timepoint": int(row.timepoint),
                                     "flagged": bool(row.flags), "kept": row.site_key in kept,
                                     "reasons": row.reasons})
            item.setToolTip(f"{row.site_key}: {row.reasons}" if row.flags else row.site_key)
            if row.flags:
                item.setForeground(QColor(FLAG_COLOUR))
            self.site_list.addItem(item)
        self._update_buttons()

    def _site(self, data: dict):
        from ..plate import Site

        return Site(self.current_well, data["field"], data["timepoint"])

    def _site_clicked(self, item: QListWidgetItem) -> None:
        data = item.data(SITE_ROLE)
        try:
            self.session.request_site(self._site(data))
        except ValueError as error:
            self.status.setText(str(error))

    def _update_buttons(self) -> None:
        item = self.site_list.currentItem()
        data = item.data(SITE_ROLE) if item is not None else None
        self.keep_button.setEnabled(bool(data and data["flagged"] and not data["kept"]))
        self.exclude_button.setEnabled(bool(data and data["flagged"] and data["kept"]))
        self.site_details.setText(f"{data['key']}: {data['reasons']}" if data and data["flagged"] else "")

    def _set_kept(self, keep: bool) -> None:
        item = self.site_list.currentItem()
        if item is None or self.session.project is None:
            return
        key = item.data(SITE_ROLE)["key"]
        try:
            (self._exclusions().keep if keep else self._exclusions().exclude)([key])
        except OSError as error:
            self.status.setText(describe_error(error, self.session.project.folder))
            return
        self.status.setText(f"{key} is {'kept in' if keep else 'left out of'} training and profiles.")
        row = self.site_list.currentRow()
        self._fill_sites()
        self.site_list.setCurrentRow(row)

    # -- running ------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._worker is not None

    def run_qc(self) -> bool:
        """Start quality control of the plate in a worker; False when there is no plate or it runs already."""
        from napari.qt.threading import create_worker

        from ..images.qc_run import run_qc

        if self._worker is not None:
            return False
        if self.session.plate is None or self.session.project is None:
            self.status.setText("Open a plate first (Plate tab).")
            return False
        self._cancel.clear()
        self.progress.setRange(0, self.session.plate.n_sites())
        self.progress.setValue(0)
        worker = create_worker(worker_call, run_qc, self.session.plate, project_dir=self.session.project.folder,
                               progress=relay_to(self._on_progress), cancel=self._cancel)
        worker.returned.connect(self._finished)
        worker.errored.connect(lambda error: self._finished((None, error)))
        self._worker = worker
        self._set_running(True)
        self.status.setText(f"Quality control of {self.session.plate.n_sites()} site(s)…")
        worker.start()
        return True

    def cancel(self) -> None:
        """Stop quality control: nothing is written, an earlier QC table is kept."""
        if self._worker is not None:
            self._cancel.set()
            self.status.setText("Cancelling quality control…")

    def _on_progress(self, args: tuple) -> None:
        done, total = args
        self.progress.setRange(0, max(int(total), 1))
        self.progress.setValue(int(done))

    def _finished(self, outcome) -> None:
        if self._worker is None:
            return
        result, error = outcome
        self._worker = None
        self._set_running(False)
        if error is not None:
            words = "Quality control cancelled: nothing was written." if isinstance(error, Cancelled) else \
                f"Quality control failed: {describe_error(error, self.session.project.folder)}"
            self.status.setText(words)
            self.qc_finished.emit(error)
            return
        flagged = result.summary.get("flagged", {})
        self.status.setText(f"Quality control done: {len(result.flags)} site(s), {len(flagged)} flagged"
                            + (f" ({', '.join(sorted(flagged))})." if flagged else "."))
        self.reload()
        self.qc_finished.emit(result)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)


def _row(*widgets) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return row
