"""Small in-memory plates for tests (importable from every test folder)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from napari_hcs.plate import Plate, Site


def make_plate(wells=("B02", "B03"), channels=("DAPI", "GFP"), n_sites=2, labels=False) -> Plate:
    """A small in-memory plate: site pixel values encode well and site."""
    sites = {w: [Site(w, f, 0) for f in range(n_sites)] for w in wells}
    offsets = {site: 1000 * i for i, site in enumerate(s for ss in sites.values() for s in ss)}

    def load(site):
        rng = np.random.default_rng(offsets[site])
        pixels = rng.integers(0, 100, size=(len(channels), 40, 48), dtype=np.uint16) + offsets[site]
        return da.from_array(pixels.astype(np.uint16), chunks=-1)

    def load_labels(site):
        nuclei = np.zeros((40, 48), dtype=np.uint16)
        nuclei[5:15, 5:15] = 1
        return {"nuclei": da.from_array(nuclei)}

    return Plate(
        name="synthetic",
        channels=list(channels),
        sites=sites,
        loader=load,
        shape=(40, 48),
        dtype=np.uint16,
        pixel_size=0.65,
        label_loader=load_labels if labels else None,
    )
