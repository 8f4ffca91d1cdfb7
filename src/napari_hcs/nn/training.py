"""Training a CNN on single-cell crops.

:func:`train_model` trains one of the networks of :mod:`napari_hcs.nn.models` on
the crops of a cell table, with the options of a :class:`~napari_hcs.nn.config.TrainConfig`,
split into train / val / test by whole wells
(:func:`napari_hcs.learn.splits.split_by_well`):

* per-plate normalisation: every crop with its own plate's per-channel
  statistics, or its control cells' (:mod:`napari_hcs.nn.plate_normalisation`),
  then the per-channel statistics of the training crops (one streaming pass);
* class-balanced sampling, batch augmentation (flips, 90-degree rotations,
  pad-4 random crop, optional intensity jitter) on the training device;
* Adam with weight decay, a cosine or one-cycle learning-rate schedule;
* the best epoch by validation balanced accuracy (the loss breaking ties) is
  kept, with early stopping, and a cancel after the first finished epoch
  returns it too;
* test-time augmentation over the 8 flips and rotations when it scores better
  on the validation cells, and optionally an ensemble of seeds;
* an estimate of an epoch's duration after its first batches (``notice``);
* mixed precision on CUDA, channels-last memory on CUDA and CPU;
* the same seed gives the same model on the same device.

Launched with ``torchrun`` (``WORLD_SIZE`` > 1) it trains with
DistributedDataParallel: every process takes its shard of each epoch's
batches (``batch_size`` is per process), validation losses are summed over
the processes, and only rank 0 computes the final metrics and writes the
checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import __version__
from ..cancel import Cancelled, check_cancel
from ..vocabulary import CROP_INDEX
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .crop_reader import CropReader, chunk_rows
from .device import DistributedContext, distributed_context
from .models import SeedEnsemble, build_model, model_task
from .plate_normalisation import PlateNormaliser
from .prepare import Prepared, TrainingError, check_crops, prepare_subsets
from .preprocess import Preprocess, channel_statistics
from .precision import compute_dtype_name
from .sampling import ChunkBatchSampler, CropDataset, DeviceBatches, StreamingBatches
from .epoch_estimate import epoch_notice
from .trainer import Evaluator, FitOutcome, Task, Trainer, fit, seeded
from .self_training import confident_cells, pool_crop_indices, round_record, with_training_cells

__all__ = ["TrainResult", "TrainingError", "train_model"]

#: Training sets up to this size are read once into (device) memory.
PRELOAD_LIMIT_BYTES = 4 * 1024**3
#: Cells shuffled together when streaming from the store.
SHUFFLE_WINDOW = 8192


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    Attributes
    ----------
    model : torch.nn.Module
        The trained network (best epoch by validation balanced accuracy; a
        :class:`~napari_hcs.nn.models.SeedEnsemble` of such networks with
        ``ensemble`` > 1), in eval mode.
    history : list of dict
        One row per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy``, ``val_balanced_accuracy``, ``seconds``,
        ``images_per_s`` (and ``member``, the seed's number, in an ensemble).
    metrics : dict
        ``{"val": ..., "test": ...}`` for the splits that have cells, each from
        :func:`napari_hcs.learn.metrics.classification_metrics` (autoencoders:
        ``{"reconstruction_mse": ...}``). Empty on ranks other than 0.
    meta : dict
        Checkpoint metadata: architecture, channels, preprocessing,
        ``normalisation`` (method, controls and each plate's statistics), ``tta``
        (whether predictions average the 8 views) and ``tta_check`` (the
        validation scores it was chosen on), classes, ``hyperparameters`` (the
        :class:`TrainConfig` as run, with the choices made for this device, the
        device type and the number of processes), history, best epoch,
        ``members`` (per seed: seed, best epoch, epochs run), ``stopped_early``,
        ``cancelled``, split counts, metrics.
    checkpoint : pathlib.Path or None
        Where the model was written (``checkpoint_path``), on rank 0.
    cancelled : bool
        Whether a cancel ended the run after at least one finished epoch (the
        model is the best epoch so far; ``meta["cancelled"]`` records it).
    """

    model: nn.Module
    history: list[dict]
    metrics: dict
    meta: dict
    checkpoint: Path | None = None
    cancelled: bool = False

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model and its metadata to ``path`` (see :mod:`napari_hcs.nn.checkpoint`)."""
        return save_checkpoint(path, self.model, self.meta)


@dataclass
class _Run:
    """One training run: its data, its resolved options and its callbacks."""

    prepared: Prepared
    crops: object
    shape: tuple[int, ...]
    channels: list[str]
    label_column: str | None
    classify: bool
    ctx: DistributedContext
    config: TrainConfig
    progress: Callable[[int, int, dict], None] | None
    cancel: object
    table: pd.DataFrame
    notice: Callable[[str], None] | None = None


def train_model(
    table: pd.DataFrame,
    crops,
    config: TrainConfig | None = None,
    *,
    label_column: str | None,
    split=None,
    channels: list[str] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    cancel=None,
    notice: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a network on the crops of a cell table.

    Parameters
    ----------
    table : DataFrame
        Cell table with ``crop_index`` and the label column (e.g.
        ``Project(folder).cell_table()``).
    crops : zarr.Array or numpy.ndarray
        ``(N, C, S, S)`` crop store (``CellStore(folder).crops``), indexed by ``crop_index``.
    config : TrainConfig, optional
        Network, epochs, optimiser, sampling, augmentation, device, seed;
        default ``TrainConfig()``.
    label_column : str or None
        Column with each cell's class; rows without a label are left out.
        None trains the label-free autoencoder (``model="ae"``).
    split : Series or str, optional
        ``"train"``/``"val"``/``"test"`` (or empty: unused) per row, or the name
        of such a column; default :func:`napari_hcs.learn.splits.split_by_well` with
        20 % of each class's wells for validation.
    channels : list of str, optional
        Channel names of ``crops`` (stored in the model); default ``channel_0`` ...
    checkpoint_path : path, optional
        Write the trained model there (rank 0 only).
    progress : callable, optional
        ``progress(epoch, epochs, history_row)`` after each epoch (the row holds
        ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``seconds``, ...).
    cancel : callable or threading.Event, optional
        Checked before each batch. Set after at least one finished epoch, training
        stops and the best epoch so far is returned (and written) with
        ``cancelled=True``; set earlier, :class:`napari_hcs.cancel.Cancelled` (an
        InterruptedError) is raised and nothing is written.
    notice : callable, optional
        ``notice(text)`` once the first batches are timed: the estimated time per
        epoch and of the whole run on this device, and on CPU, when an epoch is
        long, the cheaper input size to ask for.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingError
        Missing label or ``crop_index`` column (the message lists the columns),
        a single class, a class without training cells, a bad split, crops of
        the wrong shape.
    ValueError
        NaN or infinite pixels in a crop (naming the crop and its cell).
    InterruptedError
        When cancelled before the first epoch finished.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> crops = rng.poisson(100, size=(32, 1, 8, 8)).astype(np.float32)  # photon counts
    >>> crops[16:, :, 2:6, 2:6] *= 3.0
    >>> table = pd.DataFrame({"crop_index": range(32), "well": np.repeat(["A01", "A02", "B01", "B02"], 8),
    ...                       "cls": np.repeat(["a", "b"], 16)})
    >>> split = np.where(table.well.isin(["A02", "B02"]), "val", "train")
    >>> config = TrainConfig(model="cnn1", depth=1, width=1, epochs=1, batch_size=8, device="cpu")
    >>> result = train_model(table, crops, config, label_column="cls", split=split)
    >>> result.meta["classes"], len(result.history), result.metrics["val"]["n"]
    (['a', 'b'], 1, 16)
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}.")
    shape, channels = check_crops(crops, channels)
    classify = model_task(config.model) == "classification"
    if classify and label_column is None:
        raise TrainingError(f"Model {config.model!r} is a classifier and needs a label column.")
    table, split = in_identity_order(table, split)
    prepared = prepare_subsets(table, shape[0], label_column=label_column if classify else None, split=split,
                               seed=config.seed)
    ctx = distributed_context(config.device)
    try:
        config = _as_run(config, ctx.device, shape=shape, dtype=crops.dtype,
                         train_cells=len(prepared.subsets["train"].crop_indices))
        run = _Run(prepared, crops, shape, channels, label_column, classify, ctx, config, progress, cancel,
                   table=table, notice=notice)
        with seeded(config.seed, config.deterministic):
            return _train(run, checkpoint_path)
    finally:
        ctx.close()


def in_identity_order(table: pd.DataFrame, split=None):
    """The table (and a split given per row) ordered by each cell's identity, not its store row.

    Segmentation workers append sites as they finish, so two runs can store the
    same cells in another order; ordered by plate, well, site and label, the same
    seed then draws the same batches and gives the same model.

    Examples
    --------
    >>> table = pd.DataFrame({"well": ["B02", "A01"], "label": [1, 1], "crop_index": [0, 1]})
    >>> ordered, split = in_identity_order(table, ["train", "val"])
    >>> ordered["well"].tolist(), split.tolist()
    (['A01', 'B02'], ['val', 'train'])
    """
    from ..learn.groups import identity_order

    order = identity_order(table)
    if isinstance(split, pd.Series):
        split = split.iloc[order]
    elif split is not None and not isinstance(split, str):
        split = np.asarray(split)[order]
    return table.iloc[order], split


def _as_run(config: TrainConfig, device: torch.device, *, shape: tuple, dtype, train_cells: int) -> TrainConfig:
    """The config with the choices left to the device made: kernels, memory format, preloading, input size."""
    itemsize = 4 if config.normalisation == "plate" else np.dtype(dtype).itemsize  # normalised crops are float32
    n_bytes = train_cells * int(np.prod(shape[1:])) * itemsize
    return replace(
        config,
        deterministic=device.type == "cpu" if config.deterministic is None else config.deterministic,
        channels_last=device.type in ("cuda", "cpu") if config.channels_last is None else config.channels_last,
        preload=_preload_fits(n_bytes, device) if config.preload is None else config.preload,
        input_size=config.input_size or shape[-1],
    )


def _preload(reader: CropReader, crop_indices: np.ndarray, cancel) -> np.ndarray:
    out = np.empty((len(crop_indices), *reader.shape[1:]), dtype=reader.dtype)
    for positions, raw in reader.iter_batches(crop_indices, 4096):
        check_cancel(cancel, "Reading the training crops was cancelled.")
        out[positions] = raw
    return out


def _preload_fits(n_bytes: int, device: torch.device) -> bool:
    if n_bytes > PRELOAD_LIMIT_BYTES:
        return False
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return n_bytes < free // 4
    return True


def _training_batches(run: _Run, reader: CropReader, preprocess: Preprocess):
    """The epoch batch source (in memory or streaming); sets the normalisation of ``preprocess``."""
    config, ctx, prepared = run.config, run.ctx, run.prepared
    train_set = prepared.subsets["train"]
    weights = None
    if config.balanced and run.classify:
        counts = np.bincount(train_set.labels, minlength=len(prepared.classes))
        weights = 1.0 / counts[train_set.labels]
    sampler_options = dict(batch_size=config.batch_size, weights=weights, seed=config.seed,
                           rank=ctx.rank, world_size=ctx.world_size, drop_last=True)
    if config.preload:
        in_memory = _preload(reader, train_set.crop_indices, run.cancel)
        preprocess.mean, preprocess.std = channel_statistics(
            CropReader(in_memory, describe=lambda i: prepared.describe(int(train_set.crop_indices[i]))),
            np.arange(len(in_memory)), preprocess, cancel=run.cancel,
        )
        return DeviceBatches(
            torch.from_numpy(in_memory).to(ctx.device), torch.from_numpy(train_set.labels).to(ctx.device),
            ChunkBatchSampler(np.arange(len(in_memory)), **sampler_options),
        )
    preprocess.mean, preprocess.std = channel_statistics(reader, train_set.crop_indices, preprocess, cancel=run.cancel)
    return StreamingBatches(
        CropDataset(run.crops, train_set.crop_indices, train_set.labels, cache_chunks=reader.cache_chunks,
                    describe=prepared.describe, normalise=reader.normalise),
        ChunkBatchSampler(train_set.crop_indices, chunk_rows=chunk_rows(run.crops), window=SHUFFLE_WINDOW,
                          **sampler_options),
        ctx.device,
    )


def _plate_normaliser(run: _Run) -> PlateNormaliser | None:
    """Each plate's statistics, from every cell of the table (unlabelled ones too), or None (global)."""
    if run.config.normalisation != "plate":
        return None
    table = run.table
    cells = table[table[CROP_INDEX].notna()]
    return PlateNormaliser.fit(cells, run.crops, controls=run.config.controls, within=run.config.normalise_within_columns,
                               intensity=run.config.intensity, seed=run.config.seed, cancel=run.cancel,
                               describe=run.prepared.describe)


