"""How long training will take, said after its first batches.

:func:`epoch_notice` turns the measured seconds per training batch into the
estimate a user reads before the bulk of the work: seconds per epoch on this
device (the training batches and the validation pass) and the number format
it computes in, the longest the run can
take, and on CPU, when an epoch is long and the crops are larger than the
study's 32 x 32, what ``--input-size 32`` would cost instead.

Examples
--------
>>> import torch
>>> said = []
>>> notice = epoch_notice(said.append, config=TrainConfig(epochs=30), device=torch.device("cpu"),
...                       n_batches=100, val_cells=3000, input_size=68)
>>> notice(1.5)
>>> print(said[0])  # doctest: +ELLIPSIS
Training on cpu (...): about 2.7 min per epoch (100 batches of 128 cells, 3000 validation cells), at most 30 epochs: up to 81 min. On CPU an input size of 32 (--input-size 32, the study's 32x32 crops) would take about 36 s per epoch.
"""

from __future__ import annotations

from typing import Callable

import torch

from .config import TrainConfig
from .precision import compute_dtype_name

__all__ = ["LONG_EPOCH_SECONDS", "STUDY_INPUT_SIZE", "epoch_notice", "format_duration"]

#: An epoch longer than this on CPU gets the cheaper input size suggested.
LONG_EPOCH_SECONDS = 60.0
#: The input side of the study the recipe follows.
STUDY_INPUT_SIZE = 32
#: A forward pass costs about a third of a training step (forward, backward, update).
_FORWARD_SHARE = 1 / 3


def format_duration(seconds: float) -> str:
    """``"14 s"``, ``"2.8 min"``, ``"84 min"`` or ``"2.1 h"``.

    Examples
    --------
    >>> format_duration(14.2), format_duration(170), format_duration(5040), format_duration(7600)
    ('14 s', '2.8 min', '84 min', '2.1 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 10:
        return f"{minutes:.1f} min"
    if minutes < 100:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _device_words(device: torch.device, *, amp: bool) -> str:
    dtype = compute_dtype_name(device, amp=amp)
    precision = f", {dtype}" if dtype != "float32" else ""
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads{precision})"
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}{precision})"
    return str(device)


def epoch_notice(notice: Callable[[str], None], *, config: TrainConfig, device: torch.device, n_batches: int,
                 val_cells: int, input_size: int) -> Callable[[float], None]:
    """A callback taking the measured seconds per batch and saying the estimate through ``notice``."""

    def report(seconds_per_batch: float) -> None:
        per_image = seconds_per_batch / config.batch_size
        epoch = n_batches * seconds_per_batch + val_cells * per_image * _FORWARD_SHARE
        fits = config.ensemble * (1 + config.self_training)
        runs = (f"at most {config.epochs} epochs" + (f" x {config.ensemble} seeds" if config.ensemble > 1 else "")
                + (f" x {1 + config.self_training} fits (self-training)" if config.self_training else ""))
        batches = f"{n_batches} batch{'es' if n_batches != 1 else ''}"
        text = (f"Training on {_device_words(device, amp=config.amp)}: about {format_duration(epoch)} per epoch ({batches} "
                f"of {config.batch_size} cells, {val_cells} validation cells), {runs}: up to "
                f"{format_duration(epoch * config.epochs * fits)}.")
        if device.type == "cpu" and epoch > LONG_EPOCH_SECONDS and input_size > STUDY_INPUT_SIZE:
            cheaper = epoch * (STUDY_INPUT_SIZE / input_size) ** 2
            text += (f" On CPU an input size of {STUDY_INPUT_SIZE} (--input-size {STUDY_INPUT_SIZE}, the study's "
                     f"32x32 crops) would take about {format_duration(cheaper)} per epoch.")
        notice(text)

    return report
