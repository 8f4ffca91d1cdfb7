"""The training loop: epochs of optimisation, validation, the best epoch, final metrics.

A :class:`Trainer` holds the network, its Adam optimiser and learning-rate
schedule and trains one epoch at a time; an :class:`Evaluator` computes the
validation loss, accuracy and balanced accuracy (summed over the processes when
distributed) and the final metrics, with or without test-time augmentation;
:func:`fit` runs the epochs and keeps the state of the best one by validation
balanced accuracy (the loss breaking ties), with early stopping; a cancel after
the first finished epoch ends the run with that best state.
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
from .precision import autocast_context, needs_loss_scaling
from .predict import iter_model_outputs
from .prepare import Prepared, Subset
from .preprocess import Preprocess
from .tta import tta_logits

__all__ = ["Evaluator", "FitOutcome", "Task", "Trainer", "fit", "seeded"]

CANCELLED = "Training was cancelled."
#: Batches timed at the start of the first epoch for the estimate of an epoch's duration.
TIMED_BATCHES = 3


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
    notice : callable, optional
        ``notice(seconds_per_batch)`` once, after the first few batches of the
        first epoch (the estimate of an epoch's duration is made from it).
    """

    def __init__(self, net, batches, preprocess: Preprocess, ctx: DistributedContext, config: TrainConfig, *,
                 classify: bool, amp: bool, channels_last: bool, cancel=None, notice=None):
        self.net, self.batches, self.preprocess, self.ctx = net, batches, preprocess, ctx
        self.config, self.amp, self.channels_last, self.cancel = config, amp, channels_last, cancel
        self.notice = notice
        self.task = Task(classify)
        self.trained = net
        if ctx.enabled:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.trained = nn.parallel.DistributedDataParallel(net, device_ids=device_ids)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = _make_scheduler(self.optimizer, config.schedule, config.lr, config.epochs * len(batches))
        # Loss scaling only for float16; bfloat16 needs none.
        self.scaler = torch.amp.GradScaler("cuda", enabled=needs_loss_scaling(ctx.device, amp=amp))
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

    def _report_speed(self, timed_from: float, last_loss: torch.Tensor) -> None:
        if self.notice is None:
            return
        last_loss.item()  # waits for the device
        self._report((time.perf_counter() - timed_from) / TIMED_BATCHES)

    def _report(self, seconds_per_batch: float) -> None:
        notice, self.notice = self.notice, None
        notice(seconds_per_batch)

    def epoch(self, epoch: int) -> dict:
        """Train one epoch; return its history row (without validation)."""
        device = self.ctx.device
        self.net.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for batch_number, (raw, labels) in enumerate(self.batches.epoch(epoch)):
            check_cancel(self.cancel, CANCELLED)
            if batch_number == 1:
                timed_from = time.perf_counter()
            if batch_number == 1 + TIMED_BATCHES:
                self._report_speed(timed_from, loss)
            loss, hits = self._step(raw, labels)
            # Accumulated on the device: no synchronisation per batch.
            loss_sum += loss.detach().double() * len(labels)
            if hits is not None:
                correct += hits
            seen += len(labels)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        if self.notice is not None:  # an epoch too short to time batch by batch
            self._report(seconds / max(len(self.batches), 1))
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
    """Validation scores and final metrics of a network over subsets of the crop store.

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
    n_classes : int
        Number of classes (0 for an autoencoder).
    amp, channels_last : bool
        Mixed precision and memory format in effect on this device.
    cancel : callable or threading.Event, optional
        Checked before each batch.
    """

    def __init__(self, model: nn.Module, task: Task, reader: CropReader, preprocess: Preprocess,
                 ctx: DistributedContext, *, batch_size: int, n_classes: int, amp: bool, channels_last: bool,
                 cancel=None):
        self.model, self.task, self.reader, self.preprocess, self.ctx = model, task, reader, preprocess, ctx
        self.n_classes = n_classes
        self.options = dict(batch_size=batch_size, device=ctx.device, amp=amp,
                            channels_last=channels_last, cancel=cancel, cancel_message=CANCELLED)

    def ignore_cancel(self) -> None:
        """Stop checking the cancel (a cancelled run still gets the metrics of its best epoch)."""
        self.options["cancel"] = None

    def _outputs(self, crop_indices: np.ndarray, tta: bool):
        forward = (lambda model, batch: (tta_logits(model, batch),)) if tta else self.task.forward_eval
        return iter_model_outputs(self.model, self.reader, crop_indices, self.preprocess, forward=forward,
                                  **self.options)

    def probabilities(self, crop_indices: np.ndarray, *, tta: bool = False) -> np.ndarray:
        """Softmax class probabilities ``(N, K)`` of the cells, in the order of ``crop_indices``."""
        out = np.empty((len(crop_indices), self.n_classes), dtype=np.float32)
        for positions, (outputs,) in self._outputs(crop_indices, tta):
            out[positions] = torch.softmax(outputs.float(), dim=1).cpu().numpy()
        return out

    def scores(self, subset: Subset, *, shard: bool, tta: bool = False) -> dict:
        """``val_loss``, ``val_accuracy`` and ``val_balanced_accuracy`` over a subset.

        With ``shard``, the subset is split over the processes and the counts
        summed across them. An autoencoder gets its reconstruction error as the
        loss and None for the accuracies.
        """
        ctx, k = self.ctx, max(self.n_classes, 1)
        crop_indices, labels = subset.crop_indices, subset.labels
        if shard and ctx.enabled:
            crop_indices, labels = crop_indices[ctx.rank :: ctx.world_size], labels[ctx.rank :: ctx.world_size]
        totals = torch.zeros(2 + k * k, dtype=torch.float64, device=ctx.device)  # loss sum, count, confusion
        label_tensor = torch.from_numpy(labels).to(ctx.device)
        for positions, (outputs,) in self._outputs(crop_indices, tta):
            index = torch.from_numpy(positions).to(ctx.device)
            if self.task.classify:
                y = label_tensor[index]
                totals[0] += F.cross_entropy(outputs, y, reduction="sum").double()
                totals[2:] += torch.bincount(y * k + outputs.argmax(dim=1), minlength=k * k).double()
            else:
                totals[0] += outputs.sum().double()
            totals[1] += len(positions)
        if shard and ctx.enabled:
            torch.distributed.all_reduce(totals)
        return _scores(totals.cpu().numpy(), k, classify=self.task.classify)

    def metrics(self, prepared: Prepared, *, tta: bool = False) -> dict:
        """``{"val": ..., "test": ...}`` for the subsets that have cells (see :class:`TrainResult`)."""
        from ..learn import classification_metrics

        metrics = {}
        for name in ("val", "test"):
            subset = prepared.subsets.get(name)
            if subset is None:
                continue
            if not self.task.classify:
                loss = self.scores(subset, shard=False)["val_loss"]
                metrics[name] = {"reconstruction_mse": loss, "n": int(len(subset.crop_indices))}
                continue
            predicted = np.empty(len(subset.crop_indices), dtype=np.int64)
            for positions, (outputs,) in self._outputs(subset.crop_indices, tta):
                predicted[positions] = outputs.argmax(dim=1).cpu().numpy()
            classes = np.asarray(prepared.classes, dtype=object)
            metrics[name] = classification_metrics(
                classes[subset.labels].tolist(), classes[predicted].tolist(), list(prepared.classes)
            )
        return metrics