def _network(run: _Run, preprocess: Preprocess, seed: int) -> nn.Module:
    config = run.config
    torch.manual_seed(seed)
    classes = {"num_classes": len(run.prepared.classes)} if run.classify else {}
    net = build_model(config.model, in_channels=run.shape[1], crop_size=preprocess.size, **classes,
                      **config.network_options()).to(run.ctx.device)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _evaluator(run: _Run, model: nn.Module, reader: CropReader, preprocess: Preprocess) -> Evaluator:
    config = run.config
    return Evaluator(model, Task(run.classify), reader, preprocess, run.ctx,
                     batch_size=max(2 * config.batch_size, 256), n_classes=len(run.prepared.classes),
                     amp=config.amp, channels_last=config.channels_last,
                     cancel=run.cancel)


def _fit_member(run: _Run, batches, reader: CropReader, preprocess: Preprocess, member: int):
    """Train the network of one seed; return it (best epoch loaded, eval mode) and its FitOutcome."""
    config = replace(run.config, seed=run.config.seed + member)
    batches.sampler.seed = config.seed
    net = _network(run, preprocess, config.seed)
    trainer = Trainer(net, batches, preprocess, run.ctx, config, classify=run.classify,
                      amp=config.amp, channels_last=config.channels_last,
                      cancel=run.cancel, notice=_notice(run, batches, preprocess) if member == 0 else None)
    evaluator = _evaluator(run, net, reader, preprocess)
    progress = _member_progress(run.progress, member, config.ensemble)
    outcome = fit(trainer, evaluator, run.prepared, progress)
    net.load_state_dict(outcome.best["state"])
    return net.eval(), outcome


