"""Cell crops composed into RGB pictures with the image layers' colormaps and contrast."""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_hcs.io import open_plate
from napari_hcs.samples import sample_layout, sample_path
from napari_hcs.viewer.crop_images import COLORMAP_RGB, colormap_rgb, compose_crop, compose_crops
from napari_hcs.viewer.layers import channel_colormap, contrast_limits
from napari_hcs.vocabulary import DYE_COLORMAPS


def test_every_colormap_given_to_a_channel_has_a_colour():
    names = {colormap for _, colormap in DYE_COLORMAPS}
    names |= {channel_colormap(f"channel{i}", i) for i in range(10)}
    for name in names:
        assert name in COLORMAP_RGB and colormap_rgb(name) == COLORMAP_RGB[name]
    assert colormap_rgb("Gray") == (1.0, 1.0, 1.0)
    assert colormap_rgb("#00ff00") == (0.0, 1.0, 0.0)
    assert colormap_rgb((0.2, 0.4, 0.6)) == pytest.approx((0.2, 0.4, 0.6))
    assert colormap_rgb((255, 0, 51)) == pytest.approx((1.0, 0.0, 0.2))


def test_a_colormap_object_gives_its_last_colour():
    class Colormap:  # what napari's colormaps look like: colours from low to high
        name = "custom"
        colors = np.array([[0, 0, 0, 1], [1.0, 0.5, 0.0, 1]])

    assert colormap_rgb(Colormap()) == (1.0, 0.5, 0.0)


def test_unknown_colormaps_are_refused_with_the_known_names():
    with pytest.raises(ValueError, match="viridis.*magenta"):
        colormap_rgb("viridis")
    with pytest.raises(ValueError, match="r, g, b"):
        colormap_rgb((1.0, 0.5))
    with pytest.raises(ValueError, match="r, g, b"):
        colormap_rgb((-1, 0, 0))


def test_channels_add_up_within_their_contrast_limits():
    crop = np.zeros((2, 3, 3), dtype=np.uint16)
    crop[0] = [[0, 50, 100], [200, 0, 0], [0, 0, 0]]  # DAPI, blue, limits 0..100
    crop[1] = [[10, 10, 10], [10, 60, 110], [0, 0, 0]]  # magenta, limits 10..110
    rgb = compose_crop(crop, colormaps=["blue", "magenta"], contrast_limits=[(0, 100), (10, 110)])
    assert rgb.shape == (3, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 1].tolist() == [0, 0, 128]
    assert rgb[0, 2].tolist() == [0, 0, 255]
    assert rgb[1, 0].tolist() == [0, 0, 255]  # above the upper limit: clipped
    assert rgb[1, 1].tolist() == [128, 0, 128]
    assert rgb[1, 2].tolist() == [255, 0, 255]
    assert rgb[2, 2].tolist() == [0, 0, 0]
    both = compose_crop(np.stack([crop[0] * 0 + 100, crop[1] * 0 + 110]), colormaps=["blue", "magenta"],
                        contrast_limits=[(0, 100), (10, 110)])
    assert both[0, 0].tolist() == [255, 0, 255]  # blue + magenta, the sum clipped at 255


def test_gamma_and_flat_limits():
    crop = np.full((1, 2, 2), 0.25, dtype=np.float32)
    assert compose_crop(crop, colormaps=["gray"], contrast_limits=[(0, 1)], gamma=0.5)[0, 0].tolist() == [128] * 3
    assert compose_crop(crop, colormaps=["gray"], contrast_limits=[(0, 1)], gamma=[2.0])[0, 0].tolist() == [16] * 3
    flat = compose_crop(crop, colormaps=["red"], contrast_limits=[(0.25, 0.25)])
    assert flat[0, 0].tolist() == [0, 0, 0]


def test_one_setting_per_channel_is_required():
    crops = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match="2 colormaps for 3 channel"):
        compose_crops(crops, colormaps=["red", "green"], contrast_limits=[(0, 1)] * 3)
    with pytest.raises(ValueError, match="1 contrast limits for 3 channel"):
        compose_crops(crops, colormaps=["red"] * 3, contrast_limits=[(0, 1)])
    with pytest.raises(ValueError, match=r"\(N, C, S, S\)"):
        compose_crops(crops[0], colormaps=["red"] * 3, contrast_limits=[(0, 1)] * 3)
    with pytest.raises(ValueError, match=r"\(C, S, S\)"):
        compose_crop(crops, colormaps=["red"] * 3, contrast_limits=[(0, 1)] * 3)


def test_a_stack_is_the_crops_composed_one_by_one_and_fast():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 4000, size=(48, 4, 64, 64), dtype=np.uint16)
    settings = dict(colormaps=["blue", "green", "magenta", "gray"], contrast_limits=[(100, 3000)] * 4)
    stack = compose_crops(crops, **settings)
    assert stack.shape == (48, 64, 64, 3)
    np.testing.assert_array_equal(stack[7], compose_crop(crops[7], **settings))
    compose_crops(crops, **settings)
    start = time.perf_counter()
    compose_crops(crops, **settings)
    assert time.perf_counter() - start < 0.5  # a few ms; generous for a loaded test machine


def test_crops_of_the_real_sample_look_like_its_layers():
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait", layout=sample_layout())
    image = plate.read_site(plate.site("B02"))
    colormaps = [channel_colormap(name, i) for i, name in enumerate(plate.channels)]
    limits = [contrast_limits(plane) for plane in image]
    crops = np.stack([image[:, 100:164, 100:164], image[:, 300:364, 200:264]])
    rgb = compose_crops(crops, colormaps=colormaps, contrast_limits=limits)
    assert rgb.shape == (2, 64, 64, 3) and rgb.std() > 5
    dapi = plate.channels.index("DAPI")
    alone = compose_crops(crops[:, [dapi]], colormaps=["blue"], contrast_limits=[limits[dapi]])
    assert not alone[..., :2].any() and alone[..., 2].max() > 0
