"""The bundled sample segmented into a project (once per test session), labelled as two classes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from napari_hcs.io import open_plate
from napari_hcs.nn import TrainConfig
from napari_hcs.pipeline import run_plate
from napari_hcs.project import Project, import_crops
from napari_hcs.samples import sample_layout, sample_path
from napari_hcs.segmentation import SegmentationParams

PARAMS = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
CROP_SIZE = 16
#: The sample's two wells as two classes.
CLASSES = {"B02": "unstimulated", "B04": "stimulated"}
TEMPLATE = "classify_sample_template"


def tiny_cnn(**overrides) -> TrainConfig:
    """A CNN that trains in a fraction of a second per epoch on the sample's cells."""
    options = dict(model="cnn1", depth=1, width=1, epochs=2, batch_size=32, device="cpu")
    return TrainConfig(**{**options, **overrides})


def _template(tmp_path_factory) -> Path:
    """The segmented sample (crops, features, labels), made once per test session."""
    folder = tmp_path_factory.getbasetemp() / TEMPLATE
    if not (folder / "cells.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
        summary = run_plate(plate, folder, PARAMS, crop_size=CROP_SIZE, pattern="scportrait")
        assert summary["sites"] == 6 and not summary["failures"], summary
    return folder


def segmented_sample(tmp_path_factory, name: str = "sample", *, classes: dict | None = CLASSES) -> Project:
    """A fresh copy of the segmented sample; its wells labelled with ``classes`` (None: unlabelled)."""
    folder = tmp_path_factory.mktemp(name) / "project"
    shutil.copytree(_template(tmp_path_factory), folder)
    project = Project(folder)
    if classes:
        label_wells(project, classes)
    return project


def label_wells(project: Project, classes: dict) -> None:
    """Give wells a class on the plate map, as a user would, and save the annotations."""
    plate = project.open_plate()
    for well, name in classes.items():
        plate.annotate(well, class_=name)
    project.save_annotations(plate)


def imported_copy(project: Project, folder: Path, *, channels=None, crop_size=None) -> Project:
    """The project's crops and cell identities imported into another project (another 'plate')."""
    store = project.cell_store()
    cells = store.cells()
    crops = np.asarray(store.crops[cells["crop_index"].to_numpy()])
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "crops.npz", crops=crops)
    cells[["well", "field", "timepoint", "label"]].to_csv(folder / "crops.csv", index=False)
    names = list(channels or store.channels)
    import_crops(folder / "crops.npz", folder / "crops.csv", folder / "project", channels=names,
                 crop_size=crop_size, nucleus_channel=names[1])
    return Project(folder / "project")


def wells_of(table: pd.DataFrame, indices) -> set:
    return set(table.set_index("crop_index").loc[list(indices), "well"])
