"""Training a CNN on single-cell crops.

:func:`train_model` trains one of the networks of :mod:`napari_hcs.nn.models` on
the crops of a cell table, split into train / val / test by whole wells
(:func:`napari_hcs.learn.splits.split_by_well`):

* per-channel normalisation from the training crops (one streaming pass);
* class-balanced sampling, batch augmentation (flips, 90-degree rotations,
  pad-4 random crop, optional intensity jitter) on the training device;
* Adam with weight decay, a cosine or one-cycle learning-rate schedule;
* the best epoch by validation loss is kept, with early stopping;
* mixed precision and channels-last memory on CUDA;
* the same seed gives the same model on the same device.

Launched with ``torchrun`` (``WORLD_SIZE`` > 1) it trains with
DistributedDataParallel: every process takes its shard of each epoch's
batches (``batch_size`` is per process), validation losses are summed over
the processes, and only rank 0 computes the final metrics and writes the
checkpoint.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..project.cell_store import CROP_INDEX
from .checkpoint import save_checkpoint
from .data import (
    ChunkBatchSampler,
    CropDataset,
    CropReader,
    DeviceBatches,
    Preprocess,
    StreamingBatches,
    augment_batch,
    channel_statistics,
    check_cancel,
    chunk_rows,
)
from .device import DistributedContext, distributed_context
from .models import MODELS, build_model, model_task
from .predict import autocast_context, iter_model_outputs

__all__ = ["SCHEDULES", "TrainResult", "TrainingError", "train_model"]

SCHEDULES = ("cosine", "onecycle", "constant")
SPLIT_NAMES = ("train", "val", "test")
#: Training sets up to this size are read once into (device) memory.
PRELOAD_LIMIT_BYTES = 4 * 1024**3
#: Cells shuffled together when streaming from the store.
SHUFFLE_WINDOW = 8192
IDENTITY_COLUMNS = ("plate", "well", "site", "field", "timepoint", "label", "cell")


class TrainingError(ValueError):
    """Raised when the table, labels, split or crops cannot be trained on."""


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    Attributes
    ----------
    model : torch.nn.Module
        The trained network (best epoch by validation loss), in eval mode.
    history : list of dict
        One row per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy``, ``seconds``, ``images_per_s``.
    metrics : dict
        ``{"val": ..., "test": ...}`` for the splits that have cells, each from
        :func:`napari_hcs.learn.metrics.classification_metrics` (autoencoders:
        ``{"reconstruction_mse": ...}``). Empty on ranks other than 0.
    meta : dict
        Checkpoint metadata: architecture, channels, preprocessing, classes,
        hyper-parameters, history, split counts, metrics.
    checkpoint : pathlib.Path or None
        Where the model was written (``checkpoint_path``), on rank 0.
    """

    model: nn.Module
    history: list[dict]
    metrics: dict
    meta: dict
    checkpoint: Path | None = None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model and its metadata to ``path`` (see :mod:`napari_hcs.nn.checkpoint`)."""
        return save_checkpoint(path, self.model, self.meta)


@dataclass
class _Subset:
    crop_indices: np.ndarray
    labels: np.ndarray


@dataclass
class _Prepared:
    classes: list[str]
    subsets: dict[str, _Subset]
    split_counts: dict
    split_groups: dict
    describe: Callable[[int], str]


# -- checking and preparing the inputs ------------------------------------------


def _describer(table: pd.DataFrame) -> Callable[[int], str]:
    columns = [c for c in IDENTITY_COLUMNS if c in table.columns]
    lookup = table.set_index(CROP_INDEX)[columns] if columns else None

    def describe(crop_index: int) -> str:
        if lookup is None or crop_index not in lookup.index:
            return "cell not in the table"
        row = lookup.loc[crop_index]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        return ", ".join(f"{c} {row[c]}" for c in columns)

    return describe


def _resolve_split(table: pd.DataFrame, label_column: str | None, split, seed: int) -> pd.Series:
    if split is None:
        from ..learn.splits import split_by_well

        labels_for_split = label_column
        if label_column is None:  # label-free models: hold out wells without stratifying
            table = table.assign(_all_cells="cells")
            labels_for_split = "_all_cells"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            split = split_by_well(table, labels_for_split, val_fraction=0.2, test_fraction=0.0, seed=seed)
        for warning in caught:
            warnings.warn(str(warning.message), UserWarning, stacklevel=4)
        return split
    if isinstance(split, str):
        if split not in table.columns:
            raise TrainingError(
                f"Split column {split!r} is not in the cell table; columns are: {', '.join(map(str, table.columns))}."
            )
        split = table[split]
    split = pd.Series(split)
    if len(split) != len(table):
        raise TrainingError(f"The split has {len(split)} rows but the table has {len(table)}.")
    if not split.index.equals(table.index):
        same_rows = split.index.is_unique and table.index.is_unique and set(split.index) == set(table.index)
        # Same row labels in another order: align them; otherwise take the split row by row.
        split = split.reindex(table.index) if same_rows else pd.Series(split.to_numpy(), index=table.index)
    split = split.fillna("").astype(str).str.strip().str.lower()
    unknown = sorted(set(split.unique()) - set(SPLIT_NAMES) - {""})
    if unknown:
        raise TrainingError(f"The split holds {', '.join(map(repr, unknown))}; expected train, val, test or empty.")
    return split


def _split_groups(table: pd.DataFrame, used: pd.Series, split: pd.Series) -> dict:
    if "well" not in table.columns:
        return {}
    groups = table["well"].astype(str)
    if "plate" in table.columns and table["plate"].nunique() > 1:
        groups = table["plate"].astype(str) + "/" + groups
    return {name: sorted(groups[used & (split == name)].unique().tolist()) for name in SPLIT_NAMES}


def _check_classes(classes: list[str], label_column: str, labels: pd.Series, used: pd.Series, split: pd.Series) -> None:
    """Refuse a single class, and classes that have no training cells."""
    if len(classes) < 2:
        raise TrainingError(
            f"Label column {label_column!r} has a single class ({classes[0]!r}) among its "
            f"{int(used.sum())} labelled cells; a classifier needs at least two classes."
        )
    untrained = sorted(set(classes) - set(labels[used & (split == "train")].unique()))
    if untrained:
        where = ", ".join(
            f"{c!r} ({int((used & (labels == c)).sum())} cells, all in "
            f"{'/'.join(sorted(split[used & (labels == c)].unique()))})"
            for c in untrained
        )
        raise TrainingError(f"Class(es) with no training cells: {where}. Put some of their wells in the train split.")


def _prepare(table: pd.DataFrame, crops_shape: tuple, label_column: str | None, split, seed: int) -> _Prepared:
    if CROP_INDEX not in table.columns:
        raise TrainingError(
            f"The cell table has no {CROP_INDEX!r} column tying rows to crops; columns are: "
            f"{', '.join(map(str, table.columns))}."
        )
    if label_column is not None and label_column not in table.columns:
        raise TrainingError(
            f"Label column {label_column!r} is not in the cell table; columns are: "
            f"{', '.join(map(str, table.columns))}."
        )
    split = _resolve_split(table, label_column, split, seed).reset_index(drop=True)
    table = table.reset_index(drop=True)
    if label_column is None:
        labels = pd.Series("cells", index=table.index)
        labelled = pd.Series(True, index=table.index)
    else:
        raw = table[label_column]
        labelled = ~(raw.isna() | (raw.astype(str).str.strip() == ""))
        labels = raw.astype(str).str.strip()
    used = labelled & split.isin(SPLIT_NAMES)
    crop_index = table[CROP_INDEX].to_numpy(dtype=np.int64)
    out_of_range = used & ((crop_index < 0) | (crop_index >= crops_shape[0]))
    if out_of_range.any():
        first = int(crop_index[out_of_range.to_numpy()][0])
        raise TrainingError(
            f"{int(out_of_range.sum())} row(s) point past the crop store (e.g. crop_index {first}; "
            f"the store holds {crops_shape[0]} crops)."
        )
    train = used & (split == "train")
    if not train.any():
        raise TrainingError(
            f"No labelled cell is in the train split ({int(labelled.sum())} labelled cells; split counts: "
            f"{split[labelled].value_counts().to_dict()})."
        )
    classes = sorted(labels[used].unique().tolist())
    if label_column is not None:
        _check_classes(classes, label_column, labels, used, split)
    code = {c: i for i, c in enumerate(classes)}
    subsets, counts = {}, {}
    for name in SPLIT_NAMES:
        rows = used & (split == name)
        if rows.any():
            subsets[name] = _Subset(crop_index[rows.to_numpy()], labels[rows].map(code).to_numpy(np.int64))
            counts[name] = {str(k): int(v) for k, v in labels[rows].value_counts().sort_index().items()}
    return _Prepared(
        classes=classes if label_column is not None else [],
        subsets=subsets,
        split_counts=counts,
        split_groups=_split_groups(table, used, split),
        describe=_describer(table),
    )


# -- the training loop ---------------------------------------------------------


@contextmanager
def _seeded(seed: int, deterministic: bool):
    """Seed torch and, while training, prefer deterministic kernels; restore the settings after."""
    torch.manual_seed(seed)
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def _model_hyperparameters(name: str, depth: int, width: int, dropout: float, options: dict | None) -> dict:
    if name not in MODELS:
        raise TrainingError(f"Unknown model {name!r}; models are: {', '.join(MODELS)}.")
    hp = {"width": width} if name == "ae" else {"depth": depth, "width": width, "dropout": dropout}
    hp.update(options or {})
    return hp


def _preload(reader: CropReader, crop_indices: np.ndarray, cancel) -> np.ndarray:
    out = np.empty((len(crop_indices), *reader.shape[1:]), dtype=reader.dtype)
    for positions, raw in reader.iter_batches(crop_indices, 4096):
        check_cancel(cancel, "Reading the training crops")
        out[positions] = raw
    return out


def _preload_fits(n_bytes: int, device: torch.device) -> bool:
    if n_bytes > PRELOAD_LIMIT_BYTES:
        return False
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return n_bytes < free // 4
    return True


def _make_scheduler(optimizer, schedule: str, lr: float, total_steps: int):
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class _Task:
    """Loss and evaluation of a classifier, or of an autoencoder (reconstruction)."""

    def __init__(self, classify: bool):
        self.classify = classify

    def loss(self, outputs: torch.Tensor, batch: torch.Tensor, labels: torch.Tensor):
        if self.classify:
            loss = F.cross_entropy(outputs.float(), labels)
            return loss, (outputs.argmax(dim=1) == labels).sum()
        return F.mse_loss(outputs.float(), batch), None

    def forward_eval(self, model: nn.Module, batch: torch.Tensor):
        outputs = model(batch)
        if self.classify:
            return (outputs.float(),)
        return (((outputs.float() - batch) ** 2).mean(dim=(1, 2, 3)),)


def _evaluate_loss(model, task, reader, subset, preprocess, ctx, *, batch_size, amp, channels_last, cancel, shard):
    """Mean loss and accuracy over a subset; summed over the processes when distributed."""
    crop_indices, labels = subset.crop_indices, subset.labels
    if shard and ctx.enabled:
        crop_indices, labels = crop_indices[ctx.rank :: ctx.world_size], labels[ctx.rank :: ctx.world_size]
    totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, correct, count
    label_tensor = torch.from_numpy(labels).to(ctx.device)
    for positions, (outputs,) in iter_model_outputs(
        model, reader, crop_indices, preprocess, batch_size=batch_size, device=ctx.device,
        forward=task.forward_eval, amp=amp, channels_last=channels_last, cancel=cancel, what="Training",
    ):
        index = torch.from_numpy(positions).to(ctx.device)
        if task.classify:
            y = label_tensor[index]
            totals[0] += F.cross_entropy(outputs, y, reduction="sum").double()
            totals[1] += (outputs.argmax(dim=1) == y).sum()
        else:
            totals[0] += outputs.sum().double()
        totals[2] += len(positions)
    if shard and ctx.enabled:
        torch.distributed.all_reduce(totals)
    loss_sum, correct, count = totals.tolist()
    count = max(count, 1)
    return loss_sum / count, (correct / count if task.classify else None)


def _final_metrics(model, task, reader, prepared, preprocess, ctx, *, batch_size, amp, channels_last, cancel):
    from ..learn.metrics import classification_metrics

    metrics = {}
    for name in ("val", "test"):
        subset = prepared.subsets.get(name)
        if subset is None:
            continue
        if not task.classify:
            loss, _ = _evaluate_loss(model, task, reader, subset, preprocess, ctx, batch_size=batch_size,
                                     amp=amp, channels_last=channels_last, cancel=cancel, shard=False)
            metrics[name] = {"reconstruction_mse": loss, "n": int(len(subset.crop_indices))}
            continue
        predicted = np.empty(len(subset.crop_indices), dtype=np.int64)
        for positions, (outputs,) in iter_model_outputs(
            model, reader, subset.crop_indices, preprocess, batch_size=batch_size, device=ctx.device,
            forward=task.forward_eval, amp=amp, channels_last=channels_last, cancel=cancel, what="Training",
        ):
            predicted[positions] = outputs.argmax(dim=1).cpu().numpy()
        classes = np.asarray(prepared.classes, dtype=object)
        metrics[name] = classification_metrics(
            classes[subset.labels].tolist(), classes[predicted].tolist(), list(prepared.classes)
        )
    return metrics


def _synchronise_buffers(model: nn.Module, ctx: DistributedContext) -> None:
    """Give every process rank 0's batch-norm statistics (they drift apart between broadcasts)."""
    if ctx.enabled:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


