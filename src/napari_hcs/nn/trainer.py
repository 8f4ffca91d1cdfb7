"""The training loop: epochs of optimisation, validation, the best epoch, final metrics.

A :class:`Trainer` holds the network, its Adam optimiser and learning-rate
schedule and trains one epoch at a time; an :class:`Evaluator` computes the
validation loss (summed over the processes when distributed) and the final
metrics; :func:`fit` runs the epochs and keeps the state of the best one by
validation loss, with early stopping; a cancel after the first finished epoch
ends the run with that best state.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cancel import Cancelled, check_cancel
from .augment import augment_batch
from .config import TrainConfig
from .crop_reader import CropReader
from .device import DistributedContext
from .predict import autocast_context, iter_model_outputs
from .prepare import Prepared, Subset
from .preprocess import Preprocess

__all__ = ["Evaluator", "FitOutcome", "Task", "Trainer", "fit", "seeded"]

CANCELLED = "Training was cancelled."


@contextmanager
def seeded(seed: int, deterministic: bool):
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


class Task:
    """Loss and evaluation of a classifier, or of an autoencoder (reconstruction)."""

    def __init__(self, classify: bool):
        self.classify = classify

    def loss(self, outputs: torch.Tensor, batch: torch.Tensor, labels: torch.Tensor):
        """``(loss, correct predictions or None)`` of a training batch."""
        if self.classify:
            loss = F.cross_entropy(outputs.float(), labels)
            return loss, (outputs.argmax(dim=1) == labels).sum()
        return F.mse_loss(outputs.float(), batch), None

    def forward_eval(self, model: nn.Module, batch: torch.Tensor):
        """Logits of a classifier, or each cell's reconstruction error."""
        outputs = model(batch)
        if self.classify:
            return (outputs.float(),)
        return (((outputs.float() - batch) ** 2).mean(dim=(1, 2, 3)),)


def _make_scheduler(optimizer, schedule: str, lr: float, total_steps: int):
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _synchronise_buffers(model: nn.Module, ctx: DistributedContext) -> None:
    """Give every process rank 0's batch-norm statistics (they drift apart between broadcasts)."""
    if ctx.enabled:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


