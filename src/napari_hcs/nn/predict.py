"""Classifying cells and embedding them with a trained model, streaming from the crop store.

:func:`predict_cells` reads the crops in chunk order a batch at a time (a
background thread reads the next batch while the model runs), so memory holds
one batch, two decoded chunks and the result arrays whatever the number of
cells. :func:`predict_project` runs it over a project's cells and stores the
``predictions`` (``pred_class``, ``pred_confidence``, ``pred_margin``,
``pred_model``, ``prob_<class>``) and ``embeddings`` (``emb_000`` ...) column
groups in its cell store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..cancel import check_cancel
from ..vocabulary import CROP_INDEX, EMBEDDING_PREFIX, PROBABILITY_PREFIX
from .checkpoint import load_checkpoint
from .crop_reader import CropReader
from .device import resolve_device
from .plate_normalisation import PlateNormaliser
from .precision import autocast_context
from .preprocess import Preprocess
from .sampling import prefetched
from .tta import tta_classify

__all__ = ["PredictResult", "embedding_column_names", "normalisation_table", "predict_cells", "predict_project",
           "top_two"]


def embedding_column_names(dim: int) -> list[str]:
    """Names of ``dim`` embedding columns: ``emb_000``, ``emb_001``, ..."""
    digits = max(3, len(str(dim - 1)))
    return [f"{EMBEDDING_PREFIX}{i:0{digits}d}" for i in range(dim)]


@dataclass
class PredictResult:
    """Predictions of a model for a set of cells (rows in the order of ``crop_index``).

    Attributes
    ----------
    crop_index : ndarray of int, shape (N,)
        Crop store row of each cell.
    class_names : list of str
        The model's classes (empty for an embedding-only model).
    classes : ndarray of str, shape (N,) or None
        Predicted class of each cell.
    probabilities : ndarray of float32, shape (N, K) or None
        Softmax probabilities, columns in ``class_names`` order.
    confidence : ndarray of float32, shape (N,) or None
        The highest class probability.
    margin : ndarray of float32, shape (N,) or None
        Highest minus second-highest probability (0: undecided between two
        classes, 1: certain).
    embeddings : ndarray of float32, shape (N, D) or None
        The model's penultimate layer (``model.embed``).
    """

    crop_index: np.ndarray
    class_names: list[str] = field(default_factory=list)
    classes: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    confidence: np.ndarray | None = None
    margin: np.ndarray | None = None
    embeddings: np.ndarray | None = None

    def set_probabilities(self, probabilities: np.ndarray) -> None:
        """Set ``probabilities`` and the classes, confidences and margins they give."""
        probabilities = np.asarray(probabilities, dtype=np.float32)
        self.probabilities = probabilities
        self.classes = np.asarray(self.class_names, dtype=object)[probabilities.argmax(axis=1)]
        self.confidence, self.margin = top_two(probabilities)

    def predictions_frame(self, model_name: str = "") -> pd.DataFrame:
        """The ``predictions`` column group of these cells, ``pred_model`` set to ``model_name``.

        Columns ``crop_index``, ``pred_class``, ``pred_confidence`` (top probability),
        ``pred_margin`` (top minus second probability), ``pred_model`` and ``prob_<class>``.

        Examples
        --------
        >>> result = PredictResult(crop_index=np.array([4, 7]), class_names=["a", "b"])
        >>> result.set_probabilities(np.array([[0.75, 0.25], [0.375, 0.625]]))
        >>> result.predictions_frame("forest").to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
        {'crop_index': [4, 7], 'pred_class': ['a', 'b'], 'pred_confidence': [0.75, 0.625],
         'pred_margin': [0.5, 0.25], 'pred_model': ['forest', 'forest'], 'prob_a': [0.75, 0.375],
         'prob_b': [0.25, 0.625]}
        """
        if self.probabilities is None:
            raise ValueError("This model makes no class predictions (it only embeds cells).")
        frame = pd.DataFrame({CROP_INDEX: np.asarray(self.crop_index, dtype=np.int64),
                              "pred_class": np.asarray(self.classes, dtype=object).astype(str),
                              "pred_confidence": np.asarray(self.confidence, dtype=np.float32),
                              "pred_margin": np.asarray(self.margin, dtype=np.float32),
                              "pred_model": str(model_name)})
        probabilities = pd.DataFrame(
            np.asarray(self.probabilities, dtype=np.float32),
            columns=[f"{PROBABILITY_PREFIX}{c}" for c in self.class_names],
        )
        return pd.concat([frame, probabilities], axis=1)

    def embeddings_frame(self) -> pd.DataFrame:
        """``crop_index`` and ``emb_000`` ... columns."""
        if self.embeddings is None:
            raise ValueError("Embeddings were not computed (embeddings=False).")
        frame = pd.DataFrame(self.embeddings, columns=embedding_column_names(self.embeddings.shape[1]))
        frame.insert(0, CROP_INDEX, self.crop_index)
        return frame


def top_two(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top probability of each row and its margin over the second (1 with one class).

    Examples
    --------
    >>> confidence, margin = top_two(np.array([[0.25, 0.5, 0.25], [1.0, 0.0, 0.0]]))
    >>> confidence.tolist(), margin.tolist()
    ([0.5, 1.0], [0.25, 1.0])
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.shape[1] < 2:
        ones = np.ones(len(probabilities), dtype=np.float32)
        return ones, ones.copy()
    top2 = np.partition(probabilities, -2, axis=1)[:, -2:]
    return top2[:, 1].astype(np.float32), (top2[:, 1] - top2[:, 0]).astype(np.float32)


def _channel_selection(model_channels: list[str], data_channels: list[str] | None, n_data: int) -> list[int] | None:
    """Indices of the model's channels in the data (None: take the data as is)."""
    if data_channels is None:
        if n_data != len(model_channels):
            raise ValueError(
                f"The model was trained on {len(model_channels)} channels ({', '.join(model_channels)}) "
                f"but the crops have {n_data}; give the data's channel names or use matching crops."
            )
        return None
    data_channels = list(data_channels)
    if len(data_channels) != n_data:
        raise ValueError(f"{len(data_channels)} channel names given for crops with {n_data} channels.")
    if data_channels == list(model_channels):
        return None
    missing = [c for c in model_channels if c not in data_channels]
    if missing:
        raise ValueError(
            f"The model was trained on channels {', '.join(model_channels)} but the data has "
            f"{', '.join(data_channels)} (missing: {', '.join(missing)}). Use a model trained on "
            "these channels, or crops with the model's channels."
        )
    return [data_channels.index(c) for c in model_channels]


