"""What the Train tab shows of training: the CNN options, the live plot, words about a model.

:func:`cnn_form` is a two-column magicgui form of the CNN options filled from
:class:`~napari_hcs.nn.TrainConfig` defaults; :func:`form_config` reads it back.
:func:`model_summary` and :func:`trained_words` say what a model record holds.
:class:`TrainingPlot` shows two matplotlib axes side by side, drawn with Agg in a
worker thread (:func:`render_history`). :meth:`TrainingPlot.add_epoch` takes the epoch events that
:func:`napari_hcs.classify.train_classifier` sends (``{"kind": "epoch",
"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", ...}``)
and redraws; :meth:`TrainingPlot.set_history` shows a saved model's history.
"""

from __future__ import annotations

import math

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, SpinBox
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from qtpy.QtCore import Signal
from qtpy.QtGui import QImage, QPalette, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy

from ..vocabulary import DEVICE_CHOICES, INTENSITY_SCALES, MODEL_NAMES

__all__ = ["TrainingPlot", "as_number", "cnn_form", "form_config", "form_widgets", "model_summary",
           "model_list_words", "self_training_words", "offer_within_columns", "set_form_config", "set_within_choices",
           "trained_words"]

#: Height of the plot in pixels: small enough to leave the dock room for the rest.
PLOT_HEIGHT = 150
SERIES = (("loss per epoch", "train_loss", "val_loss"), ("accuracy per epoch", "train_accuracy", "val_accuracy"))
TRAIN_COLOR, VAL_COLOR = "#0072b2", "#e69f00"
#: The "normalise within" choice of no column: each plate's statistics over all its cells.
WHOLE_PLATE = ("whole plate", "")
WITHIN_TOOLTIP = ("Each plate's crops are normalised with the plate's own statistics. A column here divides "
                  "every plate further, each part normalised on its own (timepoint: each timepoint as if it were "
                  "a plate). Right for a time course imaged with its controls at every timepoint; wrong where "
                  "the column is the phenotype.")


def cnn_form() -> Container:
    """The CNN options as a two-column magicgui form filled from :class:`TrainConfig` defaults."""
    from ..nn import TrainConfig  # torch is imported when the form is first made, not with the module

    defaults = TrainConfig()
    lr = FloatSpinBox(name="lr", label="lr", min=1e-6, max=1.0, step=1e-4, value=defaults.lr,
                      tooltip="Learning rate (Adam).")
    lr.native.setDecimals(5)
    input_size = SpinBox(name="input_size", label="input size", min=0, max=512, step=8, value=0,
                         tooltip="Network input side in pixels; 'crop size' keeps the crops as they are.")
    input_size.native.setSpecialValueText("crop size")
    left = Container(widgets=[
        ComboBox(name="model", label="network", choices=[m for m in MODEL_NAMES if m != "ae"], value=defaults.model),
        SpinBox(name="depth", label="depth", min=1, max=16, value=defaults.depth),
        SpinBox(name="width", label="width", min=1, max=16, value=defaults.width),
        SpinBox(name="epochs", label="epochs", min=1, max=1000, value=defaults.epochs),
        SpinBox(name="self_training", label="self-training", min=0, max=10, value=defaults.self_training,
                tooltip="Rounds of self-training: the unlabelled cells the model classifies with at least "
                f"{defaults.self_training_confidence:.0%} confidence join training with their predicted class, "
                "and the network is trained again (each round one more training). 0: none."),
        ComboBox(name="intensity", label="intensity", choices=list(INTENSITY_SCALES), value=defaults.intensity,
                 tooltip="log(1 + x) of each pixel (the default), or the crops as stored, before each plate's "
                 "statistics: the log compresses the bright tail of each channel."),
    ], labels=True)
    right = Container(widgets=[
        SpinBox(name="batch_size", label="batch", min=1, max=4096, value=defaults.batch_size),
        lr, input_size,
        ComboBox(name="device", label="device", choices=list(DEVICE_CHOICES), value=defaults.device),
        SpinBox(name="ensemble", label="seeds", min=1, max=10, value=defaults.ensemble,
                tooltip="Networks trained with successive seeds and averaged (each one more training)."),
        ComboBox(name="normalise_within", label="within", choices=[WHOLE_PLATE], value="", tooltip=WITHIN_TOOLTIP),
    ], labels=True)
    form = Container(widgets=[left, right], layout="horizontal", labels=False)
    form.margins = (0, 0, 0, 0)
    return form


