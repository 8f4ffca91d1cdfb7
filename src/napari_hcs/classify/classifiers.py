"""Training a classifier from the viewer: a random forest on features, or a CNN on crops.

:func:`train_classifier` takes the project's labelled cells (:mod:`.training_set`),
carves validation cells, trains, scores the validation cells and saves the model
by name in the project (:class:`~napari_hcs.project.ModelCatalog`) with its
record and its evaluation table. It reports progress as events (dicts):

* ``{"kind": "step", "done", "total", "text"}`` while preparing, fitting the forest,
  reading crops and evaluating;
* ``{"kind": "epoch", "epoch", "epochs", "train_loss", "val_loss", "train_accuracy",
  "val_accuracy", "seconds"}`` after each CNN epoch.

A cancel stops the forest between batches of trees (nothing is saved) and the CNN
before the next batch: after at least one finished epoch the best epoch so far is
saved with ``record.cancelled`` True; before, :class:`napari_hcs.cancel.Cancelled`
is raised and nothing is saved.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from ..cancel import check_cancel
from ..learn import classification_metrics, feature_pipeline
from ..project import ModelRecord, check_model_name, feature_columns
from ..vocabulary import CLASSIFIER_KINDS, CROP_INDEX, TRAINING_CLASS_COLUMN
from .training_set import (TrainingSetError, check_training_set, class_counts, forest_cells, interactive_split,
                           training_table)

if TYPE_CHECKING:
    from ..nn import TrainConfig

__all__ = ["TrainRequest", "device_description", "feature_matrix", "train_classifier"]

#: Trees grown between two progress reports (and cancel checks).
TREES_PER_STEP = 50
Progress = Callable[[dict], None]


@dataclass
class TrainRequest:
    """What to train.

    Parameters
    ----------
    name : str
        The model's name in the project (letters, digits, ``-``, ``_``, ``.``).
    kind : {"forest", "cnn"}
        A random forest on the classical features, or a CNN on the crops.
    config : TrainConfig, optional
        The CNN's options; default ``TrainConfig()``.
    n_trees : int
        Trees of the random forest.
    seed : int
        Seed of the validation split and of the forest.

    Examples
    --------
    >>> TrainRequest("quick").kind
    'forest'
    >>> TrainRequest("quick", kind="svm")
    Traceback (most recent call last):
    ...
    ValueError: TrainRequest.kind must be one of forest, cnn; got 'svm'.
    """

    name: str
    kind: str = "forest"
    config: "TrainConfig | None" = None
    n_trees: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        check_model_name(self.name)
        if self.kind not in CLASSIFIER_KINDS:
            raise ValueError(f"TrainRequest.kind must be one of {', '.join(CLASSIFIER_KINDS)}; got {self.kind!r}.")
        if isinstance(self.n_trees, bool) or int(self.n_trees) != self.n_trees or self.n_trees < 1:
            raise ValueError(f"TrainRequest.n_trees must be a whole number of at least 1; got {self.n_trees!r}.")


@dataclass
class _Job:
    """One training run: the project, its cells, the split and the callbacks."""

    project: object
    request: TrainRequest
    table: pd.DataFrame
    split: pd.Series
    how: str
    warnings: list[str]
    progress: Progress | None
    cancel: object
    store: object = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.project.cell_store()

    def step(self, done: int, total: int, text: str) -> None:
        if self.progress is not None:
            self.progress({"kind": "step", "done": int(done), "total": int(total), "text": text})

    def rows(self, side: str) -> pd.Series:
        return self.split == side


def device_description(device: str = "auto") -> str:
    """Where a CNN would train, in words: ``"GPU: <name>"``, ``"Apple GPU (MPS)"`` or ``"CPU (N cores)"``.

    A CPU with bfloat16 instructions, which trains in bfloat16, reads ``"CPU (N cores, bfloat16)"``.

    Examples
    --------
    >>> device_description("cpu").startswith("CPU (")
    True
    """
    import torch

    from ..nn import resolve_device
    from ..nn.precision import cpu_has_bfloat16

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(resolved)}"
    if resolved.type == "mps":
        return "Apple GPU (MPS)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    precision = ", bfloat16" if cpu_has_bfloat16() else ""
    return f"CPU ({cores} core{'s' if cores != 1 else ''}{precision})"


def feature_matrix(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The feature columns as floats, non-numbers and infinities as NaN (imputed by the pipeline)."""
    values = table[columns].apply(pd.to_numeric, errors="coerce").astype(float)
    return values.replace([np.inf, -np.inf], np.nan)


