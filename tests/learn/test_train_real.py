"""Real cells: a CNN trained on one BBBC021 plate classifies the cells of the other plate.

3,598 real MCF7 crops (DNA, tubulin, actin; 68x68): DMSO vs cycloheximide
("Protein synthesis"). Train on plate Week4_27801, test on plate Week4_27821;
the crops are resized to 32x32 for the network (see docs/training.md).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from napari_hcs.cli import main
from napari_hcs.project.crop_import import import_crops
from napari_hcs.nn.predict import predict_project
from napari_hcs.project.folder import Project

pytestmark = pytest.mark.slow

CNN_OPTIONS = ["--model", "wrn", "--depth", "1", "--width", "1", "--input-size", "32", "--epochs", "8",
               "--batch-size", "64", "--device", "cpu"]


@pytest.fixture(scope="module")
def bbbc021_project(shared_data, tmp_path_factory):
    source = shared_data / "bbbc021_crops"
    folder = tmp_path_factory.mktemp("bbbc021")
    import_crops(source / "bbbc021_crops.npz", source / "bbbc021_crops.csv", folder,
                 channels=["DNA", "tubulin", "actin"])
    return folder


@pytest.mark.filterwarnings("ignore:Class\\(es\\) DMSO have a single training well")
def test_cnn_trained_on_one_plate_classifies_the_other(bbbc021_project, capsys):
    torch.set_num_threads(2)
    started = time.perf_counter()
    # A quick fixed-epoch run on all four training wells (no validation carved); the default
    # recipe, with validation carved per plate and class, is measured by benchmarks/recipes.py.
    code = main(["compare", "--project", str(bbbc021_project), "--label-column", "moa",
                 "--holdout", "plate=Week4_27821", "--val-fraction", "0", *CNN_OPTIONS])
    seconds = time.perf_counter() - started
    assert code == 0
    out = capsys.readouterr().out
    results = json.loads(out[out.rindex("\n{") + 1 :])
    cnn, forest = results["cnn"], results["random_forest"]
    with capsys.disabled():
        print(f"\n{out[: out.rindex(chr(10) + '{')]}\nCNN + baselines took {seconds:.0f} s")
    assert cnn["n"] == 1632  # every cell of the test plate
    assert cnn["accuracy"] >= 0.95 and cnn["balanced_accuracy"] >= 0.95
    assert forest["n"] == 1632 and forest["accuracy"] > 0.9
    record = json.loads((bbbc021_project / "compare.json").read_text())
    assert record["split"]["test"] == {"DMSO": 876, "Protein synthesis": 756}

    # The saved model, reloaded, predicts the same classes for the test plate.
    model = bbbc021_project / "models" / "compare_wrn_moa.pt"
    predict_project(bbbc021_project, model, device="cpu")
    table = Project(bbbc021_project).cell_table()
    test = table[table.plate == "Week4_27821"]
    accuracy = float((test.pred_class == test.moa).mean())
    assert abs(accuracy - cnn["accuracy"]) <= 1 / len(test)
    embeddings = table.filter(like="emb_").to_numpy()
    assert embeddings.shape == (3598, 64) and np.isfinite(embeddings).all()