def form_widgets(form: Container) -> dict:
    """The value widgets of a :func:`cnn_form` by option name."""
    return {widget.name: widget for column in form for widget in column}


def form_config(form: Container):
    """The :class:`~napari_hcs.nn.TrainConfig` a :func:`cnn_form` holds (ValueError naming a bad option)."""
    from ..nn import TrainConfig

    values = {name: widget.value for name, widget in form_widgets(form).items()}
    values["input_size"] = values["input_size"] or None
    return TrainConfig(**values)


def set_within_choices(form: Container, columns: list[str]) -> None:
    """Offer these columns for "normalise within", keeping the one chosen while it is offered."""
    widget = form_widgets(form)["normalise_within"]
    chosen = widget.value
    widget.choices = [WHOLE_PLATE] + [(column, column) for column in columns]
    widget.value = chosen if chosen in columns else ""


def offer_within_columns(form: Container, plate) -> None:
    """Offer the plate's timepoints and well annotations to normalise within (never the wells' class)."""
    from ..learn import dividing_columns  # the learning modules are imported when first needed
    from ..project import LABEL_COLUMN

    set_within_choices(form, dividing_columns(plate, class_column=LABEL_COLUMN) if plate is not None else [])


def _offer_within(form: Container, value: str) -> None:
    """Add a saved model's "normalise within" columns to the choices, so that the form can show them."""
    offered = [column for column in form_widgets(form)["normalise_within"].choices if column]
    if value and value not in offered:
        set_within_choices(form, offered + [value])


def _within_text(value) -> str:
    """A saved "normalise within" (text or column names) as the form's ``"COLUMN[,COLUMN]"``."""
    from ..learn.plates import within_columns  # the one reader of COLUMN[,COLUMN]

    return ",".join(within_columns(value))


def set_form_config(form: Container, settings: dict) -> None:
    """Put a model's saved settings (``TrainConfig.to_dict()``) into the form."""
    for name, widget in form_widgets(form).items():
        value = settings.get(name)
        if name == "input_size":
            value = value or 0
        if name == "intensity":
            value = value or "linear"  # models saved before the option kept the crops as stored
        if name == "normalise_within":
            value = _within_text(value)
            _offer_within(form, value)
        if value is not None:
            try:
                widget.value = value
            except (ValueError, TypeError):
                continue


def model_summary(record) -> str:
    """One line for the model list: name, kind, validation balanced accuracy."""
    value = ((record.metrics or {}).get("val") or {}).get("balanced_accuracy")
    score = f"val bal. acc {value:.2f}" if value is not None else "no validation"
    return f"{record.name}  ·  {record.kind}  ·  {score}" + (" (cancelled)" if record.cancelled else "")


def model_list_words(catalog, name: str) -> tuple[str, str]:
    """The model list's line for ``name`` and its tooltip: the summary, and what its training gave."""
    try:
        record = catalog.record(name)
    except (OSError, ValueError, KeyError) as error:
        words = f"{name}  ·  unreadable: {error}"
        return words, words
    return model_summary(record), trained_words(record)


def trained_words(record) -> str:
    """What a training gave, for the status line: scores, how validation was carved, notes."""
    val = (record.metrics or {}).get("val") or {}
    score = (f"validation balanced accuracy {val['balanced_accuracy']:.2f} (accuracy {val['accuracy']:.2f}, "
             f"{val.get('n', '?')} cells)" if "balanced_accuracy" in val else "no validation cells")
    words = f"Trained {record.name}: {score}. {record.split}"
    words += self_training_words(record.settings or {}, cancelled=record.cancelled)
    within = _within_text((record.settings or {}).get("normalise_within"))
    if within:
        words += f" Normalised within {within.replace(',', ', ')}: each part of a plate with its own statistics."
    notes = (record.settings or {}).get("warnings") or []
    if notes:
        words += " " + " ".join(str(note) for note in notes)
    if record.cancelled:
        words += f" Cancelled after {len(record.history)} epochs: the best epoch so far was kept."
    return words


