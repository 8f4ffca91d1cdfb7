"""The "Train" tab: train a random forest or a CNN, list the project's models, predict.

:class:`TrainPanel` trains with :func:`napari_hcs.classify.train_classifier` and
predicts with :func:`napari_hcs.classify.predict_with` in worker threads; their
progress reaches the panel through Qt signals emitted from the worker, Cancel
sets a :class:`threading.Event` the worker checks. A CNN cancelled after an
epoch keeps its best epoch so far. Predictions are saved in the project by the
worker, then handed to the session (``set_predictions``), which every panel and
overlay follows. Problems (one labelled class, a model that does not fit the
plate, a read-only project folder) are said in the status line in words.
"""

from __future__ import annotations

import re
import threading

from magicgui.widgets import Container, SpinBox
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..cancel import Cancelled
from ..vocabulary import CLASSIFIER_KINDS
from .workers import describe_error, relay_to, worker_call
from .training_plot import (TrainingPlot, as_number, cnn_form, form_config, form_widgets, model_list_words,
                            offer_within_columns, set_form_config, trained_words)

__all__ = ["PREDICT_SCOPES", "TrainPanel"]

KIND_LABELS = {"forest": "Random forest (features)", "cnn": "CNN (crops)"}
#: Where a prediction runs: key, words for the user.
PREDICT_SCOPES = {"site": "current site", "wells": "selected wells", "plate": "whole plate"}
MODEL_ROLE = Qt.ItemDataRole.UserRole


