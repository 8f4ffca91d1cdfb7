"""Mixed precision: which number format the network computes in on each device.

On CUDA the forward pass runs in bfloat16 where the GPU supports it, else in
float16 with loss scaling. On a CPU with bfloat16 instructions (AVX512-BF16 or
AMX) it runs in bfloat16 too: on a 2-core AMD EPYC with AVX512-BF16 a training
step of the default network took half the time of float32 (see
``benchmarks/train_speed.py``). Elsewhere (older CPUs, where bfloat16 is
emulated and slower, and Apple MPS) it stays in float32. Weights, the optimiser
and the loss are always float32.

Examples
--------
>>> import torch
>>> autocast_dtype(torch.device("cpu"), amp=False) is None
True
>>> autocast_dtype(torch.device("mps"), amp=True) is None
True
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import cache

import torch

__all__ = ["autocast_context", "autocast_dtype", "compute_dtype_name", "cpu_has_bfloat16", "needs_loss_scaling"]


@cache  # asked before every batch; the CPU does not change
def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles).

    Examples
    --------
    >>> isinstance(cpu_has_bfloat16(), bool)
    True
    """
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(bool(check()) for check in checks if check is not None)
    except RuntimeError:  # a torch build without the CPU-feature probe
        return False


def autocast_dtype(device: torch.device, *, amp: bool) -> torch.dtype | None:
    """The dtype the forward pass autocasts to on ``device``, or None for float32.

    Parameters
    ----------
    device : torch.device
        The device the network computes on.
    amp : bool
        Whether mixed precision is wanted at all (``TrainConfig.amp``).

    Returns
    -------
    torch.dtype or None
        ``torch.bfloat16`` on CUDA GPUs that support it and on CPUs with
        bfloat16 instructions, ``torch.float16`` on other CUDA GPUs, None
        otherwise.
    """
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bfloat16():
        return torch.bfloat16
    return None


def compute_dtype_name(device: torch.device, *, amp: bool) -> str:
    """``"bfloat16"``, ``"float16"`` or ``"float32"``: what the forward pass computes in on ``device``.

    Examples
    --------
    >>> import torch
    >>> compute_dtype_name(torch.device("cpu"), amp=False)
    'float32'
    """
    return str(autocast_dtype(device, amp=amp) or torch.float32).removeprefix("torch.")


def autocast_context(device: torch.device, amp: bool):
    """A context that autocasts to :func:`autocast_dtype`, or does nothing."""
    dtype = autocast_dtype(device, amp=amp)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def needs_loss_scaling(device: torch.device, *, amp: bool) -> bool:
    """True where the backward pass needs loss scaling: float16 on CUDA."""
    return autocast_dtype(device, amp=amp) == torch.float16
