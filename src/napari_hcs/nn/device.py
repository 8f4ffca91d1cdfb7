"""Choosing the compute device, and the distributed-training context.

:func:`resolve_device` turns ``"auto"`` into the best device torch can use
(CUDA, then Apple MPS, then CPU). :func:`distributed_context` reads the
environment that ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)
and starts the process group training needs: NCCL on CUDA, Gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..vocabulary import DEVICE_CHOICES

__all__ = ["DistributedContext", "check_device_name", "distributed_context", "resolve_device"]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device_name(device: str | torch.device) -> str:
    """Return the device name in lower case, or raise ValueError if it names no device.

    Checks the spelling only (one of :data:`~napari_hcs.vocabulary.DEVICE_CHOICES`
    or ``cuda:N``), not whether this machine has that device.

    Examples
    --------
    >>> check_device_name("CUDA:1")
    'cuda:1'
    >>> check_device_name("tpu")
    Traceback (most recent call last):
    ...
    ValueError: Unknown device 'tpu'; expected one of auto, cpu, cuda, mps (or cuda:N).
    """
    name = str(device).strip().lower()
    kind, colon, index = name.partition(":")
    if kind not in DEVICE_CHOICES or (colon and not (kind != "auto" and index.isdigit())):
        raise ValueError(f"Unknown device {device!r}; expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N).")
    return name


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device to compute on.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA if available, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the name is not a device name.
    RuntimeError
        If the requested accelerator is not available in this torch build or machine.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    name = check_device_name(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"Device {device!r} was requested but torch {torch.__version__} sees no CUDA GPU; "
                "use --device cpu or install a CUDA build of torch."
            )
        index = int(name.split(":")[1]) if ":" in name else None
        if index is not None and index >= torch.cuda.device_count():
            raise RuntimeError(
                f"Device {device!r} was requested but only {torch.cuda.device_count()} GPU(s) are visible."
            )
    if kind == "mps" and not _mps_available():
        raise RuntimeError(f"Device {device!r} was requested but Apple MPS is not available here.")
    return torch.device(name)


@dataclass
class DistributedContext:
    """Where this process stands in a distributed run.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Global rank, number of processes, rank on this node.
    device : torch.device
        The device this process trains on.
    owns_group : bool
        True when :func:`distributed_context` started the process group (and
        :meth:`close` ends it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def close(self) -> None:
        """End the process group when this context started it."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.owns_group = False


def distributed_context(device: str | torch.device = "auto") -> DistributedContext:
    """Return the distributed context of this process, starting the process group if needed.

    Without ``WORLD_SIZE`` > 1 in the environment this is a single-process context
    on :func:`resolve_device` ``(device)``. Under ``torchrun`` each process takes
    GPU ``LOCAL_RANK`` when training on CUDA, and the process group uses NCCL on
    CUDA and Gloo otherwise.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if world_size <= 1:
        return DistributedContext(device=resolved)
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(resolved)
    owns = False
    if not torch.distributed.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world_size)
        owns = True
    return DistributedContext(rank, world_size, local_rank, resolved, owns)