class Trainer:
    """The network, its optimiser and schedule, and one epoch of training.

    Parameters
    ----------
    net : torch.nn.Module
        The network, on the training device (wrapped in DistributedDataParallel
        when the run is distributed).
    batches : DeviceBatches or StreamingBatches
        The training batches of each epoch.
    preprocess : Preprocess
        Resizing and normalisation of the raw batches.
    ctx : DistributedContext
        Device and rank of this process.
    config : TrainConfig
        Learning rate, schedule, augmentation, seed, ...
    classify : bool
        Train a classifier (else an autoencoder).
    amp, channels_last : bool
        Mixed precision and memory format in effect on this device.
    cancel : callable or threading.Event, optional
        Checked before each batch.
    """

    def __init__(self, net, batches, preprocess: Preprocess, ctx: DistributedContext, config: TrainConfig, *,
                 classify: bool, amp: bool, channels_last: bool, cancel=None):
        self.net, self.batches, self.preprocess, self.ctx = net, batches, preprocess, ctx
        self.config, self.amp, self.channels_last, self.cancel = config, amp, channels_last, cancel
        self.task = Task(classify)
        self.trained = net
        if ctx.enabled:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.trained = nn.parallel.DistributedDataParallel(net, device_ids=device_ids)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = _make_scheduler(self.optimizer, config.schedule, config.lr, config.epochs * len(batches))
        # Loss scaling only for float16; bfloat16 needs none.
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())
        self.generator = torch.Generator(device=ctx.device).manual_seed(config.seed * 1009 + ctx.rank)

    def _augmented(self, raw: torch.Tensor) -> torch.Tensor:
        config = self.config
        batch = self.preprocess(raw)
        if config.augment or config.intensity_jitter > 0:
            batch = augment_batch(batch, generator=self.generator, dihedral=config.augment,
                                  pad=4 if config.augment else 0, intensity=config.intensity_jitter)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def _step(self, raw: torch.Tensor, labels: torch.Tensor):
        batch = self._augmented(raw)
        with autocast_context(self.ctx.device, self.amp):
            outputs = self.trained(batch)
        loss, hits = self.task.loss(outputs, batch, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss, hits

    def epoch(self, epoch: int) -> dict:
        """Train one epoch; return its history row (without validation)."""
        device = self.ctx.device
        self.net.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for raw, labels in self.batches.epoch(epoch):
            check_cancel(self.cancel, CANCELLED)
            loss, hits = self._step(raw, labels)
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


class Evaluator:
    """Validation loss and final metrics of a network over subsets of the crop store.

    Parameters
    ----------
    model : torch.nn.Module
        The network (put in eval mode by the caller).
    task : Task
        Classifier or autoencoder.
    reader : CropReader
        The crop store.
    preprocess : Preprocess
        Resizing and normalisation.
    ctx : DistributedContext
        Device and rank of this process.
    batch_size : int
        Cells per forward pass.
    amp, channels_last : bool
        Mixed precision and memory format in effect on this device.
    cancel : callable or threading.Event, optional
        Checked before each batch.
    """

    def __init__(self, model: nn.Module, task: Task, reader: CropReader, preprocess: Preprocess,
                 ctx: DistributedContext, *, batch_size: int, amp: bool, channels_last: bool, cancel=None):
        self.model, self.task, self.reader, self.preprocess, self.ctx = model, task, reader, preprocess, ctx
        self.options = dict(batch_size=batch_size, device=ctx.device, forward=task.forward_eval, amp=amp,
                            channels_last=channels_last, cancel=cancel, cancel_message=CANCELLED)

    def ignore_cancel(self) -> None:
        """Stop checking the cancel (a cancelled run still gets the metrics of its best epoch)."""
        self.options["cancel"] = None

    def _outputs(self, crop_indices: np.ndarray):
        return iter_model_outputs(self.model, self.reader, crop_indices, self.preprocess, **self.options)

    def loss(self, subset: Subset, *, shard: bool) -> tuple[float, float | None]:
        """Mean loss and accuracy over a subset; with ``shard``, split over and summed across processes."""
        ctx = self.ctx
        crop_indices, labels = subset.crop_indices, subset.labels
        if shard and ctx.enabled:
            crop_indices, labels = crop_indices[ctx.rank :: ctx.world_size], labels[ctx.rank :: ctx.world_size]
        totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, correct, count
        label_tensor = torch.from_numpy(labels).to(ctx.device)
        for positions, (outputs,) in self._outputs(crop_indices):
            index = torch.from_numpy(positions).to(ctx.device)
            if self.task.classify:
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
        return loss_sum / count, (correct / count if self.task.classify else None)

    def metrics(self, prepared: Prepared) -> dict:
        """``{"val": ..., "test": ...}`` for the subsets that have cells (see :class:`TrainResult`)."""
        from ..learn import classification_metrics

        metrics = {}
        for name in ("val", "test"):
            subset = prepared.subsets.get(name)
            if subset is None:
                continue
            if not self.task.classify:
                loss, _ = self.loss(subset, shard=False)
                metrics[name] = {"reconstruction_mse": loss, "n": int(len(subset.crop_indices))}
                continue
            predicted = np.empty(len(subset.crop_indices), dtype=np.int64)
            for positions, (outputs,) in self._outputs(subset.crop_indices):
                predicted[positions] = outputs.argmax(dim=1).cpu().numpy()
            classes = np.asarray(prepared.classes, dtype=object)
            metrics[name] = classification_metrics(
                classes[subset.labels].tolist(), classes[predicted].tolist(), list(prepared.classes)
            )
        return metrics


@dataclass
class FitOutcome:
    """What :func:`fit` ran: the history, the best epoch, and how the run ended."""

    history: list[dict]
    best: dict
    stopped_early: bool = False
    cancelled: bool = False


def fit(trainer: Trainer, evaluator: Evaluator, prepared: Prepared,
        progress: Callable[[int, int, dict], None] | None = None) -> FitOutcome:
    """Run the epochs; keep the best state by validation loss (the last one without val cells).

    A cancel after at least one finished epoch ends the run with the best epoch so far
    (``cancelled`` True); a cancel during the first epoch raises
    :class:`napari_hcs.cancel.Cancelled`.

    Returns
    -------
    FitOutcome
        ``history`` (one row per finished epoch), ``best`` (``loss``, ``epoch`` and
        ``state``, the network's state dict, of the best epoch), ``stopped_early``
        (early stopping ended the run) and ``cancelled``.
    """
    config, ctx = trainer.config, trainer.ctx
    outcome = FitOutcome(history=[], best={"loss": float("inf"), "epoch": 0, "state": None})
    has_val = "val" in prepared.subsets
    for epoch in range(1, config.epochs + 1):
        try:
            row = _epoch(trainer, evaluator, prepared, epoch)
        except Cancelled:
            if not outcome.history:
                raise
            outcome.cancelled = True
            return outcome
        outcome.history.append(row)
        best = outcome.best
        monitored = row["val_loss"] if has_val else row["train_loss"]
        if not has_val or monitored < best["loss"]:
            best.update(loss=monitored, epoch=epoch, state=copy.deepcopy(trainer.net.state_dict()))
        if progress is not None and ctx.is_main:
            progress(epoch, config.epochs, row)
        if has_val and config.early_stopping and epoch - best["epoch"] >= config.early_stopping:
            outcome.stopped_early = True
            return outcome
    return outcome


def _epoch(trainer: Trainer, evaluator: Evaluator, prepared: Prepared, epoch: int) -> dict:
    """One epoch of training and its validation loss and accuracy (when there are val cells)."""
    row = trainer.epoch(epoch)
    if "val" in prepared.subsets:
        trainer.net.eval()
        row["val_loss"], row["val_accuracy"] = evaluator.loss(prepared.subsets["val"], shard=True)
    return row
