"""The training recipe: per-plate normalisation, test-time augmentation, seed ensembles, the best epoch.

Synthetic crops prove the arithmetic (a new plate normalised with its own
statistics, TTA equal to the mean of the eight views); the real BBBC021 plates
prove that a model trained on one plate predicts the other with that plate's
statistics (``benchmarks/recipes.py`` measures the accuracy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from napari_hcs.nn import load_checkpoint, predict_cells, train_model
from napari_hcs.nn.plate_normalisation import PlateNormaliser
from napari_hcs.nn.trainer import _monitored
from napari_hcs.nn.tta import dihedral_views

from training_cells import CHANNELS, make_crops, small


def _two_plates(n: int = 64, size: int = 16, *, gain: float = 3.0, offset: float = 500.0):
    """Plate P1, and plate P2: the same cells imaged ``gain`` times brighter plus ``offset``."""
    table, crops = make_crops(n, size)
    bright = crops * gain + offset
    second = table.assign(plate="P2", crop_index=table.crop_index + n)
    return pd.concat([table, second], ignore_index=True), np.concatenate([crops, bright]).astype(np.float32)


def test_a_new_plate_is_predicted_with_its_own_statistics(tmp_path):
    table, crops = _two_plates()
    on_p1 = table.plate == "P1"
    split = np.where(on_p1, "train", "")  # P2 takes no part in training
    # Linear intensities: P2 (P1 times a gain plus an offset) then normalises to P1's values exactly.
    result = train_model(table[on_p1].reset_index(drop=True), crops,
                         small(epochs=2, tta=False, amp=False, intensity="linear"),
                         label_column="cls", split=split[on_p1], channels=CHANNELS,
                         checkpoint_path=tmp_path / "m.pt")
    assert list(result.meta["normalisation"]["plates"]) == ["P1"]
    model, meta = load_checkpoint(tmp_path / "m.pt")
    options = dict(device="cpu", channels=CHANNELS, table=table)
    p1 = predict_cells(model, meta, crops, indices=np.arange(64), **options)
    p2 = predict_cells(model, meta, crops, indices=np.arange(64, 128), **options)
    # P2's statistics are P1's scaled by the gain: its cells normalise to the same values.
    np.testing.assert_allclose(p2.probabilities, p1.probabilities, atol=1e-4)
    # In mixed precision (bfloat16 on CPUs that have it) they differ by its rounding alone.
    mixed = {**meta, "hyperparameters": {**meta["hyperparameters"], "amp": True}}
    p2_mixed = predict_cells(model, mixed, crops, indices=np.arange(64, 128), **options)
    np.testing.assert_allclose(p2_mixed.probabilities, p1.probabilities, atol=1e-2)
    stats = PlateNormaliser.from_meta(meta["normalisation"]).extend(table, crops).stats
    np.testing.assert_allclose(stats["P2"]["mean"], np.array(stats["P1"]["mean"]) * 3 + 500, rtol=1e-6)
    np.testing.assert_allclose(stats["P2"]["std"], np.array(stats["P1"]["std"]) * 3, rtol=1e-6)


def test_global_normalisation_sees_the_brighter_plate_as_other_cells(tmp_path):
    table, crops = _two_plates()
    on_p1 = (table.plate == "P1").to_numpy()
    result = train_model(table[on_p1].reset_index(drop=True), crops, small(epochs=2, normalisation="global"),
                         label_column="cls", split=np.full(on_p1.sum(), "train"), channels=CHANNELS)
    assert result.meta["normalisation"] == {"method": "global"}
    p1 = predict_cells(result.model, result.meta, crops, indices=np.arange(64), device="cpu", channels=CHANNELS)
    p2 = predict_cells(result.model, result.meta, crops, indices=np.arange(64, 128), device="cpu",
                       channels=CHANNELS)
    assert np.abs(p2.probabilities - p1.probabilities).max() > 0.05


def test_controls_give_each_plate_the_statistics_of_its_control_cells():
    table, crops = _two_plates()
    normaliser = PlateNormaliser.fit(table, crops, controls="cls=a")
    a_cells = table.index[(table.plate == "P2") & (table.cls == "a")]
    expected = crops[a_cells].transpose(1, 0, 2, 3).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(normaliser.stats["P2"]["mean"], expected, rtol=1e-5)
    assert normaliser.stats["P2"]["cells"] == len(a_cells)


def test_a_plate_without_controls_is_named():
    table, crops = _two_plates()
    table.loc[(table.plate == "P2") & (table.cls == "a"), "cls"] = "b"
    with pytest.raises(ValueError, match="Plate P2 has no control cells"):
        PlateNormaliser.fit(table, crops, controls="cls=a")


def test_tta_equals_the_mean_of_the_eight_transformed_predictions():
    table, crops = make_crops(40)
    result = train_model(table, crops, small(epochs=1, tta=True), label_column="cls",
                         split=np.full(len(table), "train"), channels=CHANNELS)
    averaged = predict_cells(result.model, result.meta, crops, device="cpu", channels=CHANNELS)
    views = [view.numpy() for view in dihedral_views(torch.from_numpy(crops))]
    single = [predict_cells(result.model, result.meta, view.copy(), device="cpu", channels=CHANNELS, tta=False)
              for view in views]
    np.testing.assert_allclose(averaged.probabilities, np.mean([s.probabilities for s in single], axis=0),
                               atol=1e-5)
    np.testing.assert_allclose(averaged.embeddings, np.mean([s.embeddings for s in single], axis=0), atol=1e-4)
    assert result.meta["tta"] is True


def test_tta_is_chosen_on_the_validation_cells():
    table, crops = make_crops(96)
    split = np.where(table.well.isin(["A03", "B03"]), "val", "train")
    result = train_model(table, crops, small(epochs=2), label_column="cls", split=split, channels=CHANNELS)
    check = result.meta["tta_check"]
    key = {side: (s["val_balanced_accuracy"], -s["val_loss"]) for side, s in check.items()}
    assert result.meta["tta"] == (key["tta"] > key["plain"])


def test_an_ensemble_averages_its_seeds_and_survives_a_checkpoint(tmp_path):
    table, crops = make_crops(48)
    split = np.full(len(table), "train")
    result = train_model(table, crops, small(epochs=1, ensemble=2, tta=False), label_column="cls", split=split,
                         channels=CHANNELS, checkpoint_path=tmp_path / "e.pt")
    assert [m["seed"] for m in result.meta["members"]] == [0, 1]
    assert {row["member"] for row in result.history} == {0, 1}
    model, meta = load_checkpoint(tmp_path / "e.pt")
    ensemble = predict_cells(model, meta, crops, device="cpu", channels=CHANNELS)
    members = [predict_cells(member, meta, crops, device="cpu", channels=CHANNELS) for member in model.members]
    np.testing.assert_allclose(ensemble.probabilities, np.mean([m.probabilities for m in members], axis=0),
                               atol=1e-5)
    assert ensemble.embeddings.shape[1] == sum(m.embeddings.shape[1] for m in members)


def test_the_best_epoch_is_the_best_balanced_accuracy_loss_breaking_ties():
    rows = [{"val_balanced_accuracy": 0.8, "val_loss": 0.3}, {"val_balanced_accuracy": 0.9, "val_loss": 0.5},
            {"val_balanced_accuracy": 0.9, "val_loss": 0.4}]
    scores = [_monitored(row, True, "balanced_accuracy") for row in rows]
    assert max(range(3), key=scores.__getitem__) == 2
    by_loss = [_monitored(row, True, "loss") for row in rows]
    assert max(range(3), key=by_loss.__getitem__) == 0


def test_history_records_the_balanced_accuracy_and_the_kept_epoch_is_its_best():
    table, crops = make_crops(96)
    split = np.where(table.well.isin(["A03", "B03"]), "val", "train")
    result = train_model(table, crops, small(epochs=4, early_stopping=0), label_column="cls", split=split,
                         channels=CHANNELS)
    keys = [(row["val_balanced_accuracy"], -row["val_loss"]) for row in result.history]
    assert result.meta["best_epoch"] == 1 + max(range(len(keys)), key=keys.__getitem__)


def test_the_estimate_of_an_epoch_is_said_before_training_goes_on():
    table, crops = make_crops(160)
    said = []
    train_model(table, crops, small(epochs=1), label_column="cls", split=np.full(len(table), "train"),
                channels=CHANNELS, notice=said.append)
    assert len(said) == 1 and said[0].startswith("Training on cpu") and "per epoch" in said[0]


@pytest.mark.slow
def test_bbbc021_model_of_one_plate_normalises_the_other_with_its_own_statistics(shared_data, tmp_path):
    """Real plates: the second plate's statistics are its own, and its predictions use them."""
    source = shared_data / "bbbc021_crops"
    meta_table = pd.read_csv(source / "bbbc021_crops.csv")
    crops = np.load(source / "bbbc021_crops.npz")["crops"][:, :, 18:50, 18:50]  # 32x32 centres, quick
    table = meta_table.assign(crop_index=np.arange(len(meta_table)))
    train_plate = (table.plate == "Week4_27801").to_numpy()
    split = np.where(train_plate, "train", "")
    result = train_model(table, crops, small(epochs=1, batch_size=64, tta=False), label_column="moa",
                         split=split, channels=CHANNELS)
    assert list(result.meta["normalisation"]["plates"]) == ["Week4_27801", "Week4_27821"]
    other = np.flatnonzero(~train_plate)
    out = predict_cells(result.model, result.meta, crops, indices=other, device="cpu", channels=CHANNELS,
                        table=table)
    stats = result.meta["normalisation"]["plates"]["Week4_27821"]
    pixels = crops[other].astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1)
    assert result.meta["normalisation"]["intensity"] == "log"  # the default
    np.testing.assert_allclose(stats["mean"], np.log1p(pixels).mean(axis=1), rtol=1e-5)
    assert out.probabilities.shape == (len(other), 2) and np.isfinite(out.probabilities).all()


def test_the_order_cells_are_stored_in_does_not_change_the_model():
    # Segmentation workers append sites as they finish: the same cells, other store rows.
    table, crops = make_crops(64, 16)
    table = table.assign(label=np.arange(len(table)) + 1)
    moved = np.random.default_rng(1).permutation(len(table))  # store row of each cell in the other run
    other_crops = np.empty_like(crops)
    other_crops[moved] = crops
    other = table.assign(crop_index=moved).sample(frac=1.0, random_state=2).reset_index(drop=True)
    config = small(epochs=2, tta=False)
    first = train_model(table, crops, config, label_column="cls", channels=CHANNELS)
    second = train_model(other, other_crops, config, label_column="cls", channels=CHANNELS)
    for name, weights in first.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[name], weights, msg=name)
    assert first.history[-1]["val_loss"] == pytest.approx(second.history[-1]["val_loss"], rel=1e-6)
