"""The models trained in a project, by name: ``models/`` of the project folder.

Files of a model named ``<name>`` (letters, digits, ``-``, ``_``, ``.``)::

    <name>.pt                   a CNN checkpoint (napari_hcs.nn.checkpoint); written by
                                the viewer or by ``napari-hcs train --out models/<name>.pt``
    <name>.forest.joblib        a random forest: a scikit-learn Pipeline (joblib)
    <name>.json                 the model's record (:class:`ModelRecord`): classes, channels,
                                metrics, history, split, settings; a CNN written by the
                                command line has none, its record comes from the checkpoint
    <name>.evaluation.parquet   its validation/test cells: crop_index, split, true_class,
                                pred_class, pred_confidence, pred_margin

Every file is written atomically. Neither torch nor scikit-learn is imported
before a model is loaded; a checkpoint's metadata is read without its weights.

Examples
--------
>>> from sklearn.dummy import DummyClassifier
>>> catalog = ModelCatalog(tmp_path / "models")
>>> forest = DummyClassifier().fit([[0.0], [1.0]], ["a", "b"])
>>> record = ModelRecord(name="", kind="forest", classes=["a", "b"], channels=["DAPI"],
...                      feature_columns=["feat_area"])
>>> catalog.save_forest("quick", forest, record).path.name
'quick.forest.joblib'
>>> catalog.names(), catalog.record("quick").classes
(['quick'], ['a', 'b'])
>>> catalog.check_fits("quick", channels=["GFP"], crop_size=32)
Traceback (most recent call last):
...
napari_hcs.project.model_catalog.ModelMismatchError: Model 'quick' was trained on channels DAPI; this project has channels GFP (32x32 crops). Not in the project: DAPI; not in the model: GFP. Use a model trained on the same channels, or train one on this project.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, file_version, write_json_atomic, write_parquet_atomic
from ..names import shorten
from ..vocabulary import CLASSIFIER_KINDS, CROP_INDEX

__all__ = ["EVALUATION_COLUMNS", "ModelCatalog", "ModelMismatchError", "ModelRecord", "check_model_name"]

CHECKPOINT_SUFFIX = ".pt"
FOREST_SUFFIX = ".forest.joblib"
RECORD_SUFFIX = ".json"
EVALUATION_SUFFIX = ".evaluation.parquet"
#: Columns of a model's evaluation table.
EVALUATION_COLUMNS = (CROP_INDEX, "split", "true_class", "pred_class", "pred_confidence", "pred_margin")
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}

# checkpoint path -> (file stamp, meta): reading a checkpoint's metadata once per file version.
_META_CACHE: dict[str, tuple[tuple, dict]] = {}
_CACHE_LOCK = threading.Lock()


class ModelMismatchError(ValueError):
    """Raised when a model's channels or crop size do not fit a project's."""


def check_model_name(name: object) -> str:
    """Return ``name`` when it can name a model (ValueError saying what is allowed otherwise).

    Examples
    --------
    >>> check_model_name("wrn-2.v1")
    'wrn-2.v1'
    >>> check_model_name("../x")
    Traceback (most recent call last):
    ...
    ValueError: '../x' cannot name a model: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} cannot name a model: use 1 to 64 letters, digits, '-', '_' or '.', "
                         "not starting with '.'.")
    return name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value):
    """JSON-ready values: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class ModelRecord:
    """What a trained model is: its kind, classes, inputs, scores and how it was trained.

    Attributes
    ----------
    name : str
        The model's name in the project.
    kind : {"cnn", "forest"}
        A network on crops, or a random forest on the classical features.
    classes : list of str
        Class names, in the order of the model's outputs.
    channels : list of str
        Channels of the plate it was trained on.
    crop_size : int or None
        Crop side in pixels (CNNs).
    feature_columns : list of str or None
        Feature columns, in the pipeline's order (forests).
    created : str
        ISO time of training (UTC).
    metrics : dict
        ``{"val": ..., "test": ...}``, each from
        :func:`napari_hcs.learn.metrics.classification_metrics` or None.
    history : list of dict
        One row per epoch (CNNs): train_loss, val_loss, train_accuracy, val_accuracy, ...
    split : str
        How the validation cells were chosen, in words for the user.
    cancelled : bool
        Whether training was cancelled (the model is the best epoch until then).
    path : pathlib.Path or None
        The model file.
    settings : dict
        ``TrainConfig.to_dict()`` (CNNs) or the forest's parameters.
    """

    name: str
    kind: str
    classes: list[str]
    channels: list[str]
    crop_size: int | None = None
    feature_columns: list[str] | None = None
    created: str = ""
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    split: str = ""
    cancelled: bool = False
    path: Path | None = None
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in CLASSIFIER_KINDS:
            raise ValueError(f"Model kind must be one of {', '.join(CLASSIFIER_KINDS)}; got {self.kind!r}.")
        self.classes = [str(c) for c in self.classes]
        self.channels = [str(c) for c in self.channels]
        self.path = Path(self.path) if self.path is not None else None

    def to_dict(self) -> dict:
        """The record as JSON-ready values (``path`` as the model file's name)."""
        values = _plain(asdict(replace(self, path=None)))
        values["path"] = self.path.name if self.path is not None else None
        return values

    @classmethod
    def from_dict(cls, values: dict, *, folder: str | os.PathLike) -> "ModelRecord":
        """Build a record from :meth:`to_dict` output; ``path`` is taken inside ``folder``."""
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        if values.get("path"):
            known["path"] = Path(folder) / Path(str(values["path"])).name
        return cls(**known)

    def summary(self) -> str:
        """One line for a model list, e.g. ``"wrn: CNN, 2 classes, validation accuracy 0.84"``."""
        kind = "CNN" if self.kind == "cnn" else "random forest"
        scores = next((self.metrics[k] for k in ("val", "test") if self.metrics.get(k)), None)
        split = next((_SPLIT_WORDS[k] for k in ("val", "test") if self.metrics.get(k)), "")
        score = f", {split} accuracy {scores['accuracy']:.2f}" if scores and "accuracy" in scores else ""
        return f"{self.name}: {kind}, {len(self.classes)} classes{score}{' (cancelled)' if self.cancelled else ''}"


def checkpoint_meta(path: str | os.PathLike) -> dict:
    """Return a CNN checkpoint's metadata without reading its weights (cached per file version).

    Raises
    ------
    napari_hcs.nn.CheckpointError
        (a ValueError) naming the file, when it is not a napari-hcs checkpoint.
    """
    path = Path(path)
    key, stamp = os.path.abspath(path), file_version(path)
    if stamp is None:
        raise FileNotFoundError(f"Model file {path} does not exist.")
    with _CACHE_LOCK:
        hit = _META_CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    meta = _read_meta(path)
    with _CACHE_LOCK:
        _META_CACHE[key] = (stamp, meta)
    return meta


def _read_meta(path: Path) -> dict:
    import zipfile

    import torch

    from ..nn import CheckpointError
    from ..nn.checkpoint import CHECKPOINT_FORMAT

    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a napari-hcs model: it is not a torch checkpoint archive "
                              "(corrupt, truncated or another kind of file).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many kinds for damaged or foreign files
        raise CheckpointError(f"{path} is not a readable napari-hcs model (corrupt, truncated or "
                              f"foreign): {type(error).__name__}: {str(error).split('. ')[0]}.") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a napari-hcs model (no {CHECKPOINT_FORMAT!r} "
                              "format marker); train one with 'napari-hcs train' or from the viewer.")
    try:
        meta = json.loads(payload["meta_json"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} is a napari-hcs model with damaged metadata: {error}") from error
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is a napari-hcs model with damaged metadata (not a JSON object).")
    return meta


def _split_words(meta: dict) -> str:
    """How a command-line checkpoint's cells were split, in words."""
    if isinstance(meta.get("split_description"), str):
        return meta["split_description"]
    split = meta.get("split") if isinstance(meta.get("split"), dict) else {}
    counts, groups = split.get("counts") or {}, split.get("groups") or {}
    parts = []
    for name, words in _SPLIT_WORDS.items():
        total = sum(int(n) for n in (counts.get(name) or {}).values())
        if total:
            wells = f" (wells {shorten(groups[name])})" if groups.get(name) else ""
            parts.append(f"{words}: {total} cells{wells}")
    return "; ".join(parts) or "not recorded"


def _record_from_meta(name: str, path: Path, meta: dict) -> ModelRecord:
    preprocess = meta.get("preprocess") if isinstance(meta.get("preprocess"), dict) else {}
    crop = meta.get("crop_size", preprocess.get("crop_size"))
    created = meta.get("created") or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(
        timespec="seconds")
    return ModelRecord(
        name=name, kind="cnn", classes=list(meta.get("classes") or []), channels=list(meta.get("channels") or []),
        crop_size=int(crop) if crop is not None else None, created=str(created),
        metrics=dict(meta.get("metrics") or {}), history=list(meta.get("history") or []),
        split=_split_words(meta), cancelled=bool(meta.get("cancelled", False)), path=path,
        settings=dict(meta.get("hyperparameters") or {}),
    )


def _mismatch(record: ModelRecord, channels: list[str], crop_size: int | None, project) -> str:
    def inputs(names, size):
        return f"channels {', '.join(map(str, names)) or 'none'}" + (f" ({size}x{size} crops)" if size else "")

    where = f"project {project}" if project is not None else "this project"
    message = (f"Model {record.name!r} was trained on {inputs(record.channels, record.crop_size)}; "
               f"{where} has {inputs(channels, crop_size)}.")
    missing = [c for c in record.channels if c not in channels]
    extra = [c for c in channels if c not in record.channels]
    if missing or extra:
        message += f" Not in the project: {', '.join(missing) or 'none'}; not in the model: {', '.join(extra) or 'none'}."
    return message + " Use a model trained on the same channels, or train one on this project."


class ModelCatalog:
    """The models of a project, by name (see the module for the files).

    Parameters
    ----------
    folder : path
        The project's ``models/`` folder; made when a model is saved.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _file(self, name: str, suffix: str) -> Path:
        return self.folder / f"{check_model_name(name)}{suffix}"

    # -- listing ------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of the models, newest first (autoencoder checkpoints, which do not classify, are left out)."""
        if not self.folder.is_dir():
            return []
        newest: dict[str, int] = {}
        for path in self.folder.iterdir():
            name = self._model_name(path)
            if name is not None:
                newest[name] = max(newest.get(name, 0), path.stat().st_mtime_ns)
        return sorted(newest, key=lambda n: (-newest[n], n))

    def _model_name(self, path: Path) -> str | None:
        file = path.name
        if file.endswith(FOREST_SUFFIX):
            name = file[: -len(FOREST_SUFFIX)]
            has_record = (self.folder / f"{name}{RECORD_SUFFIX}").is_file()
            return name if _NAME.fullmatch(name) and has_record and path.is_file() else None
        if not file.endswith(CHECKPOINT_SUFFIX) or not path.is_file():
            return None
        name = file[: -len(CHECKPOINT_SUFFIX)]
        if not _NAME.fullmatch(name):
            return None
        if (self.folder / f"{name}{RECORD_SUFFIX}").is_file():
            return name
        try:
            embedding = checkpoint_meta(path).get("task") == "embedding"
        except (OSError, ValueError):  # listed, so that it can be seen and removed
            embedding = False
        return None if embedding else name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def records(self) -> list[ModelRecord]:
        """Records of the models that can be read, newest first (see :meth:`record` for the others)."""
        records = []
        for name in self.names():
            try:
                records.append(self.record(name))
            except (OSError, ValueError):
                continue
        return records

    def record(self, name: str) -> ModelRecord:
        """Return a model's record.

        Raises
        ------
        FileNotFoundError
            If there is no model of that name (the message lists the models), or
            its record names a model file that is missing.
        ValueError
            If its record or checkpoint cannot be read (the message names the file).
        """
        record_path = self._file(name, RECORD_SUFFIX)
        checkpoint, forest = self._file(name, CHECKPOINT_SUFFIX), self._file(name, FOREST_SUFFIX)
        if record_path.is_file():
            record = self._read_record(record_path)
            model_file = forest if record.kind == "forest" else checkpoint
            if not model_file.is_file():
                raise FileNotFoundError(f"Model {name!r}: {model_file} is missing (its record {record_path} "
                                        "is there); remove the model and train it again.")
            return replace(record, name=name, path=model_file)
        if checkpoint.is_file():
            return _record_from_meta(name, checkpoint, checkpoint_meta(checkpoint))
        if forest.is_file():
            raise FileNotFoundError(f"Forest model {forest} has no record ({record_path.name}); train it again.")
        raise FileNotFoundError(f"No model named {name!r} in {self.folder}; models: "
                                f"{shorten(self.names()) or 'none yet'}.")

    @staticmethod
    def _read_record(path: Path) -> ModelRecord:
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(values, dict) or "kind" not in values:
                raise ValueError("no model kind")
            return ModelRecord.from_dict(values, folder=path.parent)
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a napari-hcs model record (damaged or another kind of file): "
                             f"{error}") from None

    # -- loading ------------------------------------------------------------------
    def load(self, name: str, *, device: str = "cpu") -> tuple[object, ModelRecord]:
        """Return ``(model, record)``: a torch module in eval mode (on ``device``) or a scikit-learn pipeline.

        Raises
        ------
        FileNotFoundError, ValueError
            As :meth:`record`, and when the model file is damaged or foreign (naming it).
        """
        record = self.record(name)
        if record.kind == "cnn":
            from ..nn import load_checkpoint

            model, _ = load_checkpoint(record.path, device=device)
            return model, record
        return _load_forest(record.path), record

    def evaluation(self, name: str) -> pd.DataFrame | None:
        """The model's validation/test cells (:data:`EVALUATION_COLUMNS`), or None when not saved."""
        path = self._file(name, EVALUATION_SUFFIX)
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        try:
            # One thread: the table is small, and Arrow's pool waits behind a trainer's busy threads.
            return pq.read_table(path, use_threads=False).to_pandas(use_threads=False)
        except Exception as error:  # pyarrow raises its own kinds for damaged files
            raise ValueError(f"{path} is not a readable evaluation table (damaged): {error}") from error

    def check_fits(self, name: str, *, channels: list[str], crop_size: int | None,
                   project: str | os.PathLike | None = None) -> None:
        """Raise :class:`ModelMismatchError` when a model cannot predict a project's cells.

        The channels must be the same set (their order may differ); a CNN's crop
        size must be the project's. ``project`` names the project in the message.
        """
        record = self.record(name)
        same_channels = sorted(record.channels) == sorted(str(c) for c in channels)
        same_size = record.kind != "cnn" or None in (record.crop_size, crop_size) or \
            int(record.crop_size) == int(crop_size)
        if not (same_channels and same_size):
            raise ModelMismatchError(_mismatch(record, [str(c) for c in channels], crop_size, project))

    # -- writing ------------------------------------------------------------------
    def save_forest(self, name: str, pipeline, record: ModelRecord) -> ModelRecord:
        """Save a fitted scikit-learn pipeline and its record; return the record as saved."""
        import joblib

        path = self._file(name, FOREST_SUFFIX)
        if not hasattr(pipeline, "predict_proba"):
            raise ValueError(f"A forest model needs predict_proba; got a {type(pipeline).__name__}.")
        with atomic_path(path) as tmp:
            joblib.dump(pipeline, tmp)
        saved = self._write_record(replace(record, name=name, kind="forest", path=path))
        self._file(name, CHECKPOINT_SUFFIX).unlink(missing_ok=True)  # one model per name
        return saved

    def save_record(self, record: ModelRecord) -> ModelRecord:
        """Save the record of a model whose file is written (a CNN checkpoint ``<name>.pt``).

        Raises
        ------
        FileNotFoundError
            If the model file is not there.
        """
        suffix = FOREST_SUFFIX if record.kind == "forest" else CHECKPOINT_SUFFIX
        path = self._file(record.name, suffix)
        if not path.is_file():
            raise FileNotFoundError(f"Model {record.name!r} has no model file {path}; write it first.")
        saved = self._write_record(replace(record, path=path))
        if record.kind == "cnn":
            self._file(record.name, FOREST_SUFFIX).unlink(missing_ok=True)
        return saved

    def _write_record(self, record: ModelRecord) -> ModelRecord:
        record = replace(record, created=record.created or _now())
        write_json_atomic(record.to_dict(), self._file(record.name, RECORD_SUFFIX))
        return record

    def save_evaluation(self, name: str, frame: pd.DataFrame) -> Path:
        """Save the model's validation/test cells (atomically); return the file."""
        missing = [c for c in EVALUATION_COLUMNS[:4] if c not in frame.columns]
        if missing:
            raise ValueError(f"The evaluation of model {name!r} lacks the column(s) {', '.join(missing)}.")
        path = self._file(name, EVALUATION_SUFFIX)
        write_parquet_atomic(frame.reset_index(drop=True), path)
        return path

    def files(self, name: str) -> list[Path]:
        """The files of a model that exist (model, record, evaluation, command-line confusion files)."""
        suffixes = [CHECKPOINT_SUFFIX, FOREST_SUFFIX, RECORD_SUFFIX, EVALUATION_SUFFIX]
        confusion = f"{check_model_name(name)}_confusion"
        if _NAME.fullmatch(confusion) and not any(
                (self.folder / f"{confusion}{s}").exists() for s in (CHECKPOINT_SUFFIX, FOREST_SUFFIX)):
            suffixes += ["_confusion.json", "_confusion.png"]
        return [p for p in (self.folder / f"{name}{s}" for s in suffixes) if p.is_file()]

    def import_model(self, source: str | os.PathLike, *, name: str | None = None,
                     overwrite: bool = False) -> str:
        """Copy a model of another project (its ``.pt``, ``.forest.joblib`` or ``.json`` file) in.

        The model keeps its record and weights; its evaluation cells belong to the
        other project and are left behind. Returns the name it has here (default:
        its name there).

        Raises
        ------
        FileNotFoundError
            If ``source`` is not a model file.
        ValueError
            If a model of that name exists here (unless ``overwrite``).
        """
        source = Path(source)
        origin = ModelCatalog(source.parent)
        stem = next((source.name[: -len(s)] for s in (FOREST_SUFFIX, CHECKPOINT_SUFFIX, RECORD_SUFFIX)
                     if source.name.endswith(s)), None)
        if stem is None or not source.is_file() or stem not in origin.names():
            raise FileNotFoundError(f"{source} is not a model file: expected <name>{CHECKPOINT_SUFFIX} or "
                                    f"<name>{FOREST_SUFFIX} from a project's models folder.")
        name = check_model_name(name or stem)
        if self.files(name) and not overwrite:
            raise ValueError(f"A model named {name!r} exists in {self.folder}; give another name.")
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in origin.files(stem):
            if path.name.endswith(EVALUATION_SUFFIX) or "_confusion" in path.name:
                continue
            target = self.folder / (name + path.name[len(stem):])
            with atomic_path(target) as temporary:
                shutil.copyfile(path, temporary)
        record = self._file(name, RECORD_SUFFIX)
        if record.is_file() and name != stem:
            copied = self._read_record(record)
            self._write_record(replace(copied, name=name, path=self.folder / (name + Path(copied.path).name[len(stem):])))
        return name

    def remove(self, name: str) -> None:
        """Delete every file of a model (FileNotFoundError when there is no such model)."""
        files = self.files(name)
        if not files:
            raise FileNotFoundError(f"No model named {name!r} in {self.folder}; models: "
                                    f"{shorten(self.names()) or 'none'}.")
        for path in files:
            path.unlink(missing_ok=True)


def _load_forest(path: Path):
    import joblib

    try:
        pipeline = joblib.load(path)
    except Exception as error:  # unpickling a damaged file raises anything
        raise ValueError(f"{path} is not a readable forest model (corrupt, truncated or another kind of file): "
                         f"{type(error).__name__}: {error}") from error
    if not hasattr(pipeline, "predict_proba"):
        raise ValueError(f"{path} holds a {type(pipeline).__name__}, not a classifier; train the model again.")
    return pipeline