def train_model(
    table: pd.DataFrame,
    crops,
    *,
    label_column: str | None,
    split=None,
    model: str = "wrn",
    depth: int = 2,
    width: int = 2,
    dropout: float = 0.0,
    model_options: dict | None = None,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    balanced: bool = True,
    early_stopping: int = 5,
    augment: bool = True,
    intensity_jitter: float = 0.0,
    input_size: int | None = None,
    resize_mode: str = "resize",
    channels: list[str] | None = None,
    device: str | torch.device = "auto",
    amp: bool = True,
    channels_last: bool | None = None,
    preload: bool | None = None,
    deterministic: bool | None = None,
    seed: int = 0,
    checkpoint_path: str | os.PathLike | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    cancel=None,
) -> TrainResult:
    """Train a network on the crops of a cell table.

    Parameters
    ----------
    table : DataFrame
        Cell table with ``crop_index`` and the label column (e.g.
        ``Project(folder).cell_table()``).
    crops : zarr.Array or numpy.ndarray
        ``(N, C, S, S)`` crop store (``CellStore(folder).crops``), indexed by ``crop_index``.
    label_column : str or None
        Column with each cell's class; rows without a label are left out.
        None trains the label-free autoencoder (``model="ae"``).
    split : Series or str, optional
        ``"train"``/``"val"``/``"test"`` (or empty: unused) per row, or the name
        of such a column; default :func:`napari_hcs.learn.splits.split_by_well` with
        20 % of each class's wells for validation.
    model : {"wrn", "cnn1", "cnn2", "cnn3", "ae"}
        Network (see :mod:`napari_hcs.nn.models`).
    depth, width, dropout : int, int, float
        Blocks (convolutions) per stage, widening factor, dropout rate.
    model_options : dict, optional
        Further hyper-parameters of the network (e.g. ``hidden``, ``embedding_dim``).
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Cells per batch (per process when distributed).
    lr, weight_decay : float
        Adam learning rate and (L2) weight decay.
    schedule : {"cosine", "onecycle", "constant"}
        Learning-rate schedule, stepped every batch.
    balanced : bool
        Draw training cells with probability inversely proportional to their
        class size (each epoch draws as many cells as the train split holds).
    early_stopping : int
        Stop after this many epochs without a lower validation loss (0: never).
    augment : bool
        Random flips, 90-degree rotations and pad-4 random crops.
    intensity_jitter : float
        Standard deviation of random per-channel gain and offset (0: none).
    input_size : int, optional
        Network input side; crops are resized (or centre-cropped) to it. None keeps the crop size.
    resize_mode : {"resize", "center"}
        How crops reach ``input_size``.
    channels : list of str, optional
        Channel names of ``crops`` (stored in the model); default ``channel_0`` ...
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    amp : bool
        Mixed precision (bfloat16, or float16 with loss scaling) on CUDA only.
    channels_last : bool, optional
        Channels-last memory format; default on CUDA.
    preload : bool, optional
        Read the training crops into (device) memory once; default when they
        take at most 4 GiB (and a quarter of the free GPU memory). Otherwise
        batches stream from the store in chunk order.
    deterministic : bool, optional
        Use deterministic kernels, so that a rerun with the same seed on the same
        machine gives the same model bit for bit. Default: on CPU, where it costs
        nothing; off on GPUs, where deterministic cuDNN kernels are slower (runs
        are then seeded but not bit-identical).
    seed : int
        Seeds the initial weights, the sampling and the augmentation.
    checkpoint_path : path, optional
        Write the trained model there (rank 0 only).
    progress : callable, optional
        ``progress(epoch, epochs, history_row)`` after each epoch.
    cancel : callable or threading.Event, optional
        Checked before each batch; when set, raises InterruptedError.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingError
        Missing label or ``crop_index`` column (the message lists the columns),
        a single class, a class without training cells, a bad split.
    ValueError
        NaN or infinite pixels in a crop (naming the crop and its cell).
    InterruptedError
        When cancelled.

    Examples
    --------
    >>> project = Project("plate.napari-hcs")
    >>> result = train_model(project.cell_table(), project.cell_store().crops,
    ...                      label_column="class", epochs=10, channels=project.cell_store().channels)
    >>> result.metrics["val"]["accuracy"]
    """
    if schedule not in SCHEDULES:
        raise TrainingError(f"Unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}.")
    if epochs < 1 or batch_size < 1:
        raise TrainingError(f"epochs and batch_size must be at least 1; got {epochs} and {batch_size}.")
    hp = _model_hyperparameters(model, depth, width, dropout, model_options)
    shape = tuple(int(s) for s in getattr(crops, "shape", ()))
    if len(shape) != 4 or shape[2] != shape[3]:
        raise TrainingError(f"Crops must have shape (cells, channels, size, size); got {shape}.")
    channels = list(channels) if channels is not None else [f"channel_{i}" for i in range(shape[1])]
    if len(channels) != shape[1]:
        raise TrainingError(f"{len(channels)} channel names ({', '.join(channels)}) for crops with {shape[1]} channels.")
    classify = model_task(model) == "classification"
    if classify and label_column is None:
        raise TrainingError(f"Model {model!r} is a classifier and needs a label column.")
    prepared = _prepare(table, shape, label_column if classify else None, split, seed)
    settings = dict(
        model=model, depth=depth, width=width, dropout=dropout, model_options=model_options or {},
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, schedule=schedule,
        balanced=balanced, early_stopping=early_stopping, augment=augment, intensity_jitter=intensity_jitter,
        amp=amp, seed=seed, deterministic=deterministic,
    )
    ctx = distributed_context(device)
    if deterministic is None:
        deterministic = ctx.device.type == "cpu"
    settings["deterministic"] = deterministic
    try:
        with _seeded(seed, deterministic):
            return _train(
                prepared, crops, ctx, hp=hp, classify=classify, channels=channels, shape=shape,
                label_column=label_column, input_size=input_size, resize_mode=resize_mode,
                channels_last=ctx.device.type == "cuda" if channels_last is None else channels_last,
                preload=preload, checkpoint_path=checkpoint_path, progress=progress, cancel=cancel,
                settings=settings,
            )
    finally:
        ctx.close()


