"""Copies of the bundled sample with broken files, and small generated TIFF folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tifffile

from napari_hcs.plate import Plate
from napari_hcs.samples import sample_path

#: The bundled sample's naming as a plain regular expression (not a preset name).
SCPORTRAIT_REGEX = (r"^Timepoint(?P<timepoint>\d+)_(?P<well>Row\d+_Well\d+)_(?P<channel>[^_]+)"
                    r"_zstack\d+_r\d+_c\d+\.tiff?$")
GARBAGE = "Timepoint002_Row02_Well02_DAPI_zstack001_r000_c000.tif"
RESIZED = "Timepoint003_Row02_Well04_mCherry_zstack001_r004_c004.tif"


def broken_sample(folder: Path) -> Path:
    """The sample with one file of garbage bytes and one image of another size."""
    shutil.copytree(sample_path("scportrait_mini"), folder)
    (folder / GARBAGE).write_bytes(b"this is not a TIFF file" * 40)
    tifffile.imwrite(folder / RESIZED, np.zeros((100, 120), np.uint16))
    return folder


def tiff_folder(folder: Path, plate: Plate) -> Path:
    """Write a generated plate as one TIFF per site and channel (``imagexpress`` naming)."""
    folder.mkdir(parents=True)
    for site in plate.iter_sites():
        for index, plane in enumerate(plate.read_site(site)):
            tifffile.imwrite(folder / f"P1_{site.well}_s{site.field + 1}_w{index + 1}.tif", np.asarray(plane))
    return folder
