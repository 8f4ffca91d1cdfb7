"""Checkpoints: plain and identical round trips, clear errors for bad files, old metadata."""

from __future__ import annotations

import pytest
import torch

from napari_hcs.nn.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from napari_hcs.nn.config import TrainConfig
from napari_hcs.nn.models import build_model
from napari_hcs.nn.predict import predict_cells
from napari_hcs.nn.preprocess import Preprocess

torch.set_num_threads(1)


def _saved(tmp_path, name="wrn"):
    torch.manual_seed(0)
    model = build_model(name, in_channels=3, num_classes=2, depth=1, width=1)
    path = save_checkpoint(tmp_path / "model.pt", model, {"classes": ["a", "b"], "channels": ["x", "y", "z"]})
    return model, path


def test_checkpoint_round_trip_is_plain_and_identical(tmp_path):
    model, path = _saved(tmp_path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "napari-hcs-model" and isinstance(payload["meta_json"], str)
    loaded, meta = load_checkpoint(path)
    assert meta["classes"] == ["a", "b"] and meta["architecture"]["name"] == "wrn"
    x = torch.randn(3, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize("kind", ["garbage", "truncated", "damaged", "pickle", "foreign"])
def test_bad_checkpoints_give_clear_errors(tmp_path, kind):
    _, path = _saved(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        bad.write_bytes(b"not a model at all" * 20)
        message = "not a torch checkpoint archive"
    elif kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
        message = "not a torch checkpoint archive"
    elif kind == "damaged":
        middle = len(data) // 2
        bad.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :])
        message = "damaged|corrupt"
    elif kind == "pickle":
        torch.save({"model": torch.nn.Linear(2, 2)}, bad)
        message = "objects other than tensors"
    else:
        torch.save({"weights": torch.zeros(2)}, bad)
        message = "not a napari-hcs model"
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(bad)
    assert str(bad) in str(info.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_model_saved_with_older_metadata_loads_and_predicts(tmp_path):
    """The metadata a model trained before TrainConfig carries: the same keys, read the same way."""
    torch.manual_seed(0)
    model = build_model("cnn1", in_channels=2, num_classes=2, depth=1, width=1, hidden=8)
    older = {
        "task": "classification", "channels": ["DNA", "GFP"], "crop_size": 8, "classes": ["a", "b"],
        "preprocess": {"crop_size": 8, "input_size": 8, "mean": [0.0, 0.0], "std": [1.0, 1.0]},
        "hyperparameters": {"model": "cnn1", "depth": 1, "width": 1, "epochs": 3, "batch_size": 16,
                            "deterministic": True, "world_size": 1, "device": "cpu"},
    }
    path = save_checkpoint(tmp_path / "old.pt", model, older)
    loaded, meta = load_checkpoint(path)
    assert Preprocess.from_meta(meta["preprocess"]).mode == "resize"
    assert TrainConfig.from_meta(meta) == TrainConfig(model="cnn1", depth=1, width=1, epochs=3, batch_size=16,
                                                      deterministic=True, device="cpu")
    out = predict_cells(path, None, torch.zeros(3, 2, 8, 8).numpy(), device="cpu")
    assert out.probabilities.shape == (3, 2)
