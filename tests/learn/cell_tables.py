"""Small synthetic cell tables and projects for the tests of ``napari_hcs.learn``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_cells(wells_per_class=4, cells=30, n_features=8, shift=1.5, seed=0) -> pd.DataFrame:
    """Two classes, separated along the first two features, with a small well effect."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, cls in enumerate(["ctrl", "hit"]):
        for w in range(wells_per_class):
            x = rng.normal(size=(cells, n_features)) + rng.normal(scale=0.2, size=n_features)
            x[:, :2] += k * shift
            frame = pd.DataFrame(x, columns=[f"feat_{i}" for i in range(n_features)])
            frame["well"] = f"{'BC'[k]}{w + 2:02d}"
            frame["class"] = cls
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def make_project(folder, table):
    """A project whose cell store holds ``table``'s cells, with the class as layout ``treatment``."""
    from napari_hcs.project.cell_store import CellStore

    store = CellStore.create(folder, channels=["DNA"], crop_size=4)
    for well, cells in table.groupby("well", sort=True):
        rows = store.append_site(
            f"{well}_f001_t000", cells[["well"]], np.zeros((len(cells), 1, 4, 4), "float32")
        )
        features = cells.filter(like="feat_").reset_index(drop=True)
        store.write_features(well, features.assign(crop_index=rows["crop_index"]))
    layout = table.groupby("well")["class"].first().rename("treatment")
    layout.to_csv(folder / "layout.csv")
    return folder
