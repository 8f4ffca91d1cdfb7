"""Crops on a log scale before each plate's statistics (``TrainConfig.intensity="log"``, the default)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from napari_hcs.cli import main
from napari_hcs.nn import TrainConfig, load_checkpoint, predict_cells, train_model
from napari_hcs.nn.plate_normalisation import PlateNormaliser, negative_pixel_notes

from training_cells import CHANNELS, make_crops, make_store, small


def test_the_statistics_and_the_normalisation_are_those_of_the_log():
    table, crops = make_crops(48, 8)
    crops[:4] = -5.0  # negative pixels (a background subtracted too far) count as 0, and the user is told
    with pytest.warns(UserWarning, match=r"Plate P1: \d+\.\d% of the pixels .* negative; log intensities"):
        normaliser = PlateNormaliser.fit(table, crops, intensity="log")
    logged = np.log1p(np.maximum(crops, 0.0))
    stats = normaliser.stats["P1"]
    np.testing.assert_allclose(stats["mean"], logged.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], logged.std(axis=(0, 2, 3)), rtol=1e-3)
    mean, std = (np.array(stats[key], dtype=np.float32)[None, :, None, None] for key in ("mean", "std"))
    np.testing.assert_allclose(normaliser(crops[:10], np.arange(10)), (logged[:10] - mean) / std, atol=1e-5)
    assert PlateNormaliser.from_meta(normaliser.to_meta()).intensity == "log"
    share = normaliser.to_meta()["plates"]["P1"]["negative_pixels"]  # kept with the model, for its record
    assert share == pytest.approx(4 / 48)
    assert negative_pixel_notes(normaliser.to_meta()) == [
        "Plate P1: 8.3% of the pixels sampled for its statistics are negative; log intensities read them as 0 "
        "(intensity='linear' keeps them)."]
    assert PlateNormaliser.from_meta({"method": "plate", "plates": {}}).intensity == "linear"  # older models


def test_a_checkpoint_keeps_the_log_scale_and_predicts_with_it(tmp_path):
    table, crops = make_crops(64, 16)
    result = train_model(table, crops, small(epochs=2, tta=False, amp=False, intensity="log"), label_column="cls",
                         channels=CHANNELS, checkpoint_path=tmp_path / "m.pt")
    assert result.meta["normalisation"]["intensity"] == "log"
    assert result.meta["hyperparameters"]["intensity"] == "log"
    model, meta = load_checkpoint(tmp_path / "m.pt")
    options = dict(device="cpu", channels=CHANNELS, table=table, indices=np.arange(64))
    saved = predict_cells(model, meta, crops, **options)
    np.testing.assert_allclose(saved.probabilities, predict_cells(result.model, result.meta, crops,
                                                                  **options).probabilities, atol=1e-5)
    linear = {**meta, "normalisation": {**meta["normalisation"], "intensity": "linear"}}
    assert not np.allclose(predict_cells(model, linear, crops, **options).probabilities, saved.probabilities,
                           atol=1e-3)


def test_the_option_is_checked():
    with pytest.raises(ValueError, match="log, linear"):
        TrainConfig(intensity="sqrt")
    with pytest.raises(ValueError, match="normalisation='plate'"):
        TrainConfig(intensity="log", normalisation="global")
    assert TrainConfig().intensity == "log"
    assert TrainConfig(normalisation="global").intensity == "linear"
    assert TrainConfig(intensity="linear").intensity == "linear"
    assert TrainConfig.from_dict(TrainConfig().to_dict()).intensity == "log"


def test_crops_without_negative_pixels_are_logged_without_a_warning():
    table, crops = make_crops(24, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert negative_pixel_notes(PlateNormaliser.fit(table, np.abs(crops), intensity="log").to_meta()) == []
        PlateNormaliser.fit(table, crops - 100.0)  # linear: negative pixels are kept as they are


@pytest.mark.parametrize(("options", "scale"), [((), "log"), (("--normalisation", "global"), "linear"),
                                                (("--intensity", "linear"), "linear")])
def test_cli_train_logs_by_default_and_keeps_global_normalisation_linear(tmp_path, capsys, options, scale):
    table, crops = make_crops(48, 8)
    folder = tmp_path / "proj"
    make_store(folder, table, np.abs(crops))
    model = tmp_path / "m.pt"
    assert main(["train", "--project", str(folder), "--label-column", "cls", "--depth", "1", "--width", "1",
                 "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-tta", *options,
                 "--out", str(model)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary.get("intensity", "linear") == scale
    assert load_checkpoint(model)[1]["hyperparameters"]["intensity"] == scale