def _training_batches(prepared, crops, reader, preprocess, ctx, *, settings, classify, preload, cancel):
    """The epoch batch source (in memory or streaming); sets the normalisation of ``preprocess``."""
    train_set = prepared.subsets["train"]
    weights = None
    if settings["balanced"] and classify:
        counts = np.bincount(train_set.labels, minlength=len(prepared.classes))
        weights = 1.0 / counts[train_set.labels]
    sampler_options = dict(batch_size=settings["batch_size"], weights=weights, seed=settings["seed"],
                           rank=ctx.rank, world_size=ctx.world_size, drop_last=True)
    if preload:
        in_memory = _preload(reader, train_set.crop_indices, cancel)
        preprocess.mean, preprocess.std = channel_statistics(
            CropReader(in_memory, describe=lambda i: prepared.describe(int(train_set.crop_indices[i]))),
            np.arange(len(in_memory)), preprocess, cancel=cancel,
        )
        return DeviceBatches(
            torch.from_numpy(in_memory).to(ctx.device), torch.from_numpy(train_set.labels).to(ctx.device),
            ChunkBatchSampler(np.arange(len(in_memory)), **sampler_options),
        )
    preprocess.mean, preprocess.std = channel_statistics(reader, train_set.crop_indices, preprocess, cancel=cancel)
    return StreamingBatches(
        CropDataset(crops, train_set.crop_indices, train_set.labels, cache_chunks=reader.cache_chunks,
                    describe=prepared.describe),
        ChunkBatchSampler(train_set.crop_indices, chunk_rows=chunk_rows(crops), window=SHUFFLE_WINDOW,
                          **sampler_options),
        ctx.device,
    )