def _notice(run: _Run, batches, preprocess: Preprocess):
    if run.notice is None or not run.ctx.is_main:
        return None
    return epoch_notice(run.notice, config=run.config, device=run.ctx.device, n_batches=len(batches),
                        val_cells=len(run.prepared.subsets["val"].crop_indices) if "val" in run.prepared.subsets else 0,
                        input_size=preprocess.size)


def _member_progress(progress, member: int, members: int):
    """Epoch progress over every seed of an ensemble (``member`` in the row)."""
    if progress is None or members == 1:
        return progress

    def report(epoch: int, epochs: int, row: dict) -> None:
        progress(member * epochs + epoch, members * epochs, {**row, "member": member})

    return report


def _train(run: _Run, checkpoint_path) -> TrainResult:
    ctx, crops, config = run.ctx, run.crops, run.config
    normaliser = _plate_normaliser(run)
    reader = CropReader(crops, cache_chunks=2 + SHUFFLE_WINDOW // max(chunk_rows(crops) or SHUFFLE_WINDOW, 1),
                        describe=run.prepared.describe, normalise=normaliser)
    preprocess = Preprocess(crop_size=run.shape[-1], input_size=config.input_size, mode=config.resize_mode)
    first = replace(run, progress=_round_progress(run.progress, 0, config.self_training)) if config.self_training else run
    model, outcomes, cancelled = _fit_members(first, _training_batches(run, reader, preprocess), reader, preprocess)
    model, outcomes, cancelled, rounds = _self_train(run, reader, preprocess, (model, outcomes, cancelled))
    evaluator = _evaluator(run, model, reader, preprocess)
    if cancelled:
        evaluator.ignore_cancel()
    tta, tta_check = _choose_tta(run, evaluator)
    metrics = evaluator.metrics(run.prepared, tta=tta) if ctx.is_main else {}
    meta = _meta(run, model, preprocess, outcomes, metrics=metrics, cancelled=cancelled)
    meta.update(normalisation=normaliser.to_meta() if normaliser else {"method": "global"}, tta=tta,
                tta_check=tta_check)
    if config.self_training:
        meta["self_training"] = {"confidence": config.self_training_confidence, "rounds": rounds}
    model = model.to(memory_format=torch.contiguous_format)
    written = None
    if checkpoint_path is not None and ctx.is_main:
        written = save_checkpoint(checkpoint_path, model, meta)
    ctx.barrier()
    return TrainResult(model=model, history=meta["history"], metrics=metrics, meta=meta, checkpoint=written,
                       cancelled=cancelled)


