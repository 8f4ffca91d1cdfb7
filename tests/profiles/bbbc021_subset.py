"""A few hundred BBBC021 crops (DMSO and cycloheximide, two plates) imported into a project.

Imported by basename (pytest puts this folder on ``sys.path``) by the embedding and clustering
tests. The project is built once per test session (:func:`subset_project`); tests that write
into a project work on a copy (:func:`copy_of`).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from napari_hcs.project.crop_import import import_crops

CHANNELS = ["DNA", "tubulin", "actin"]
_BUILT: dict[int, Path] = {}


def bbbc021_subset(shared_data: Path, folder: Path, *, per_group: int = 40, seed: int = 0) -> Path:
    """Import ``per_group`` crops of each plate x {DMSO, cycloheximide} into the project ``folder``.

    The crops' site becomes the cells' ``field`` (timepoint 0), so that sites can be excluded.
    """
    source = shared_data / "bbbc021_crops"
    meta = pd.read_csv(source / "bbbc021_crops.csv", dtype={"plate": str, "well": str})
    rng = np.random.default_rng(seed)
    treated = np.where(meta["compound"] == "DMSO", "DMSO", "cycloheximide")
    chosen = np.sort(np.concatenate([
        rng.choice(group.index.to_numpy(), min(per_group, len(group)), replace=False)
        for _, group in meta.groupby([meta["plate"], treated])
    ]))
    with np.load(source / "bbbc021_crops.npz") as loaded:
        crops = loaded["crops"][chosen]
    inputs = folder.parent / f"{folder.name}-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    np.savez(inputs / "crops.npz", crops=crops)
    rows = meta.iloc[chosen].assign(field=lambda t: t["site"], timepoint=0)
    rows.to_csv(inputs / "crops.csv", index=False)
    import_crops(inputs / "crops.npz", inputs / "crops.csv", folder, channels=CHANNELS)
    return folder


def subset_project(tmp_path_factory, shared_data: Path, *, per_group: int = 40) -> Path:
    """The imported subset, built once per session (do not write into it: use :func:`copy_of`)."""
    if per_group not in _BUILT:
        folder = tmp_path_factory.mktemp("bbbc021_subset") / "project"
        _BUILT[per_group] = bbbc021_subset(shared_data, folder, per_group=per_group)
    return _BUILT[per_group]


def copy_of(project: Path, target: Path) -> Path:
    """A copy of a project folder (a test changes its own copy)."""
    shutil.copytree(project, target)
    return target


def quick_cnn(project: Path, name: str = "quick") -> Path:
    """Train a tiny CNN on the compound of the project's cells (one epoch, 16-pixel input)."""
    from napari_hcs.nn import TrainConfig, train_model
    from napari_hcs.project import Project

    folder = Project(project)
    store = folder.cell_store()
    config = TrainConfig(model="cnn1", depth=1, width=1, epochs=1, input_size=16, device="cpu", batch_size=32,
                         model_options={"hidden": 16})
    path = folder.models_dir / f"{name}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # validation sites share wells: few wells here
        train_model(folder.cell_table(), store.crops, config, label_column="compound", channels=store.channels,
                    checkpoint_path=path)
    return path
