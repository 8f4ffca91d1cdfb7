"""Devices: names, resolution to what this machine has, the single-process distributed context."""

from __future__ import annotations

import pytest
import torch

from napari_hcs.nn.device import check_device_name, distributed_context, resolve_device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
            resolve_device("cuda")
    context = distributed_context("cpu")
    assert (context.rank, context.world_size, context.enabled) == (0, 1, False)


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:3", "mps", " CPU "])
def test_device_names(name):
    assert check_device_name(name) == name.strip().lower()


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "auto:0", ""])
def test_bad_device_names(name):
    with pytest.raises(ValueError, match="expected one of auto, cpu, cuda, mps"):
        check_device_name(name)