class _Trainer:
    """The network, its optimiser and schedule, and one epoch of training."""

    def __init__(self, net, batches, preprocess, ctx, *, settings, classify, amp, channels_last, cancel):
        self.net, self.batches, self.preprocess, self.ctx = net, batches, preprocess, ctx
        self.settings, self.amp, self.channels_last, self.cancel = settings, amp, channels_last, cancel
        self.task = _Task(classify)
        device = ctx.device
        self.trained = net
        if ctx.enabled:
            device_ids = [device.index] if device.type == "cuda" else None
            self.trained = nn.parallel.DistributedDataParallel(net, device_ids=device_ids)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
        self.scheduler = _make_scheduler(self.optimizer, settings["schedule"], settings["lr"],
                                         settings["epochs"] * len(batches))
        # Loss scaling only for float16; bfloat16 needs none.
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())
        self.generator = torch.Generator(device=device).manual_seed(settings["seed"] * 1009 + ctx.rank)

    def _augmented(self, raw: torch.Tensor) -> torch.Tensor:
        s = self.settings
        batch = self.preprocess(raw)
        if s["augment"] or s["intensity_jitter"] > 0:
            batch = augment_batch(batch, generator=self.generator, dihedral=s["augment"],
                                  pad=4 if s["augment"] else 0, intensity=s["intensity_jitter"])
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def epoch(self, epoch: int) -> dict:
        """Train one epoch; return its history row (without validation)."""
        device = self.ctx.device
        self.net.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for raw, labels in self.batches.epoch(epoch):
            check_cancel(self.cancel, "Training")
            batch = self._augmented(raw)
            with autocast_context(device, self.amp):
                outputs = self.trained(batch)
            loss, hits = self.task.loss(outputs, batch, labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            # Accumulated on the device: no synchronisation per batch.
            loss_sum += loss.detach().double() * len(labels)
            if hits is not None:
                correct += hits
            seen += len(labels)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        _synchronise_buffers(self.net, self.ctx)
        return {
            "epoch": epoch,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum.item() / max(seen, 1),
            "train_accuracy": correct.item() / max(seen, 1) if self.task.classify else None,
            "seconds": seconds,
            "images_per_s": seen * self.ctx.world_size / seconds if seconds > 0 else None,
        }


def _fit(trainer: _Trainer, reader, prepared, preprocess, ctx, progress, eval_options):
    """Run the epochs; keep the best state by validation loss (the last one without val cells)."""
    s = trainer.settings
    history: list[dict] = []
    best = {"loss": float("inf"), "epoch": 0, "state": None}
    has_val = "val" in prepared.subsets
    for epoch in range(1, s["epochs"] + 1):
        row = trainer.epoch(epoch)
        if has_val:
            trainer.net.eval()
            row["val_loss"], row["val_accuracy"] = _evaluate_loss(
                trainer.net, trainer.task, reader, prepared.subsets["val"], preprocess, ctx, shard=True,
                **eval_options,
            )
        history.append(row)
        monitored = row["val_loss"] if has_val else row["train_loss"]
        if not has_val or monitored < best["loss"]:
            best.update(loss=monitored, epoch=epoch, state=copy.deepcopy(trainer.net.state_dict()))
        if progress is not None and ctx.is_main:
            progress(epoch, s["epochs"], row)
        if has_val and s["early_stopping"] and epoch - best["epoch"] >= s["early_stopping"]:
            return history, best, True
    return history, best, False


def _train(prepared, crops, ctx, *, hp, classify, channels, shape, label_column, input_size, resize_mode,
           channels_last, preload, checkpoint_path, progress, cancel, settings) -> TrainResult:
    s = settings
    device = ctx.device
    amp = s["amp"] and device.type == "cuda"
    reader = CropReader(crops, cache_chunks=2 + SHUFFLE_WINDOW // max(chunk_rows(crops) or SHUFFLE_WINDOW, 1),
                        describe=prepared.describe)
    preprocess = Preprocess(crop_size=shape[-1], input_size=input_size, mode=resize_mode)
    n_bytes = len(prepared.subsets["train"].crop_indices) * int(np.prod(shape[1:])) * np.dtype(crops.dtype).itemsize
    preload = _preload_fits(n_bytes, device) if preload is None else preload
    batches = _training_batches(prepared, crops, reader, preprocess, ctx, settings=s, classify=classify,
                                preload=preload, cancel=cancel)
    torch.manual_seed(s["seed"])
    net = build_model(s["model"], in_channels=shape[1], crop_size=preprocess.size,
                      **({"num_classes": len(prepared.classes)} if classify else {}), **hp).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    trainer = _Trainer(net, batches, preprocess, ctx, settings=s, classify=classify, amp=amp,
                       channels_last=channels_last, cancel=cancel)
    task = trainer.task
    eval_options = dict(batch_size=max(2 * s["batch_size"], 256), amp=amp, channels_last=channels_last, cancel=cancel)

    history, best, stopped_early = _fit(trainer, reader, prepared, preprocess, ctx, progress, eval_options)
    net.load_state_dict(best["state"])
    net.eval()
    metrics = _final_metrics(net, task, reader, prepared, preprocess, ctx, **eval_options) if ctx.is_main else {}
    meta = {
        "task": "classification" if classify else "embedding",
        "architecture": dict(net.config),
        "napari_hcs_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "channels": channels,
        "crop_size": shape[-1],
        "preprocess": preprocess.to_meta(),
        "classes": prepared.classes,
        "label_column": label_column,
        "hyperparameters": {**s, "input_size": preprocess.size, "resize_mode": resize_mode,
                            "channels_last": channels_last, "preload": preload,
                            "world_size": ctx.world_size, "device": device.type},
        "history": history,
        "best_epoch": best["epoch"],
        "stopped_early": stopped_early,
        "split": {"counts": prepared.split_counts, "groups": prepared.split_groups},
        "metrics": metrics,
    }
    net = net.to(memory_format=torch.contiguous_format)
    written = None
    if checkpoint_path is not None and ctx.is_main:
        written = save_checkpoint(checkpoint_path, net, meta)
    ctx.barrier()
    return TrainResult(model=net, history=history, metrics=metrics, meta=meta, checkpoint=written)
