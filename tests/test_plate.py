"""Plate model: well names, layouts, sites, channels, annotations."""

import numpy as np
import pytest

from napari_hcs.plate import (
    PlateError,
    infer_layout,
    normalize_well_name,
    row_label,
    well_position,
)
from napari_hcs.samples.synthetic import make_synthetic_plate


@pytest.mark.parametrize(
    "raw, expected",
    [("A1", "A01"), ("a01", "A01"), ("P24", "P24"), ("Row02_Well04", "B04"),
     ("r02c04", "B04"), ("R16C24", "P24"), ("AF48", "AF48"), ("B_03", "B03")],
)
def test_well_names_map_to_a01_style(raw, expected):
    assert normalize_well_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "well", "12", "Row_Well", "r0c0"])
def test_unknown_well_name_is_a_clear_error(raw):
    with pytest.raises(PlateError, match="Unknown well name"):
        normalize_well_name(raw)


def test_row_labels_go_past_z_for_1536_well_plates():
    assert [row_label(i) for i in (0, 25, 26, 31)] == ["A", "Z", "AA", "AF"]
    assert well_position("AF48") == (31, 47)


@pytest.mark.parametrize(
    "wells, layout",
    [(["A01", "H12"], (8, 12)), (["B02", "B04"], (8, 12)), (["P24"], (16, 24)), (["AF48"], (32, 48))],
)
def test_layout_is_the_smallest_screening_plate(wells, layout):
    assert infer_layout(wells) == layout


def test_sites_channels_and_lazy_pixels():
    plate = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=3, shape=(64, 64), n_cells=4)
    assert plate.wells == ["A01", "A02"]
    assert plate.n_sites() == 6
    lazy = plate.site_array(plate.site("A02", 2))
    assert lazy.shape == (3, 64, 64)
    assert plate.read_site(plate.site("A02", 2)).dtype == np.uint16
    assert plate.channel_index("marker") == 2
    with pytest.raises(PlateError, match="channels are: DNA, cytoplasm, marker"):
        plate.channel_index("GFP")
    with pytest.raises(PlateError, match="site index 5 does not exist"):
        plate.site("A01", 5)
    with pytest.raises(PlateError, match="not on plate"):
        plate.site("H12")


def test_annotations_and_summary():
    plate = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=1, shape=(32, 32), n_cells=1)
    plate.annotate("A01", class_="treated", compound="taxol", concentration=0.1)
    assert plate.well_annotations("A01")["class"] == "treated"
    summary = plate.summary()
    assert set(summary) >= {"wells", "sites", "channels", "shape", "dtype", "annotations"}
    assert summary["annotations"]["A01"]["compound"] == "taxol"
    with pytest.raises(PlateError):
        plate.annotate("C07", class_="x")
