"""The "Run" box: segment, crop and measure the session's plate into a project folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
)

from ..segmentation import SegmentationParams
from ..viewer.session import Session
from .workers import relay_to

__all__ = ["RunPanel"]

#: Failed and skipped entries named in the status text (all are in the summary).
SHOWN_PROBLEMS = 3


def _problems(summary: dict) -> str:
    """The first reasons of failed and skipped sites, one per line."""
    lines = [f"failed {f['site']}: {f['error']}" for f in summary["failures"]]
    lines += [f"skipped {s['where']}: {s['reason']}" for s in summary.get("skipped", [])]
    if not lines:
        return ""
    more = f"\n… and {len(lines) - SHOWN_PROBLEMS} more" if len(lines) > SHOWN_PROBLEMS else ""
    return "\n" + "\n".join(lines[:SHOWN_PROBLEMS]) + more


class RunPanel(QGroupBox):
    """Project folder, wells, workers, Run plate / Run selected wells / Cancel, progress.

    Parameters
    ----------
    session : Session
        The viewer's session (its plate is run).
    parameters : callable
        Returns the :class:`~napari_hcs.segmentation.SegmentationParams` to run with.
    crop_size : callable
        Returns the crop side in pixels.

    Signals
    -------
    progress_changed(int, int)
        ``(sites done, sites to do)``, in the GUI thread after each site.
    run_finished(dict)
        The run summary, or ``{"error": ...}``.
    status(str)
        A message for the user.
    """

    progress_changed = Signal(int, int)
    run_finished = Signal(object)
    status = Signal(str)

    def __init__(self, session: Session, *, parameters: Callable[[], SegmentationParams],
                 crop_size: Callable[[], int], parent=None):
        super().__init__("Run", parent)
        self.session = session
        self._parameters = parameters
        self._crop_size = crop_size
        self._worker = None
        self._cancel = threading.Event()
        self._build()

    def _build(self) -> None:
        self.project = QLineEdit()
        self.project.setPlaceholderText("project folder")
        browse = QPushButton("…")
        browse.clicked.connect(self._choose_project)
        self.wells = QListWidget()
        self.wells.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.wells.setMaximumHeight(90)
        self.workers = QSpinBox(minimum=1, maximum=64)
        self.measure = QCheckBox("measure features")
        self.measure.setChecked(True)
        self.run_plate_button = QPushButton("Run plate")
        self.run_plate_button.clicked.connect(self.run_plate)
        self.run_wells_button = QPushButton("Run selected wells")
        self.run_wells_button.clicked.connect(self.run_selected_wells)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        form = QFormLayout(self)
        project_row = QHBoxLayout()
        project_row.addWidget(self.project)
        project_row.addWidget(browse)
        form.addRow("project", project_row)
        form.addRow("wells", self.wells)
        form.addRow("workers", self.workers)
        form.addRow(self.measure)
        buttons = QHBoxLayout()
        for button in (self.run_plate_button, self.run_wells_button, self.cancel_button):
            buttons.addWidget(button)
        form.addRow(buttons)
        form.addRow(self.progress)

    def set_project_dir(self, folder: str | Path) -> None:
        """Set the project folder the run writes into (the session's project by default)."""
        self.project.setText(str(folder))

    def set_wells(self, wells: list[str]) -> None:
        """List the wells that can be selected."""
        self.wells.clear()
        self.wells.addItems(wells)

    def selected_wells(self) -> list[str]:
        """Wells selected in the list."""
        return [item.text() for item in self.wells.selectedItems()]

    def _choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder", self.project.text())
        if folder:
            self.project.setText(folder)

    # -- runs -----------------------------------------------------------------
    def run_plate(self) -> None:
        """Run every site of the plate."""
        self.run(selected_only=False)

    def run_selected_wells(self) -> None:
        """Run the sites of the wells selected in the list."""
        self.run(selected_only=True)

    def run(self, *, selected_only: bool = False) -> None:
        """Run the plate (or the selected wells) into the project folder, in a thread."""
        from napari.qt.threading import create_worker

        from ..pipeline import run_plate

        plate = self.session.plate
        if plate is None or self._worker is not None:
            return
        project = self.project.text().strip()
        wells = self.selected_wells() if selected_only else None
        if not project or (selected_only and not wells):
            self.status.emit("Choose a project folder first." if not project else "Select the wells to run first.")
            return
        self._cancel.clear()
        self.progress.setValue(0)
        worker = create_worker(
            run_plate, plate, Path(project), self._parameters(), crop_size=self._crop_size(), wells=wells,
            workers=self.workers.value(), features=self.measure.isChecked(),
            pattern=getattr(self.session, "pattern", None), progress=relay_to(self._on_progress_args),
            cancel=self._cancel.is_set,
        )
        worker.returned.connect(self._done)
        worker.errored.connect(self._failed)
        worker.finished.connect(self._ended)
        self._worker = worker
        self._set_running(True)
        self.status.emit("Running…")
        worker.start()

    def cancel(self) -> None:
        """Stop the run after the sites in progress (they are kept)."""
        self._cancel.set()
        if self._worker is not None:
            self.status.emit("Cancelling after the current site…")

    def _on_progress_args(self, args: tuple) -> None:
        self._show_progress(*args)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress_changed.emit(done, total)

    def _done(self, summary: dict) -> None:
        self._ended()
        if not summary["cancelled"]:
            self.progress.setValue(self.progress.maximum())
        state = "cancelled" if summary["cancelled"] else "done"
        self.status.emit(
            f"Run {state}: {summary['sites']} sites, {summary['cells']} cells, "
            f"{summary['skipped_done']} already done, {len(summary['failures'])} failed, "
            f"{len(summary.get('skipped', []))} skipped ({summary['seconds']:.0f} s).{_problems(summary)}"
        )
        self._show_cells(summary)
        self.run_finished.emit(summary)

    def _show_cells(self, summary: dict) -> None:
        """Make the run's project the session's and read its new cells."""
        folder = Path(summary.get("project", self.project.text().strip()))
        session = self.session
        if session.plate is None:
            return
        if session.project is None or folder.resolve() != session.project.folder.resolve():
            session.set_project_dir(folder)
        else:
            session.reload_cells()

    def _failed(self, error: Exception) -> None:
        self._ended()
        self.status.emit(f"Run failed: {error}")
        self.run_finished.emit({"error": str(error)})

    def _ended(self) -> None:
        self._worker = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_plate_button.setEnabled(not running)
        self.run_wells_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