def _scores(totals: np.ndarray, k: int, *, classify: bool) -> dict:
    """Loss, accuracy and balanced accuracy (mean recall of the classes present) from summed counts."""
    count = max(float(totals[1]), 1.0)
    scores = {"val_loss": float(totals[0]) / count, "val_accuracy": None, "val_balanced_accuracy": None}
    if classify:
        confusion = totals[2:].reshape(k, k)
        present = confusion.sum(axis=1) > 0
        recall = np.diag(confusion)[present] / confusion.sum(axis=1)[present]
        scores["val_accuracy"] = float(np.trace(confusion)) / count
        scores["val_balanced_accuracy"] = float(recall.mean()) if present.any() else None
    return scores


@dataclass
class FitOutcome:
    """What :func:`fit` ran: the history, the best epoch, and how the run ended."""

    history: list[dict]
    best: dict
    stopped_early: bool = False
    cancelled: bool = False


def fit(trainer: Trainer, evaluator: Evaluator, prepared: Prepared,
        progress: Callable[[int, int, dict], None] | None = None) -> FitOutcome:
    """Run the epochs; keep the best state by validation score (the last one without val cells).

    The score of a classifier is its validation balanced accuracy, the lower
    validation loss breaking ties (``config.monitor="loss"``: the loss alone);
    an autoencoder's is its validation loss.
    Early stopping ends the run ``config.early_stopping`` epochs after the best.
    A cancel after at least one finished epoch ends the run with the best epoch so far
    (``cancelled`` True); a cancel during the first epoch raises
    :class:`napari_hcs.cancel.Cancelled`.

    Returns
    -------
    FitOutcome
        ``history`` (one row per finished epoch), ``best`` (``score``, ``epoch`` and
        ``state``, the network's state dict, of the best epoch), ``stopped_early``
        (early stopping ended the run) and ``cancelled``.
    """
    config, ctx = trainer.config, trainer.ctx
    outcome = FitOutcome(history=[], best={"score": None, "epoch": 0, "state": None})
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
        best, score = outcome.best, _monitored(row, has_val, config.monitor)
        if score is None or best["score"] is None or score > best["score"]:
            best.update(score=score, epoch=epoch, state=copy.deepcopy(trainer.net.state_dict()))
        if progress is not None and ctx.is_main:
            progress(epoch, config.epochs, row)
        if has_val and config.early_stopping and epoch - best["epoch"] >= config.early_stopping:
            outcome.stopped_early = True
            return outcome
    return outcome


def _monitored(row: dict, has_val: bool, monitor: str) -> tuple | None:
    """What the best epoch maximises: (balanced accuracy, -loss) on val, or (-loss,)."""
    if not has_val:
        return None
    if monitor == "loss" or row.get("val_balanced_accuracy") is None:
        return (-row["val_loss"],)
    return (row["val_balanced_accuracy"], -row["val_loss"])


def _epoch(trainer: Trainer, evaluator: Evaluator, prepared: Prepared, epoch: int) -> dict:
    """One epoch of training and its validation scores (when there are val cells)."""
    row = trainer.epoch(epoch)
    if "val" in prepared.subsets:
        trainer.net.eval()
        row.update(evaluator.scores(prepared.subsets["val"], shard=True))
    return row
