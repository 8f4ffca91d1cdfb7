"""Preprocessing of crops: resize or centre crop, normalisation statistics, the stored form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_hcs.nn.crop_reader import CropReader
from napari_hcs.nn.preprocess import Preprocess, channel_statistics
from training_cells import make_crops


def test_channel_statistics_match_numpy():
    _, crops = make_crops(40)
    indices = np.arange(3, 37)
    mean, std = channel_statistics(CropReader(crops), indices, Preprocess(crop_size=16), batch_size=7)
    np.testing.assert_allclose(mean, crops[indices].mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, crops[indices].std(axis=(0, 2, 3), ddof=1), rtol=1e-5)


@pytest.mark.parametrize("input_size", [None, 8])
def test_channel_statistics_are_the_same_bits_in_any_order_batch_size_and_chunking(input_size):
    """Two stores of one plate, written site by site in another order, must normalise alike."""
    rng = np.random.default_rng(3)
    crops = rng.gamma(2.0, 900.0, (300, 3, 16, 16)).astype(np.float32)
    preprocess = Preprocess(crop_size=16, input_size=input_size)
    reference = channel_statistics(CropReader(crops), np.arange(300), preprocess, batch_size=64)
    order = rng.permutation(300)
    shuffled = crops[order]  # the same cells stored in another order
    for batch_size in (7, 64, 2048):
        again = channel_statistics(CropReader(shuffled), np.argsort(order), preprocess, batch_size=batch_size)
        assert again == reference
        reversed_rows = channel_statistics(CropReader(shuffled), np.arange(300)[::-1], preprocess,
                                           batch_size=batch_size)
        assert reversed_rows == reference


def test_channel_statistics_can_be_cancelled():
    _, crops = make_crops(8)
    with pytest.raises(InterruptedError, match="normalisation statistics was cancelled"):
        channel_statistics(CropReader(crops), np.arange(8), Preprocess(crop_size=16), cancel=lambda: True)


def test_preprocess_resize_and_center():
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    assert Preprocess(crop_size=8, input_size=4).resize(batch).shape == (2, 3, 4, 4)
    centre = Preprocess(crop_size=8, input_size=4, mode="center").resize(batch)
    assert torch.equal(centre, batch[..., 2:6, 2:6])
    with pytest.raises(ValueError, match="centre-crop"):
        Preprocess(crop_size=8, input_size=10, mode="center")
    with pytest.raises(ValueError, match="Unknown resize mode 'crop'; expected one of resize, center"):
        Preprocess(crop_size=8, mode="crop")


def test_preprocess_round_trips_through_its_metadata():
    preprocess = Preprocess(crop_size=68, input_size=32, mode="center", mean=[1.5, 2.0], std=[0.5, 1.0])
    assert Preprocess.from_meta(preprocess.to_meta()) == preprocess
    older = {"crop_size": 32, "input_size": 32, "mean": [0.0], "std": [1.0]}  # before "mode" was stored
    assert Preprocess.from_meta(older).mode == "resize"
