"""Preprocessing of whole sites: outliers, rolling ball, median, TV denoising, centre crop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_hcs.images.preprocess import (
    PreprocessOptions,
    preprocess_site,
    read_preprocessing,
    rolling_ball_background,
    save_preprocessing,
)
from napari_hcs.vocabulary import PREPROCESS_STEPS


def _noisy(seed=0, shape=(2, 96, 96)):
    rng = np.random.default_rng(seed)
    return (1000 + rng.normal(0, 20, shape)).astype(np.uint16)


def test_an_outlier_pixel_is_replaced_by_the_local_median_and_the_rest_kept():
    image = _noisy()
    image[0, 40, 50] = 30000
    image[1, 10, 10] = 0
    out = preprocess_site(image, PreprocessOptions(steps=("outliers",), outlier_threshold=300))
    assert abs(out[0, 40, 50] - 1000) < 60 and abs(out[1, 10, 10] - 1000) < 60
    untouched = np.ones(image.shape, bool)
    untouched[0, 40, 50] = untouched[1, 10, 10] = False
    assert np.array_equal(out[untouched], image[untouched].astype(np.float32))


def test_outlier_thresholds_per_channel_name():
    image = _noisy()
    image[:, 40, 50] = 1500   # 500 above the median in both channels
    options = PreprocessOptions(steps=("outliers",), outlier_threshold={"DNA": 300, "GFP": 800})
    out = preprocess_site(image, options, channels=["DNA", "GFP"])
    assert out[0, 40, 50] < 1100 and out[1, 40, 50] == 1500
    with pytest.raises(ValueError, match="channel names"):
        preprocess_site(image, options)


def test_steps_run_in_the_fixed_order_and_unknown_steps_are_refused():
    assert PreprocessOptions(steps=("centre_crop", "median")).steps == ("median", "centre_crop")
    assert PreprocessOptions().steps == PREPROCESS_STEPS
    with pytest.raises(ValueError, match="Unknown preprocessing step"):
        PreprocessOptions(steps=("sharpen",))
    with pytest.raises(ValueError, match="rolling_ball_radius"):
        PreprocessOptions(rolling_ball_radius=0)


def test_options_round_trip_through_json_and_the_project(tmp_path):
    options = PreprocessOptions(steps=("outliers", "tv_denoise"), outlier_radius=(1, 3),
                                outlier_threshold={"DAPI": 250.0, "*": None}, tv_weight=0.05)
    again = PreprocessOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again == options
    assert read_preprocessing(tmp_path) is None
    save_preprocessing(tmp_path, options)
    assert read_preprocessing(tmp_path) == options
    assert json.loads((tmp_path / "project.json").read_text())["preprocessing"]["steps"] == ["outliers", "tv_denoise"]
    with pytest.raises(ValueError, match="Unknown preprocessing option"):
        PreprocessOptions.from_dict({"steps": [], "blur": 3})


def test_centre_crop_and_float32_output():
    out = preprocess_site(_noisy(shape=(2, 100, 80)), PreprocessOptions(steps=("median", "centre_crop"), crop_size=64))
    assert out.shape == (2, 64, 64) and out.dtype == np.float32
    small = preprocess_site(_noisy(shape=(1, 40, 40)), PreprocessOptions(steps=("centre_crop",), crop_size=64))
    assert small.shape == (1, 40, 40)


def test_nan_and_bad_shapes_are_refused_with_words():
    with pytest.raises(ValueError, match="NaN"):
        preprocess_site(np.full((1, 8, 8), np.nan, np.float32), PreprocessOptions(steps=("median",)))
    with pytest.raises(ValueError, match=r"\(C, Y, X\)"):
        preprocess_site(np.zeros((1, 1, 8, 8)))


def test_the_shrunk_rolling_ball_is_close_to_skimage_and_removes_a_ramp():
    from skimage.restoration import rolling_ball

    y, x = np.mgrid[:200, :200]
    rng = np.random.default_rng(1)
    plane = (100 + 0.5 * x + rng.normal(0, 2, x.shape)).astype(np.float32)
    for cy, cx in rng.uniform(20, 180, (15, 2)):
        plane[(y - cy) ** 2 + (x - cx) ** 2 < 36] += 500
    fast = rolling_ball_background(plane, 25)
    exact = rolling_ball(plane, radius=25)
    assert np.abs(fast - exact).mean() < 5
    flattened = preprocess_site(plane, PreprocessOptions(steps=("rolling_ball",), rolling_ball_radius=25))
    background = flattened[plane < 300]
    assert abs(np.median(background)) < 10 and flattened.max() > 400


def test_tv_denoising_lowers_the_noise():
    image = _noisy(shape=(1, 96, 96)).astype(np.float32)
    out = preprocess_site(image, PreprocessOptions(steps=("tv_denoise",), tv_weight=0.05))
    assert out.std() < image.std() / 2 and abs(out.mean() - image.mean()) < 5


def test_real_site_every_step_and_a_planted_outlier(scportrait_dir):
    path = next((scportrait_dir / "input_images").glob("*/Timepoint001_*_DAPI_*.tif"))
    plane = tifffile.imread(path)[300:556, 300:556].copy()
    background = np.unravel_index(np.argmin(plane[100:150, 100:150]), (50, 50))
    where = (100 + background[0], 100 + background[1])
    plane[where] = 60000
    out = preprocess_site(plane[None], PreprocessOptions(steps=("outliers",)), channels=["DAPI"])
    assert out[0][where] < 1000
    changed = np.count_nonzero(out[0] != plane)
    assert changed < plane.size * 0.01
    full = preprocess_site(plane[None], PreprocessOptions(crop_size=200, rolling_ball_radius=30))
    assert full.shape == (1, 200, 200) and np.isfinite(full).all()
    assert np.percentile(full, 10) < np.percentile(plane, 10) / 4  # the background went