def _fit_members(run: _Run, batches, reader: CropReader, preprocess: Preprocess):
    """``(model, outcomes, cancelled)``: every seed of the ensemble trained (or those finished before a cancel)."""
    members, outcomes = [], []
    for member in range(run.config.ensemble):
        try:
            net, outcome = _fit_member(run, batches, reader, preprocess, member)
        except Cancelled:
            if not members:
                raise
            break  # the seeds finished so far make the ensemble
        members.append(net)
        outcomes.append(outcome)
        if outcome.cancelled:
            break
    cancelled = outcomes[-1].cancelled or len(members) < run.config.ensemble
    model = members[0] if len(members) == 1 else SeedEnsemble(members).to(run.ctx.device).eval()
    return model, outcomes, cancelled


def _self_train(run: _Run, reader: CropReader, preprocess: Preprocess, fitted: tuple):
    """The rounds of :mod:`napari_hcs.nn.self_training` after the first fit; returns the last finished one.

    A cancel during a round keeps the model of the round before it.
    """
    config, (model, outcomes, cancelled) = run.config, fitted
    rounds = []
    pool = pool_crop_indices(run.prepared, run.table, run.label_column) if config.self_training else None
    for number in range(1, config.self_training + 1):
        if cancelled or not len(pool):
            break
        statistics = (preprocess.mean, preprocess.std)  # the model of the round before was trained with them
        try:
            probabilities = _evaluator(run, model, reader, preprocess).probabilities(pool)
            added = confident_cells(probabilities, pool, confidence=config.self_training_confidence)
            if not len(added.crop_indices):  # nothing to learn from: training again would repeat the last fit
                rounds.append(round_record(number, added, run.prepared.classes, pool_size=len(pool)))
                break
            this_round = replace(run, prepared=with_training_cells(run.prepared, added), notice=None,
                                 progress=_round_progress(run.progress, number, config.self_training))
            refitted = _fit_members(this_round, _training_batches(this_round, reader, preprocess), reader, preprocess)
        except Cancelled:
            refitted = None
        if refitted is None or refitted[2]:  # cancelled: the round before it stands
            preprocess.mean, preprocess.std = statistics
            return model, outcomes, True, rounds
        rounds.append(round_record(number, added, run.prepared.classes, pool_size=len(pool)))
        model, outcomes, cancelled = refitted
    return model, outcomes, cancelled, rounds


