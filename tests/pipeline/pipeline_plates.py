"""Small generated plates for the pipeline tests, and plates with broken sites."""

from __future__ import annotations

from dataclasses import replace

import dask.array as da
import numpy as np

from napari_hcs.plate import Plate
from napari_hcs.samples import make_synthetic_plate
from napari_hcs.segmentation import SegmentationParams

PARAMS = SegmentationParams(nuclei_channel="DNA", cell_channel="cytoplasm")


def synthetic(n_columns=2, n_sites=1, size=128, n_cells=8) -> Plate:
    return make_synthetic_plate(n_rows=1, n_columns=n_columns, n_sites=n_sites, shape=(size, size),
                                n_cells=n_cells)


def with_special_sites(plate: Plate, special: dict) -> Plate:
    """The plate with some sites replaced: "empty" (zeros), "nan" (NaN holes), "raise"."""
    base = plate.loader

    def load(site):
        kind = special.get(site)
        if kind == "raise":
            raise OSError(f"simulated read error at {site.name}")
        array = base(site)
        if kind == "empty":
            return da.zeros_like(array)
        if kind == "nan":
            image = np.asarray(array).astype(np.float32)
            image[:, :10, :] = np.nan
            return da.from_array(image)
        return array

    return replace(plate, loader=load, sites=dict(plate.sites), annotations=plate.annotations.copy())