def train_classifier(project, request: TrainRequest, *, progress: Progress | None = None, cancel=None,
                     overwrite: bool = False) -> ModelRecord:
    """Train a classifier on the project's labelled cells and save it by name.

    Parameters
    ----------
    project : Project
        The project (its cells, well classes and cell labels).
    request : TrainRequest
        Name, kind and options.
    progress : callable, optional
        ``progress(event)`` with the events of the module docstring.
    cancel : callable or threading.Event, optional
        See the module docstring.
    overwrite : bool
        Replace a model of the same name (else ValueError).

    Returns
    -------
    ModelRecord
        The saved model's record (``settings["warnings"]`` lists classes left out).

    Raises
    ------
    ValueError
        If a model of that name exists and ``overwrite`` is False.
    TrainingSetError
        If the labelled cells cannot be trained on (see
        :func:`~napari_hcs.classify.training_set.check_training_set`).
    napari_hcs.cancel.Cancelled
        If cancelled (before the first CNN epoch finished).
    napari_hcs.project.ProjectLockedError
        If another run writes the project (its lock is held).
    """
    catalog = project.models()
    if request.name in catalog.names() and not overwrite:
        raise ValueError(f"A model named {request.name!r} already exists in {catalog.folder}; choose another "
                         "name or replace it.")
    table, notes = training_table(project), []
    if request.kind == "forest":
        table, notes = forest_cells(table)
    class_list = [str(c.get("name", "")) for c in project.read_classes()]
    notes += check_training_set(table, kind=request.kind, annotations=project.well_annotations(),
                                class_list=class_list)
    split, how = interactive_split(table, seed=request.seed)
    job = _Job(project, request, table, split, how, notes, progress, cancel)
    for note in notes:
        job.step(0, 1, note)
    # One writer per project, as for the command line: refused at once (naming the holder)
    # while another run writes it.
    with project.lock(wait=False, command=f"napari-hcs: training model {request.name!r}"):
        trained = _train_forest(job) if request.kind == "forest" else _train_cnn(job)
        return _save(job, catalog, trained, overwrite=overwrite)


@dataclass
class _Trained:
    """A trained model before it is saved."""

    model: object
    record: ModelRecord
    evaluation: pd.DataFrame


def _record(job: _Job, *, classes: list[str], metrics: dict | None, **values) -> ModelRecord:
    settings = {**values.pop("settings", {}), "warnings": job.warnings,
                "split_counts": class_counts(job.table, job.split)}
    return ModelRecord(name=job.request.name, kind=job.request.kind, classes=classes,
                       channels=job.store.channels, metrics={"val": metrics, "test": None}, split=job.how,
                       settings=settings, **values)


def _evaluation(crop_index, true_class, result) -> pd.DataFrame:
    """The evaluation table of the val cells (see :data:`napari_hcs.project.model_catalog.EVALUATION_COLUMNS`)."""
    return pd.DataFrame({
        CROP_INDEX: np.asarray(crop_index, dtype=np.int64), "split": "val",
        "true_class": np.asarray(true_class, dtype=object).astype(str),
        "pred_class": np.asarray(result.classes, dtype=object).astype(str),
        "pred_confidence": np.asarray(result.confidence, dtype=np.float32),
        "pred_margin": np.asarray(result.margin, dtype=np.float32),
    })


def _val_metrics(evaluation: pd.DataFrame, classes: list[str]) -> dict | None:
    if evaluation.empty:
        return None
    return classification_metrics(evaluation["true_class"].tolist(), evaluation["pred_class"].tolist(), classes)


