"""napari sample-data contributions: the bundled real samples and a generated plate."""

from __future__ import annotations

from ..io import open_plate
from .layers import site_layer_data
from ..samples import make_synthetic_plate, sample_layout, sample_path


def _first_site_layers(plate):
    return site_layer_data(plate, plate.site(plate.wells[0]))


def ht29_sample():
    """HT29 cells, one site, DNA / PH3 / actin (CC0, CellProfiler examples)."""
    plate = open_plate(sample_path("ht29"))
    return _first_site_layers(plate)


def scportrait_plate_sample():
    """Two-well scPortrait plate, 3 timepoints, 540 x 540 (Apache-2.0)."""
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    return _first_site_layers(plate)


def synthetic_plate_sample():
    """Generated 2 x 4-well plate with four phenotype classes."""
    return _first_site_layers(make_synthetic_plate())