def iter_model_outputs(
    model: nn.Module,
    reader: CropReader,
    crop_indices,
    preprocess: Preprocess,
    *,
    batch_size: int,
    device: torch.device,
    forward: Callable[[nn.Module, torch.Tensor], tuple],
    channel_index: list[int] | None = None,
    amp: bool = True,
    channels_last: bool = False,
    cancel=None,
    cancel_message: str = "Prediction was cancelled.",
) -> Iterator[tuple[np.ndarray, tuple]]:
    """Yield ``(positions, forward(model, batch))`` over crops read in chunk order.

    ``positions`` index into ``crop_indices``. The model must be in eval mode;
    gradients are off. The next batch is read by a background thread.
    ``cancel`` is checked before each batch; when set, :class:`napari_hcs.cancel.Cancelled`
    carries ``cancel_message``.
    """
    batches = reader.iter_batches(crop_indices, batch_size)
    for positions, raw in prefetched(batches, 2):
        check_cancel(cancel, cancel_message)
        # Gradients are off for the forward pass only, never across a yield.
        with torch.no_grad():
            batch = torch.from_numpy(raw)
            if channel_index is not None:
                batch = batch[:, channel_index]
            batch = preprocess(batch.to(device))
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, amp):
                outputs = forward(model, batch)
        yield positions, outputs


def _classify(model: nn.Module, batch: torch.Tensor):
    logits, embedding = model(batch, return_embedding=True)
    return logits.float(), embedding.float()


def _embed(model: nn.Module, batch: torch.Tensor):
    return None, model.embed(batch).float()


