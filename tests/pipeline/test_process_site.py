"""process_site: one site into rows, crops, labels and features; what it refuses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pipeline_plates import PARAMS, synthetic

from napari_hcs.pipeline import ROW_COLUMNS, process_site
from napari_hcs.plate import PlateError
from napari_hcs.project import feature_columns


def test_process_site_gives_rows_crops_labels_and_features():
    plate = synthetic(n_columns=1)
    site = plate.site("A01")
    result = process_site(plate, site, PARAMS, crop_size=24)
    assert result.n_cells > 3
    assert list(result.rows.columns) == ROW_COLUMNS
    assert result.crops.shape == (result.n_cells, 3, 24, 24)
    assert result.crops.dtype == np.float32
    assert result.nuclei.shape == result.cells.shape == (128, 128)
    assert set(result.rows.label) == set(np.unique(result.nuclei)) - {0}
    assert (result.rows.well == "A01").all() and (result.rows.site == 0).all()
    assert (result.rows.bbox_y1 > result.rows.bbox_y0).all()
    assert (result.rows.cell_area >= result.rows.nucleus_area).all()
    assert list(result.features.label) == list(result.rows.label)
    values = result.features[feature_columns(result.features)].to_numpy()
    assert values.shape[1] > 10 and np.isfinite(values).all()


def test_process_site_on_an_image_array():
    plate = synthetic(n_columns=1)
    image = plate.read_site(plate.site("A01"))
    result = process_site(image, None, PARAMS.to_dict(), channels=plate.channels, features=False)
    assert result.n_cells > 3 and result.features is None
    with pytest.raises(ValueError, match="channel names"):
        process_site(image, None, PARAMS)


def test_nan_pixels_are_background_with_a_warning_naming_the_channel():
    plate = synthetic(n_columns=1)
    image = plate.read_site(plate.site("A01")).astype(np.float32)
    image[1, :5, :5] = np.nan
    result = process_site(image, None, PARAMS, channels=plate.channels)
    assert any("25 NaN or infinite pixel(s) in channel cytoplasm" in w for w in result.warnings)
    assert np.isfinite(result.crops).all()


def test_process_site_rejects_unknown_channel_and_bad_shapes():
    plate = synthetic(n_columns=1)
    with pytest.raises(PlateError, match="DNA, cytoplasm, marker"):
        process_site(plate, plate.site("A01"), replace(PARAMS, nuclei_channel="DAPI"))
    with pytest.raises(PlateError, match="2 channels, expected 3"):
        process_site(np.zeros((2, 32, 32)), None, PARAMS, channels=plate.channels)