def _round_progress(progress, number: int, rounds: int):
    """Epoch progress over the first fit and every round of self-training (``self_training_round`` in the row)."""
    if progress is None:
        return None

    def report(epoch: int, epochs: int, row: dict) -> None:
        progress(number * epochs + epoch, (rounds + 1) * epochs, {**row, "self_training_round": number})

    return report


def _choose_tta(run: _Run, evaluator: Evaluator) -> tuple[bool, dict | None]:
    """Whether predictions average the 8 views, and the validation scores that decided it."""
    config, val = run.config, run.prepared.subsets.get("val")
    if not run.classify:
        return False, None
    if config.tta is not None or val is None:
        return config.tta is not False, None
    plain = evaluator.scores(val, shard=True)
    averaged = evaluator.scores(val, shard=True, tta=True)

    def key(scores: dict) -> tuple:
        return (scores["val_balanced_accuracy"], -scores["val_loss"])

    check = {"plain": plain, "tta": averaged}
    return key(averaged) > key(plain), check


def _meta(run: _Run, model: nn.Module, preprocess: Preprocess, outcomes: list[FitOutcome], *, metrics: dict,
          cancelled: bool) -> dict:
    """The checkpoint metadata of a finished run."""
    history = [({**row, "member": i} if len(outcomes) > 1 else row)
               for i, outcome in enumerate(outcomes) for row in outcome.history]
    return {
        "task": "classification" if run.classify else "embedding",
        "architecture": dict(model.config),
        "napari_hcs_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "channels": run.channels,
        "crop_size": run.shape[-1],
        "preprocess": preprocess.to_meta(),
        "classes": run.prepared.classes,
        "label_column": run.label_column,
        "hyperparameters": {**run.config.to_dict(), "world_size": run.ctx.world_size,
                            "device": run.ctx.device.type, "compute_dtype": compute_dtype_name(run.ctx.device, amp=run.config.amp)},
        "history": history,
        "best_epoch": outcomes[0].best["epoch"],
        "members": [{"seed": run.config.seed + i, "best_epoch": o.best["epoch"], "epochs_run": len(o.history),
                     "stopped_early": o.stopped_early} for i, o in enumerate(outcomes)],
        "stopped_early": outcomes[0].stopped_early,
        "cancelled": cancelled,
        "split": {"counts": run.prepared.split_counts, "groups": run.prepared.split_groups},
        "metrics": metrics,
    }