class TrainPanel(QWidget):
    """Train a classifier, choose a model, predict.

    Parameters
    ----------
    session : Session
        The viewer's session (project, cells, models, predictions).
    viewer : napari.Viewer, optional
        Not needed; accepted like every panel.

    Signals
    -------
    training_finished(object)
        The :class:`~napari_hcs.project.ModelRecord` trained, or the error that stopped it.
    prediction_finished(object)
        The project's whole "predictions" group after saving, or the error.
    """

    training_finished = Signal(object)
    prediction_finished = Signal(object)

    def __init__(self, session, viewer=None, parent=None):
        super().__init__(parent)
        self.session = session
        self.viewer = viewer
        self.confirm_removal = True
        self._train_worker = self._predict_worker = None
        self._cancel_training = threading.Event()
        self._cancel_prediction = threading.Event()
        events = (self._cancel_training, self._cancel_prediction)
        self.destroyed.connect(lambda *_: [event.set() for event in events])
        self._build()
        session.models_changed.connect(self._fill_models)
        session.model_selected.connect(self._on_model_selected)
        session.project_changed.connect(self._on_project_changed)
        session.plate_changed.connect(self._offer_within_columns)
        session.annotations_changed.connect(self._offer_within_columns)
        self._offer_within_columns()
        self._fill_models(session.models.names() if session.models is not None else [])
        self._kind_changed()

    # -- layout ---------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_train())
        layout.addWidget(self._build_models())
        layout.addWidget(self._build_predict())
        self.status = QLabel("Label wells (Plate tab) or cells, then train.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _build_train(self) -> QGroupBox:
        box = QGroupBox("Train")
        self.kind = QComboBox()
        for kind in CLASSIFIER_KINDS:
            self.kind.addItem(KIND_LABELS[kind], kind)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.name = QLineEdit()
        self.name.setToolTip("Models are saved in the project under this name (letters, digits, - _ .).")
        self.forest_form = Container(widgets=[SpinBox(name="n_trees", label="trees", min=10, max=5000, step=50,
                                                      value=300)])
        self.forest_form.margins = (0, 0, 0, 0)
        self.cnn_form = cnn_form()
        form_widgets(self.cnn_form)["device"].changed.connect(self._show_device)
        self.device = QLabel()
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.cancel_train_button = QPushButton("Cancel")
        self.cancel_train_button.setEnabled(False)
        self.cancel_train_button.clicked.connect(self.cancel_training)
        self.train_progress = QProgressBar()
        self.plot = TrainingPlot()
        form = QFormLayout(box)
        form.addRow("classifier", self.kind)
        form.addRow("name", self.name)
        form.addRow(self.forest_form.native)
        form.addRow(self.cnn_form.native)
        form.addRow(self.device)
        form.addRow(self._row(self.train_button, self.cancel_train_button))
        form.addRow(self.train_progress)
        form.addRow(self.plot)
        return box

    def _build_models(self) -> QGroupBox:
        box = QGroupBox("Models")
        self.model_list = QListWidget()
        self.model_list.setFixedHeight(70)
        self.model_list.itemClicked.connect(lambda item: self.select_model(item.data(MODEL_ROLE)))
        self.remove_button = QPushButton("Remove model")
        self.remove_button.clicked.connect(lambda: self.remove_model(confirm=self.confirm_removal))
        self.import_button = QPushButton("Import model…")
        self.import_button.setToolTip("Copy a model trained in another project (a .pt or .forest.joblib file)")
        self.import_button.clicked.connect(self._choose_import)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(box)
        layout.addWidget(self.model_list)
        layout.addLayout(buttons)
        return box

    def _choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", "", "Models (*.pt *.forest.joblib)")
        if path:
            self.import_model(path)

    def import_model(self, path) -> str | None:
        """Copy a model of another project in and select it; the status says what happened."""
        if self.session.models is None:
            self.status.setText("Open a plate first.")
            return None
        try:
            name = self.session.models.import_model(path)
        except (OSError, ValueError) as error:
            self.status.setText(f"Could not import {path}: {describe_error(error)}")
            return None
        self.session.refresh_models()
        self.session.select_model(name)
        self.status.setText(f"Imported model {name}; predicting checks its channels and crop size first.")
        return name

    def _build_predict(self) -> QGroupBox:
        box = QGroupBox("Predict")
        self.scope = QComboBox()
        for key, words in PREDICT_SCOPES.items():
            self.scope.addItem(words, key)
        self.scope.setCurrentIndex(list(PREDICT_SCOPES).index("plate"))
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(lambda: self.predict())
        self.cancel_predict_button = QPushButton("Cancel")
        self.cancel_predict_button.setEnabled(False)
        self.cancel_predict_button.clicked.connect(self.cancel_prediction)
        self.predict_progress = QProgressBar()
        layout = QVBoxLayout(box)
        layout.addWidget(self._row(self.scope, self.predict_button, self.cancel_predict_button))
        layout.addWidget(self.predict_progress)
        return box

    @staticmethod
    def _row(*widgets) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget)
        return row

    # -- state ----------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        """True while a training or a prediction runs."""
        return self._train_worker is not None or self._predict_worker is not None

    @property
    def kind_value(self) -> str:
        """The classifier chosen: ``"forest"`` or ``"cnn"``."""
        return self.kind.currentData()

    def set_kind(self, kind: str) -> None:
        """Choose the classifier (``"forest"`` or ``"cnn"``)."""
        self.kind.setCurrentIndex(list(CLASSIFIER_KINDS).index(kind))

    def cnn_options(self) -> dict:
        """The CNN form's widgets by option name (``model``, ``depth``, ``epochs``, ...)."""
        return form_widgets(self.cnn_form)

    def _kind_changed(self, *_) -> None:
        cnn = self.kind_value == "cnn"
        self.cnn_form.visible = cnn
        self.forest_form.visible = not cnn
        self.plot.setVisible(cnn)  # a forest has no epochs to plot
        self._show_device()
        self._suggest_name(force=False)

    def _on_project_changed(self, *_) -> None:
        self._suggest_name(force=True)

    def _offer_within_columns(self, *_) -> None:
        offer_within_columns(self.cnn_form, self.session.plate)

    def _show_device(self, *_) -> None:
        if self.kind_value != "cnn":
            self.device.setText("device: CPU (a forest trains in seconds)")
            return
        from ..classify import device_description

        try:
            self.device.setText(f"device: {device_description(self.cnn_options()['device'].value)}")
        except (ValueError, RuntimeError) as error:
            self.device.setText(f"device: {error}")

    def _suggest_name(self, *, force: bool) -> None:
        """Put the next free ``<kind>-<n>`` name in, unless the user typed their own."""
        text = self.name.text().strip()
        if not force and text and not re.fullmatch(r"(forest|cnn)-\d+", text):
            return
        names = set(self.session.models.names()) if self.session.models is not None else set()
        number = 1
        while f"{self.kind_value}-{number}" in names:
            number += 1
        self.name.setText(f"{self.kind_value}-{number}")

    def request(self):
        """The :class:`~napari_hcs.classify.TrainRequest` the form holds (ValueError when bad)."""
        from ..classify import TrainRequest

        name = self.name.text().strip()
        if not name:
            raise ValueError("Give the model a name first.")
        if self.kind_value == "cnn":
            return TrainRequest(name=name, kind="cnn", config=form_config(self.cnn_form))
        return TrainRequest(name=name, kind="forest", n_trees=self.forest_form.n_trees.value)

    # -- training -------------------------------------------------------------------
    def train(self) -> bool:
        """Train the classifier set in the form, in a worker thread.

        Returns False (and says why in the status line) when it cannot start.
        """
        from napari.qt.threading import create_worker

        from ..classify import train_classifier

        if self._train_worker is not None:
            return False
        problem = self._missing_cells()
        try:
            request = None if problem else self.request()
        except ValueError as error:
            problem = str(error)
        if problem:
            self.status.setText(problem)
            return False
        self._cancel_training.clear()
        self.plot.clear()
        self.train_progress.setRange(0, 0)
        worker = create_worker(worker_call, train_classifier, self.session.project, request,
                               progress=relay_to(self._on_train_args), cancel=self._cancel_training)
        worker.returned.connect(self._trained)
        worker.errored.connect(lambda error: self._trained((None, error)))
        self._train_worker = worker
        self._set_training(True)
        self.status.setText(f"Training {request.name} ({KIND_LABELS[request.kind]})…")
        worker.start()
        return True

    def cancel_training(self) -> None:
        """Stop the training: a CNN keeps its best epoch so far (after at least one epoch)."""
        if self._train_worker is not None:
            self._cancel_training.set()
            self.status.setText("Cancelling: a CNN keeps its best epoch so far…")

    def _missing_cells(self) -> str | None:
        if self.session.project is None:
            return "Open a plate first (Plate tab)."
        if self.session.cells is None or self.session.cells.empty:
            return "The project has no cells yet: segment the plate first (Segment tab)."
        return None

    def _on_train_args(self, args: tuple) -> None:
        self._on_train_event(*args)

    def _on_predict_args(self, args: tuple) -> None:
        self._on_predict_progress(*args)

    def _on_train_event(self, event: dict) -> None:
        if event.get("kind") == "epoch":
            self.plot.add_epoch(event)
            self.train_progress.setRange(0, int(event.get("epochs", 0)) or 1)
            self.train_progress.setValue(int(event.get("epoch", 0)))
            loss, accuracy = (as_number(event.get(key)) for key in ("val_loss", "val_accuracy"))
            self.status.setText(f"Epoch {event.get('epoch')}/{event.get('epochs')}: "
                                f"val loss {loss:.3f}, val accuracy {accuracy:.2f}")
        elif event.get("kind") == "step":
            self.train_progress.setRange(0, max(int(event.get("total", 1)), 1))
            self.train_progress.setValue(int(event.get("done", 0)))
            if event.get("text"):
                self.status.setText(str(event["text"]))

    def _trained(self, outcome) -> None:
        if self._train_worker is None:
            return
        record, error = outcome
        self._train_worker = None
        self._set_training(False)
        self.train_progress.setRange(0, 1)
        self.train_progress.setValue(1 if error is None else 0)
        if error is not None:
            if isinstance(error, Cancelled):
                self.status.setText("Training cancelled before the first epoch ended: no model was saved.")
            else:
                self.status.setText(f"Training failed: {describe_error(error, self.session.project.folder)}")
            self.training_finished.emit(error)
            return
        self.session.refresh_models()
        self.session.select_model(record.name)
        self.status.setText(trained_words(record))
        self._suggest_name(force=True)
        self.training_finished.emit(record)

    def _set_training(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.cancel_train_button.setEnabled(running)
        self.kind.setEnabled(not running)

    # -- models ---------------------------------------------------------------------
    def _fill_models(self, names: list[str]) -> None:
        self.model_list.clear()
        catalog = self.session.models
        for name in names:
            text, tip = model_list_words(catalog, name)
            item = QListWidgetItem(text)
            item.setToolTip(tip)
            item.setData(MODEL_ROLE, name)
            self.model_list.addItem(item)
        self._highlight(self.session.current_model)
        self._suggest_name(force=False)

    def model_names(self) -> list[str]:
        """Names of the models listed, newest first."""
        return [self.model_list.item(i).data(MODEL_ROLE) for i in range(self.model_list.count())]

    def select_model(self, name: str | None) -> None:
        """Make ``name`` the session's model: its history is shown in the plot, what it gave in the status."""
        try:
            self.session.select_model(name)
        except ValueError as error:
            self.status.setText(str(error))

    def _highlight(self, name: str | None) -> None:
        for i in range(self.model_list.count()):
            item = self.model_list.item(i)
            item.setSelected(item.data(MODEL_ROLE) == name)

    def _on_model_selected(self, name: str | None) -> None:
        """Show the selected model's history, what it gave, kind and settings (a retrain starts from them)."""
        self._highlight(name)
        if name is None or self._train_worker is not None:
            return
        try:
            record = self.session.models.record(name)
        except (OSError, ValueError, KeyError):
            return
        self.plot.set_history(record.history)
        self.status.setText(trained_words(record))
        if record.kind in CLASSIFIER_KINDS:
            self.set_kind(record.kind)
        if record.kind == "cnn" and record.settings:
            set_form_config(self.cnn_form, record.settings)
        elif record.kind == "forest" and record.settings.get("n_trees"):
            self.forest_form.n_trees.value = int(record.settings["n_trees"])

    def remove_model(self, name: str | None = None, *, confirm: bool = True) -> bool:
        """Remove a model (default: the selected one) from the project, after asking."""
        name = name or self.session.current_model
        if name is None:
            self.status.setText("Select a model to remove first.")
            return False
        if confirm and QMessageBox.question(self, "Remove model", f"Remove model {name!r} from the project?") \
                != QMessageBox.StandardButton.Yes:
            return False
        try:
            self.session.models.remove(name)
        except (OSError, ValueError, KeyError) as error:
            self.status.setText(f"Could not remove {name}: {describe_error(error, self.session.project.folder)}")
            return False
        if self.session.current_model == name:
            self.session.select_model(None)
        self.session.refresh_models()
        self.status.setText(f"Removed model {name}.")
        return True

    # -- prediction -----------------------------------------------------------------
    def predict(self, scope: str | None = None) -> bool:
        """Predict the cells of ``scope`` (``"site"``, ``"wells"`` or ``"plate"``; default:
        the one chosen) with the session's model, in a worker thread."""
        from napari.qt.threading import create_worker

        scope = scope or self.scope.currentData()
        if self._predict_worker is not None:
            return False
        problem = self._missing_cells() or (None if self.session.current_model else
                                            "Train or select a model first.")
        indices = None
        if problem is None:
            indices, problem = self._scope_indices(scope)
        if problem:
            self.status.setText(problem)
            return False
        self._cancel_prediction.clear()
        self.predict_progress.setValue(0)
        from ..classify import predict_and_save

        worker = create_worker(worker_call, predict_and_save, self.session.project, self.session.current_model,
                               crop_indices=indices, device=self.cnn_options()["device"].value,
                               progress=relay_to(self._on_predict_args), cancel=self._cancel_prediction)
        worker.returned.connect(lambda outcome: self._predicted(outcome, scope))
        worker.errored.connect(lambda error: self._predicted((None, error), scope))
        self._predict_worker = worker
        self._set_predicting(True)
        self.status.setText(f"Predicting the {PREDICT_SCOPES[scope]} with {self.session.current_model}…")
        worker.start()
        return True

    def _scope_indices(self, scope: str):
        from ..classify import scope_indices

        if scope not in PREDICT_SCOPES:
            raise ValueError(f"Unknown scope {scope!r}; expected one of {', '.join(PREDICT_SCOPES)}.")
        cells = self.session.cells
        if scope == "plate":
            return None, None
        if scope == "wells":
            wells = list(self.session.selected_wells)
            return (scope_indices(cells, wells=wells), None) if wells else \
                (None, "Select wells on the plate map first.")
        site = self.session.shown_site or self.session.current_site
        return (scope_indices(cells, site=site), None) if site else (None, "Show a site first.")

    def cancel_prediction(self) -> None:
        """Stop the prediction; nothing of it is saved."""
        if self._predict_worker is not None:
            self._cancel_prediction.set()
            self.status.setText("Cancelling the prediction…")

    def _on_predict_progress(self, done: int, total: int) -> None:
        self.predict_progress.setMaximum(max(total, 1))
        self.predict_progress.setValue(done)

    def _predicted(self, outcome, scope: str) -> None:
        if self._predict_worker is None:
            return
        result, error = outcome
        self._predict_worker = None
        self._set_predicting(False)
        if error is not None:
            words = "Prediction cancelled: nothing was saved." if isinstance(error, Cancelled) else \
                f"Prediction failed: {describe_error(error, self.session.project.folder)}"
            self.status.setText(words)
            self.prediction_finished.emit(error)
            return
        frame, saved = result
        self.predict_progress.setValue(self.predict_progress.maximum())
        self.session.set_predictions(saved)
        counts = frame["pred_class"].value_counts()
        shares = ", ".join(f"{name} {count}" for name, count in counts.items())
        self.status.setText(f"Predicted {len(frame)} cells of the {PREDICT_SCOPES[scope]} with "
                            f"{self.session.current_model}: {shares}.")
        self.prediction_finished.emit(saved)

    def _set_predicting(self, running: bool) -> None:
        self.predict_button.setEnabled(not running)
        self.cancel_predict_button.setEnabled(running)

