"""The one channel-axis rule, shared by the single-TIFF reader and segment-image."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_hcs.cli.segment_image import read_image_planes
from napari_hcs.io import open_plate, tcyx_shape, to_tcyx


@pytest.mark.parametrize(
    "shape, axes, expected",
    [
        ((20, 30), "YX", (1, 1, 20, 30)),
        ((20, 30, 3), "YXS", (1, 3, 20, 30)),
        ((3, 20, 30), "SYX", (1, 3, 20, 30)),
        ((2, 20, 30), "CYX", (1, 2, 20, 30)),
        ((2, 20, 30), "QYX", (1, 2, 20, 30)),
        ((20, 30, 2), "QYX", (1, 2, 20, 30)),  # channels last, unlabelled
        ((1, 20, 30), "QYX", (1, 1, 20, 30)),
        ((4, 2, 5, 20, 30), "TCZYX", (4, 2, 20, 30)),
        ((5, 3, 20, 30), "QSYX", (1, 3, 20, 30)),
        ((2, 20, 30, 3), "CYXS", (1, 2, 20, 30)),
    ],
)
def test_channel_axis_rule(shape, axes, expected):
    assert tcyx_shape(shape, axes) == expected


def test_to_tcyx_moves_the_pixels_with_the_axes():
    data = np.arange(2 * 3 * 4).reshape(3, 4, 2)  # Y, X, C unlabelled
    planes = to_tcyx(data, "QYX")[0]
    np.testing.assert_array_equal(planes[1], data[..., 1])


def test_axes_that_do_not_match_the_shape_are_an_error():
    with pytest.raises(ValueError, match="do not match"):
        tcyx_shape((2, 3), "TYX")


@pytest.mark.parametrize("layout", ["channels last", "channels first", "rgb", "imagej"])
def test_segment_image_and_the_single_tiff_reader_see_the_same_channels(tmp_path, layout):
    planes = np.stack([np.full((24, 36), 10 * (i + 1), np.uint8) for i in range(3)])
    path = tmp_path / "image.tif"
    if layout == "channels last":
        tifffile.imwrite(path, np.moveaxis(planes, 0, -1), photometric="minisblack")
    elif layout == "channels first":
        tifffile.imwrite(path, planes, photometric="minisblack")
    elif layout == "rgb":
        tifffile.imwrite(path, np.moveaxis(planes, 0, -1), photometric="rgb")
    else:
        tifffile.imwrite(path, planes, imagej=True, metadata={"axes": "CYX"})
    plate = open_plate(path)
    np.testing.assert_array_equal(plate.read_site(plate.site("A01")), planes)
    np.testing.assert_array_equal(read_image_planes(path), planes)
