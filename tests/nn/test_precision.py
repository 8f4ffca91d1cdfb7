"""Mixed precision: bfloat16 where the hardware computes it, float32 elsewhere, recorded in the model."""

from __future__ import annotations

import pytest
import torch

from napari_hcs.nn import precision
from napari_hcs.nn.precision import autocast_context, autocast_dtype, cpu_has_bfloat16, needs_loss_scaling
from training_cells import CHANNELS, make_crops, small

CPU = torch.device("cpu")


@pytest.mark.parametrize("has_bfloat16, expected", [(True, torch.bfloat16), (False, None)])
def test_cpu_autocasts_to_bfloat16_only_with_the_instructions(monkeypatch, has_bfloat16, expected):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: has_bfloat16)
    assert autocast_dtype(CPU, amp=True) is expected
    assert autocast_dtype(CPU, amp=False) is None
    assert not needs_loss_scaling(CPU, amp=True)


def test_other_devices_without_cuda_stay_in_float32():
    assert autocast_dtype(torch.device("mps"), amp=True) is None


def test_autocast_context_computes_convolutions_in_the_chosen_dtype(monkeypatch):
    conv = torch.nn.Conv2d(2, 4, 3)
    batch = torch.randn(2, 2, 8, 8)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    with autocast_context(CPU, True):
        assert conv(batch).dtype == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    with autocast_context(CPU, True):
        assert conv(batch).dtype == torch.float32


@pytest.mark.parametrize("amp", [True, False])
def test_the_model_records_the_dtype_it_was_trained_in(amp):
    from napari_hcs.nn import train_model

    table, crops = make_crops(32)
    result = train_model(table, crops, small(epochs=1, amp=amp), label_column="cls", channels=CHANNELS)
    expected = "bfloat16" if amp and cpu_has_bfloat16() else "float32"
    assert result.meta["hyperparameters"]["compute_dtype"] == expected
    assert result.metrics["val"]["n"] > 0