def _train_forest(job: _Job) -> _Trained:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.utils.class_weight import compute_class_weight

    from ..nn.predict import PredictResult

    request, table = job.request, job.table
    columns = feature_columns(table)
    train = table[job.rows("train")]
    classes = sorted(train[TRAINING_CLASS_COLUMN].unique().tolist())
    n_steps = -(-request.n_trees // TREES_PER_STEP)
    job.step(0, n_steps + 1, f"Preparing {len(columns)} features of {len(train)} training cells")
    preparation = feature_pipeline()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping features without any observed values")
            x_train = preparation.fit_transform(feature_matrix(train, columns))
    except ValueError as error:  # every feature constant or missing on the training cells
        raise TrainingSetError(f"No usable feature of {len(columns)}: all are constant or missing on the "
                               f"{len(train)} training cells ({error}).") from error
    y_train = train[TRAINING_CLASS_COLUMN].to_numpy().astype(str)
    # "balanced" class weights, computed once: warm-started forests warn about the preset.
    weights = compute_class_weight("balanced", classes=np.asarray(classes), y=y_train)
    forest = RandomForestClassifier(n_estimators=0, class_weight=dict(zip(classes, weights)), n_jobs=-1,
                                    random_state=request.seed, warm_start=True)
    for step in range(1, n_steps + 1):
        check_cancel(job.cancel, f"Training the random forest was cancelled after {forest.n_estimators} trees.")
        forest.set_params(n_estimators=min(step * TREES_PER_STEP, request.n_trees))
        forest.fit(x_train, y_train)
        job.step(step, n_steps + 1, f"Grown {forest.n_estimators} of {request.n_trees} trees")
    pipeline = Pipeline([*preparation.steps, ("forest", forest)])
    val = table[job.rows("val")]
    result = PredictResult(crop_index=val[CROP_INDEX].to_numpy(), class_names=[str(c) for c in forest.classes_])
    result.set_probabilities(pipeline.predict_proba(feature_matrix(val, columns)) if len(val)
                             else np.empty((0, len(classes))))
    evaluation = _evaluation(val[CROP_INDEX], val[TRAINING_CLASS_COLUMN], result)
    job.step(n_steps + 1, n_steps + 1, f"Evaluated {len(val)} validation cells")
    settings = {"n_trees": request.n_trees, "class_weight": "balanced", "seed": request.seed,
                "n_features": int(x_train.shape[1])}
    record = _record(job, classes=result.class_names, metrics=_val_metrics(evaluation, result.class_names),
                     feature_columns=columns, settings=settings)
    return _Trained(pipeline, record, evaluation)


def _epoch_event(epoch: int, epochs: int, row: dict) -> dict:
    keys = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_balanced_accuracy", "seconds")
    return {"kind": "epoch", "epoch": int(epoch), "epochs": int(epochs), **{k: row.get(k) for k in keys}}


def _train_cnn(job: _Job) -> _Trained:
    from ..nn import TrainConfig, predict_cells, train_model
    from ..nn.plate_normalisation import negative_pixel_notes

    config = job.request.config or TrainConfig()
    store, table = job.store, job.table
    n_train = int(job.rows("train").sum())
    job.step(0, config.epochs, f"Reading the crops of {n_train} training cells")

    def progress(epoch: int, epochs: int, row: dict) -> None:
        if job.progress is not None:
            job.progress(_epoch_event(epoch, epochs, row))

    result = train_model(table, store.crops, config, label_column=TRAINING_CLASS_COLUMN, split=job.split,
                         channels=store.channels, progress=progress, cancel=job.cancel,
                         notice=lambda text: job.step(0, config.epochs, text))
    job.warnings.extend(negative_pixel_notes(result.meta.get("normalisation")))
    val = table[job.rows("val")]
    job.step(config.epochs, config.epochs, f"Evaluating {len(val)} validation cells")
    predicted = predict_cells(result.model, result.meta, store.crops, indices=val[CROP_INDEX].to_numpy(),
                              device=config.device, channels=store.channels, embeddings=False, table=table)
    evaluation = _evaluation(val[CROP_INDEX], val[TRAINING_CLASS_COLUMN], predicted)
    result.meta["split_description"] = job.how
    record = _record(job, classes=list(result.meta["classes"]), metrics=result.metrics.get("val"),
                     crop_size=store.crop_size, history=result.history, cancelled=result.cancelled,
                     settings={**result.meta["hyperparameters"], "best_epoch": result.meta["best_epoch"],
                               **_self_training_settings(result.meta)})
    return _Trained(result, record, evaluation)


def _self_training_settings(meta: dict) -> dict:
    """What self-training added, round by round, for the model's record (nothing without self-training)."""
    return {"self_training_rounds": meta["self_training"]["rounds"]} if "self_training" in meta else {}


def _save(job: _Job, catalog, trained: _Trained, *, overwrite: bool) -> ModelRecord:
    """Save a trained model under its name (replacing the files of an older one)."""
    name = job.request.name
    if overwrite and name in catalog.names():
        catalog.remove(name)
    if job.request.kind == "forest":
        record = catalog.save_forest(name, trained.model, trained.record)
    else:
        catalog.folder.mkdir(parents=True, exist_ok=True)
        trained.model.save(catalog.folder / f"{check_model_name(name)}.pt")
        record = catalog.save_record(trained.record)
    catalog.save_evaluation(name, trained.evaluation)
    return record
