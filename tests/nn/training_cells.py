"""Synthetic labelled crops, their cell table and project store, and a small training config."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_hcs.nn import TrainConfig
from napari_hcs.project.cell_store import CellStore

CHANNELS = ["DNA", "tubulin", "actin"]


def make_crops(n: int = 64, size: int = 16, *, seed: int = 0, n_wells: int = 3):
    """Two separable classes: class "b" has a bright square in channel 0.

    Returns the cell table (crop_index, plate, well, site, cls) and the crops (n, 3, size, size).
    """
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    crops = rng.normal(100.0, 10.0, (n, 3, size, size)).astype(np.float32)
    quarter = size // 4
    crops[labels == "b", 0, quarter:-quarter, quarter:-quarter] += 60.0
    wells = np.where(labels == "a", "A", "B")
    wells = np.char.add(wells, np.char.zfill((np.arange(n) // 2 % n_wells + 1).astype(str), 2))
    table = pd.DataFrame(
        {"crop_index": np.arange(n), "plate": "P1", "well": wells, "site": 1, "cls": labels}
    )
    return table, crops


def make_store(folder, table: pd.DataFrame, crops: np.ndarray, *, chunk: int = 16) -> CellStore:
    """A project cell store holding the crops, one table part per well."""
    store = CellStore.create(folder, channels=CHANNELS, crop_size=crops.shape[-1], cells_per_chunk=chunk)
    rows = table.drop(columns="crop_index")
    for well, part in rows.groupby("well", sort=True):
        store.append_site(f"{well}_f001_t000", part, crops[part.index.to_numpy()])
    return store


def small(**overrides) -> TrainConfig:
    """A config that trains in a fraction of a second on the crops above."""
    options = dict(model="wrn", depth=1, width=1, epochs=1, batch_size=16, device="cpu")
    options.update(overrides)
    return TrainConfig(**options)
