"""The "Inspect" tab: where the selected model errs, and which cells to label next.

:class:`InspectPanel` shows the confusion matrix of the selected model's
validation (or test) cells (:class:`~napari_hcs.widgets.confusion_view.ConfusionView`);
clicking a count fills the gallery
(:class:`~napari_hcs.widgets.crop_gallery.CropGallery`) with those cells' crops,
most confident first. "Most uncertain cells" fills it with the plate's cells
whose prediction is least sure (smallest margin between the top two classes, or
highest entropy), leaving out cells a user labelled already. From the gallery a
click shows the cell in the viewer, and "Label selected" labels cells;
"Retrain" emits ``retrain_requested`` (the main dock trains a new model with
the Train tab's settings).
"""

from __future__ import annotations

import pandas as pd
from qtpy.QtCore import QSignalBlocker, Signal
from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..vocabulary import CROP_INDEX, UNCERTAINTY_MEASURES
from .confusion_view import ConfusionView
from .crop_gallery import CropGallery

__all__ = ["InspectPanel"]

SPLIT_WORDS = {"val": "validation cells", "test": "test cells"}


class InspectPanel(QWidget):
    """Confusion matrix, gallery of crops, most uncertain cells, retrain.

    Parameters
    ----------
    session : Session
        The viewer's session (selected model, predictions, cell labels).
    viewer : napari.Viewer, optional
        Whose image layers colour the crops.

    Signals
    -------
    retrain_requested()
        The user asked to train again (after labelling cells).
    """

    retrain_requested = Signal()

    def __init__(self, session, viewer=None, parent=None):
        super().__init__(parent)
        self.session = session
        self.viewer = viewer
        self.evaluation: pd.DataFrame | None = None
        self._build()
        session.model_selected.connect(self._on_model_selected)
        session.models_changed.connect(self._on_models_changed)
        session.predictions_changed.connect(self._on_predictions)
        self._on_model_selected(session.current_model)
        self._on_predictions(session.predictions)

    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.split = QComboBox()
        self.split.currentIndexChanged.connect(self._show_confusion)
        self.confusion = ConfusionView()
        self.confusion.cell_clicked.connect(self.show_confused)
        matrix = QGroupBox("Confusion matrix (rows: true class; columns: predicted)")
        box = QVBoxLayout(matrix)
        box.addWidget(self._row(QLabel("cells"), self.split, stretch_last=False))
        box.addWidget(self.confusion)
        self.measure = QComboBox()
        self.measure.addItems(list(UNCERTAINTY_MEASURES))
        self.measure.setToolTip("margin: smallest gap between the two likeliest classes; "
                                "entropy: most spread probabilities")
        self.count = QSpinBox(minimum=4, maximum=500, value=48)
        self.count.setToolTip("How many cells to propose")
        self.uncertain_button = QPushButton("Most uncertain cells")
        self.uncertain_button.clicked.connect(lambda: self.show_uncertain())
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Train a new model with the Train tab's settings and the labels given so far.")
        self.retrain_button.clicked.connect(self.retrain_requested.emit)
        learn = QGroupBox("Learn actively")
        rows = QVBoxLayout(learn)
        rows.addWidget(self._row(self.uncertain_button, self.measure, self.count))
        rows.addWidget(self.retrain_button)
        self.gallery = CropGallery(self.session, self.viewer)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addWidget(matrix)
        layout.addWidget(learn)
        layout.addWidget(self.gallery, 1)
        layout.addWidget(self.status)

    @staticmethod
    def _row(*widgets, stretch_last: bool = True) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget)
        if not stretch_last:
            layout.addStretch()
        return row

    # -- the model's evaluation ---------------------------------------------------------
    def _on_model_selected(self, name: str | None) -> None:
        self.evaluation, self.classes = None, []
        catalog = self.session.models
        if name is None or catalog is None:
            self.model_label.setText("Select or train a model (Train tab) to see where it errs.")
        else:
            try:
                record = catalog.record(name)
                self.evaluation = catalog.evaluation(name)
                self.classes = list(record.classes)
            except (OSError, ValueError, KeyError) as error:
                self.model_label.setText(f"Model {name} could not be read: {error}")
            else:
                self.model_label.setText(f"Model {name} ({record.kind}). {record.split}")
        splits = [] if self.evaluation is None else \
            [s for s in SPLIT_WORDS if (self.evaluation["split"] == s).any()]
        with QSignalBlocker(self.split):
            self.split.clear()
            for split in splits:
                self.split.addItem(SPLIT_WORDS[split], split)
        self._show_confusion()

    def _on_models_changed(self, *_) -> None:
        self._on_model_selected(self.session.current_model)

    def _split_cells(self) -> pd.DataFrame | None:
        if self.evaluation is None or self.split.currentData() is None:
            return None
        return self.evaluation[self.evaluation["split"] == self.split.currentData()]

    def _show_confusion(self, *_) -> None:
        from ..classify import confusion_counts

        cells = self._split_cells()
        if cells is None:
            self.confusion.set_counts(None)
            if self.evaluation is None and self.session.current_model:
                self.status.setText("This model has no evaluated cells (trained elsewhere).")
            return
        self.confusion.set_counts(confusion_counts(cells, self.classes))

    def show_confused(self, true_class: str, pred_class: str) -> int:
        """Fill the gallery with the cells of one confusion-matrix count (most confident first)."""
        from ..classify import confused_cells

        cells = self._split_cells()
        if cells is None:
            return 0
        chosen = confused_cells(cells, true_class, pred_class)
        verdict = "right" if true_class == pred_class else "wrong"
        self.gallery.show_cells(chosen, title=f"{true_class} predicted as {pred_class} ({verdict})")
        return len(chosen)

    # -- uncertain cells ----------------------------------------------------------------
    def _on_predictions(self, predictions) -> None:
        self.uncertain_button.setEnabled(predictions is not None and len(predictions) > 0)
        if predictions is None:
            self.uncertain_button.setToolTip("Predict the plate first (Train tab).")
        else:
            self.uncertain_button.setToolTip("Cells whose prediction is least sure, across the predicted cells.")

    def show_uncertain(self, by: str | None = None, n: int | None = None) -> int:
        """Fill the gallery with the most uncertain predicted cells that no user labelled."""
        from ..classify import most_uncertain

        predictions = self.session.predictions
        if predictions is None or predictions.empty:
            self.status.setText("Predict the plate first (Train tab).")
            return 0
        by = by or self.measure.currentText()
        labelled = self.session.cell_labels[CROP_INDEX].astype(int).tolist()
        chosen = most_uncertain(predictions, n=n or self.count.value(), by=by, exclude=labelled)
        self.gallery.show_cells(chosen, title=f"Most uncertain by {by}")
        self.status.setText("Label some of these cells (select, choose a class, 'Label selected'), then Retrain.")
        return len(chosen)