def _normaliser(meta: dict, table, crops, channel_index, cancel) -> PlateNormaliser | None:
    """The model's per-plate normalisation, knowing the plates of ``table`` (None: global)."""
    stored = PlateNormaliser.from_meta(meta.get("normalisation"))
    if stored is None:
        return None
    if table is None and len(stored.plates) == 1:  # crops without plate metadata: the model's one plate
        table = pd.DataFrame({CROP_INDEX: np.arange(int(crops.shape[0])), "plate": stored.plates[0]})
    if table is None:
        raise ValueError(
            f"This model normalises every plate with its own statistics (trained on plate(s) "
            f"{', '.join(stored.plates)}); pass the cell table of these crops (table=..., with crop_index "
            "and plate) so that each cell is normalised with its plate's."
        )
    return stored.extend(table, crops, channels=channel_index, cancel=cancel)


def predict_cells(
    model: nn.Module | str | os.PathLike,
    meta: dict | None,
    crops,
    *,
    indices=None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    channels: list[str] | None = None,
    embeddings: bool = True,
    table: pd.DataFrame | None = None,
    tta: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> PredictResult:
    """Classify and embed cells with a trained model.

    Computes in the model's training precision on this device: mixed precision
    (bfloat16 on CUDA and on CPUs with bfloat16 instructions, float16 on other
    GPUs; :mod:`napari_hcs.nn.precision`) unless it was trained with
    ``amp=False``, then float32.

    Parameters
    ----------
    model : torch.nn.Module or path
        A trained model (with ``meta``), or a checkpoint file (``meta`` may be None).
    meta : dict or None
        The model's metadata from :func:`napari_hcs.nn.checkpoint.load_checkpoint`
        or :attr:`napari_hcs.nn.training.TrainResult.meta`.
    crops : zarr.Array or numpy.ndarray
        ``(N, C, S, S)`` crop store (``CellStore(folder).crops``).
    indices : array of int, optional
        Crop store rows to predict; all rows by default.
    batch_size : int
        Cells per forward pass.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    channels : list of str, optional
        Channel names of ``crops``; checked against the model's (and reordered
        when the data holds the model's channels in another order).
    embeddings : bool
        Also return the embeddings.
    table : DataFrame, optional
        The cell table of ``crops`` (``crop_index``, ``plate``, and the controls
        column of a model normalised against controls); needed by a model
        normalised per plate: plates it was trained on use its stored
        statistics, every other plate its own, computed from its cells here.
        Without a table, the crops count as cells of the model's plate when it
        was trained on one (an error when on several).
    tta : bool, optional
        Average the class probabilities (and embeddings) over the 8 flips and
        rotations of each crop; None: as the model was trained to (``meta["tta"]``).
    progress : callable, optional
        ``progress(done, total)`` after each batch.
    cancel : callable or threading.Event, optional
        Checked before each batch; when set, raises InterruptedError.

    Returns
    -------
    PredictResult
        Rows in the order of ``indices``.

    Raises
    ------
    ValueError
        If the crops' channels or size do not match the model's (naming both),
        or a per-plate model gets no table.

    Examples
    --------
    >>> from napari_hcs.nn.models import build_model
    >>> model = build_model("cnn1", in_channels=2, num_classes=3, depth=1, width=1, hidden=8)
    >>> meta = {"channels": ["DNA", "GFP"], "classes": ["a", "b", "c"],
    ...         "preprocess": Preprocess(crop_size=8).to_meta()}
    >>> out = predict_cells(model, meta, np.zeros((5, 2, 8, 8), np.float32), device="cpu")
    >>> out.probabilities.shape, out.embeddings.shape, out.classes.shape
    ((5, 3), (5, 8), (5,))
    """
    device = resolve_device(device)
    if not isinstance(model, nn.Module):
        model, meta = load_checkpoint(model, device=device)
    if meta is None:
        raise ValueError("predict_cells needs the model's metadata (meta) with its channels and preprocessing.")
    model = getattr(model, "module", model).to(device).eval()
    shape = tuple(getattr(crops, "shape", ()))
    if len(shape) != 4:
        raise ValueError(f"Crops must have shape (cells, channels, size, size); got {shape}.")
    channel_index = _channel_selection(list(meta["channels"]), channels, shape[1])
    preprocess = Preprocess.from_meta(meta["preprocess"])
    if shape[-1] != preprocess.crop_size or shape[-2] != preprocess.crop_size:
        raise ValueError(
            f"The model was trained on {preprocess.crop_size}x{preprocess.crop_size} crops but these are "
            f"{shape[-2]}x{shape[-1]}; extract crops of the model's size."
        )
    crop_indices = np.arange(shape[0]) if indices is None else np.asarray(indices, dtype=np.int64)
    classify = getattr(model, "task", "classification") == "classification"
    class_names = [str(c) for c in meta.get("classes", [])] if classify else []
    n = len(crop_indices)
    probabilities = np.empty((n, len(class_names)), dtype=np.float32) if classify else None
    embedded = np.empty((n, model.embedding_dim), dtype=np.float32) if embeddings else None
    reader = CropReader(crops, cache_chunks=2, channels=channel_index,
                        normalise=_normaliser(meta, table, crops, channel_index, cancel))
    averaged = classify and (bool(meta.get("tta", False)) if tta is None else tta)
    outputs = iter_model_outputs(
        model, reader, crop_indices, preprocess,
        batch_size=batch_size, device=device, forward=tta_classify if averaged else (_classify if classify else _embed),
        amp=bool(meta.get("hyperparameters", {}).get("amp", True)),
        channels_last=device.type in ("cuda", "cpu"), cancel=cancel,
    )
    done = 0
    for positions, (logits, embedding) in outputs:
        if classify:
            probabilities[positions] = torch.softmax(logits, dim=1).cpu().numpy()
        if embeddings:
            embedded[positions] = embedding.cpu().numpy()
        done += len(positions)
        if progress is not None:
            progress(done, n)
    result = PredictResult(crop_index=crop_indices, class_names=class_names, embeddings=embedded)
    if classify:
        result.set_probabilities(probabilities)
    return result


def normalisation_table(project_dir: str | os.PathLike, cells: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """The cell table a model's per-plate normalisation reads: the store's cells, or the project's table.

    The store's cells (``CellStore.cells()``) have the plates; the project's
    cell table (with the well annotations joined) is read only when the model
    was normalised against controls, or within groups, named by a column the
    store lacks (a well annotation such as ``class``).
    """
    stored = PlateNormaliser.from_meta(meta.get("normalisation"))
    if stored is None:
        return cells
    from ..learn.plates import parse_controls

    needed = [*stored.within, *([parse_controls(stored.controls)[0]] if stored.controls else [])]
    if all(column in cells.columns for column in needed):
        return cells
    from ..project import Project

    return Project(project_dir).cell_table()


def predict_project(
    project_dir: str | os.PathLike,
    model_path: str | os.PathLike,
    *,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    embeddings: bool = True,
    model_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> PredictResult:
    """Predict every cell of a project and store the results in its cell store.

    Writes the column groups ``predictions`` (``crop_index``, ``pred_class``,
    ``pred_confidence``, ``pred_margin``, ``pred_model``, ``prob_<class>``;
    classifiers only) and ``embeddings`` (``crop_index``, ``emb_000`` ...),
    replacing earlier ones; they appear in ``Project(project_dir).cell_table()``.

    Parameters
    ----------
    project_dir : path
        Project folder with a cell store.
    model_path : path
        Checkpoint written by ``napari-hcs train`` / :func:`napari_hcs.nn.training.train_model`.
    model_name : str, optional
        The ``pred_model`` value; default the model file's name without ``.pt``.
    batch_size, device, embeddings, progress, cancel
        As for :func:`predict_cells`.

    Returns
    -------
    PredictResult
    """
    from ..project import CellStore

    store = CellStore(project_dir)
    model, meta = load_checkpoint(model_path, device=resolve_device(device))
    cells = store.cells()
    if cells.empty:
        raise ValueError(f"Project {project_dir} has no cells yet; run 'napari-hcs segment' first.")
    result = predict_cells(
        model, meta, store.crops, indices=cells[CROP_INDEX].to_numpy(), batch_size=batch_size,
        device=device, channels=store.channels, embeddings=embeddings,
        table=normalisation_table(project_dir, cells, meta), progress=progress,
        cancel=cancel,
    )
    if result.probabilities is not None:
        name = Path(model_path).stem if model_name is None else model_name
        store.write_columns("predictions", result.predictions_frame(name))
    if result.embeddings is not None:
        store.write_columns("embeddings", result.embeddings_frame())
    return result

