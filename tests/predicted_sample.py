"""The bundled scPortrait sample segmented into a project, with plausible predictions and models.

Imported by basename (tests/ is on ``sys.path``, as for plates.py) by tests/classify and tests/cli.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.project import CellStore, Project
from napari_hcs.project.model_catalog import ModelRecord
from napari_hcs.samples import sample_layout, sample_path
from napari_hcs.segmentation import SegmentationParams

CLASSES = ["Unstimulated", "Stimulated", "Dividing"]
PARAMS = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")


def segmented_sample(folder: Path) -> Path:
    """Segment the bundled sample (2 wells x 3 timepoints) into the project ``folder``, no features."""
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    summary = run_plate(plate, folder, PARAMS, crop_size=32, features=False, pattern="scportrait")
    assert summary["sites"] == 6 and not summary["failures"], summary
    return folder


def copy_project(source: Path, target: Path) -> Project:
    shutil.copytree(source, target)
    return Project(target)


def plausible_predictions(project: Project, *, model: str = "quick", seed: int = 0) -> pd.DataFrame:
    """Predictions as a classifier writes them: B02 mostly Unstimulated, B04 mostly Stimulated.

    No cell of site B02 f0 t1 is predicted "Dividing"; some of B04's are.
    """
    cells = project.cell_store().cells()
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(cells), len(CLASSES)))
    logits[:, 0] += np.where(cells["well"] == "B02", 2.5, 0.0)
    logits[:, 1] += np.where(cells["well"] == "B04", 2.0, 0.0)
    logits[:, 2] += np.where(cells["well"] == "B04", 1.2, -50.0)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    top = np.sort(probs, axis=1)
    frame = pd.DataFrame({
        "crop_index": cells["crop_index"].to_numpy(),
        "pred_class": np.asarray(CLASSES)[probs.argmax(axis=1)],
        "pred_confidence": top[:, -1].astype(np.float32),
        "pred_margin": (top[:, -1] - top[:, -2]).astype(np.float32),
        "pred_model": model,
    })
    for index, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = probs[:, index].astype(np.float32)
    CellStore(project.folder).write_columns("predictions", frame)
    return frame


def save_forest_model(project: Project, name: str = "quick") -> None:
    """A model in the catalog with its evaluated validation and test cells."""
    from sklearn.dummy import DummyClassifier

    catalog = project.models()
    forest = DummyClassifier().fit([[0.0], [1.0], [2.0]], CLASSES)
    record = ModelRecord(name="", kind="forest", classes=CLASSES, channels=["Alexa488", "DAPI", "mCherry"],
                         feature_columns=["feat_area"])
    catalog.save_forest(name, forest, record)
    rng = np.random.default_rng(1)
    true = rng.choice(CLASSES, 90)
    pred = np.where(rng.random(90) < 0.8, true, rng.choice(CLASSES, 90))
    catalog.save_evaluation(name, pd.DataFrame({
        "crop_index": np.arange(90), "split": np.where(np.arange(90) < 60, "test", "val"),
        "true_class": true, "pred_class": pred, "pred_confidence": rng.random(90).astype(np.float32),
        "pred_margin": rng.random(90).astype(np.float32)}))


def save_cnn_checkpoint(project: Project, name: str = "wrn") -> None:
    """A command-line checkpoint ``models/<name>.pt`` whose metrics hold the test confusion matrix."""
    from napari_hcs.nn.checkpoint import save_checkpoint
    from napari_hcs.nn.models import build_model

    model = build_model("cnn1", in_channels=3, num_classes=2, depth=1, width=1, hidden=8)
    test = {"accuracy": 0.75, "balanced_accuracy": 0.7, "classes": CLASSES[:2], "n": 40,
            "confusion_matrix": [[20, 4], [6, 10]]}
    save_checkpoint(project.models_dir / f"{name}.pt", model, {
        "task": "classification", "classes": CLASSES[:2], "channels": ["Alexa488", "DAPI", "mCherry"],
        "crop_size": 32, "metrics": {"val": None, "test": test}})