def self_training_words(settings: dict, *, cancelled: bool = False) -> str:
    """What self-training added to a CNN's training, in words ("" without self-training).

    Examples
    --------
    >>> self_training_words({"self_training": 1, "self_training_rounds": [
    ...     {"round": 1, "pool_cells": 500, "added_cells": 412, "added_per_class": {"a": 200, "b": 212}}]})
    ' Self-training: round 1 added 412 of 500 unlabelled cells (a 200, b 212).'
    >>> self_training_words({"self_training": 2, "self_training_rounds": []})
    ' Self-training: no unlabelled cells to add (every cell is labelled).'
    """
    if not settings.get("self_training"):
        return ""
    rounds = settings.get("self_training_rounds") or []
    if not rounds:
        if cancelled:
            return " Self-training: cancelled before a round finished."
        return " Self-training: no unlabelled cells to add (every cell is labelled)."
    said = "; ".join(
        f"round {r['round']} added {r['added_cells']} of {r['pool_cells']} unlabelled cells ("
        + ", ".join(f"{name} {n}" for name, n in r["added_per_class"].items()) + ")" for r in rounds)
    return f" Self-training: {said}."


def as_number(value) -> float:
    """A plottable float (NaN for a missing value)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def render_history(epochs: list[dict], *, width: int, height: int, background: str, text: str) -> np.ndarray:
    """Draw train and validation loss and accuracy per epoch into an RGBA image (Agg, any thread).

    Examples
    --------
    >>> image = render_history([{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "train_accuracy": 0.5,
    ...                          "val_accuracy": 0.6}], width=400, height=150, background="#262930", text="#ffffff")
    >>> image.shape, image.dtype.name
    ((150, 400, 4), 'uint8')
    """
    figure = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor=background)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.09, right=0.98, top=0.86, bottom=0.16, wspace=0.28)
    x = [int(row.get("epoch", i + 1)) for i, row in enumerate(epochs)]
    for axis, (title, train, val) in zip(figure.subplots(1, 2), SERIES):
        axis.set_facecolor(background)
        axis.set_title(title, fontsize=8, pad=2, color=text)
        axis.tick_params(labelsize=7, length=2, pad=1, colors=text)
        for spine in axis.spines.values():
            spine.set_color(text)
        for key, color, name in ((train, TRAIN_COLOR, "train"), (val, VAL_COLOR, "val")):
            axis.plot(x, [as_number(row.get(key)) for row in epochs], marker="o", markersize=3, linewidth=1.2,
                      color=color, label=name)
        if title.startswith("accuracy"):
            axis.set_ylim(-0.02, 1.02)
        else:
            legend = axis.legend(fontsize=6, loc="upper right", frameon=False)
            for label in legend.get_texts():
                label.set_color(text)
        if x:
            axis.set_xlim(min(x) - 0.5, max(x) + 0.5)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        else:
            axis.set_xticks([])
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba()).copy()


class TrainingPlot(QLabel):
    """Train and validation loss (left) and accuracy (right) per epoch.

    The plot is drawn in a worker thread (:func:`render_history`) and only shown
    here: drawing it in the event loop would stall the viewer for 100-400 ms per
    epoch while training holds the CPU.

    Parameters
    ----------
    parent : QWidget, optional
        The parent widget.
    """

    #: Emitted when a drawing of the plot is shown (tests and scripts wait for it).
    drawn = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedHeight(PLOT_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(200)
        self.epochs: list[dict] = []
        self._worker = None
        self._stale = False
        self._draw()

    @property
    def points(self) -> int:
        """Number of epochs shown."""
        return len(self.epochs)

    def clear(self) -> None:
        """Forget the epochs shown."""
        self.epochs = []
        self._draw()

    def add_epoch(self, event: dict) -> None:
        """Add one epoch (an epoch event or history row) and redraw."""
        self.epochs.append(dict(event))
        self._draw()

    def set_history(self, history: list[dict] | None) -> None:
        """Show a whole training history (a model record's ``history``)."""
        self.epochs = [dict(row) for row in history or []]
        self._draw()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Redraw at the width and in the theme colours the plot is shown with."""
        super().showEvent(event)
        self._draw()

    def _draw(self) -> None:
        from napari.qt.threading import create_worker

        if self._worker is not None:  # one drawing at a time; the newest epochs are drawn next
            self._stale = True
            return
        self._stale = False
        width = max(self.width(), 200)
        colours = {"background": self.palette().color(QPalette.ColorRole.Window).name(),
                   "text": self.palette().color(QPalette.ColorRole.WindowText).name()}
        worker = create_worker(render_history, list(self.epochs), width=width, height=PLOT_HEIGHT, **colours)
        worker.returned.connect(self._show)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _show(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        picture = QImage(image.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
        self.setPixmap(QPixmap.fromImage(picture.copy()))
        self.drawn.emit()

    def _finished(self) -> None:
        self._worker = None
        if self._stale:
            self._draw()

