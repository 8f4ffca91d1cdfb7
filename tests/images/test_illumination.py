"""Illumination functions: the flat-field test, the dtype range, saving, and the real plate."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hcs.images.basic_illumination import basicpy_available
from napari_hcs.images.illumination import (
    IlluminationFunctions,
    IlluminationOptions,
    apply_illumination,
    estimate_illumination,
    load_illumination,
)
from napari_hcs.images.vignette import corner_centre_ratio, flat_field_cv, make_vignetted_plate
from napari_hcs.plate import Site

METHODS = ["cellprofiler", pytest.param("basic", marks=pytest.mark.skipif(
    not basicpy_available(), reason="basicpy is not installed"))]


@pytest.fixture(scope="module")
def vignetted():
    return make_vignetted_plate(n_sites=8, shape=(256, 256), levels=(10000.0, 30000.0), cells=15)


@pytest.mark.parametrize("method", METHODS)
def test_the_flat_field_cv_falls_at_least_fivefold_and_the_dtype_is_kept(vignetted, method):
    functions = estimate_illumination(vignetted, method=method)
    flat = vignetted.loader.render(Site("A01", 99, 0), cells=0)   # a uniform slide, not used to estimate
    corrected = apply_illumination(flat, functions)
    assert corrected.dtype == np.uint16 and corrected.shape == flat.shape
    for channel in range(2):
        before, after = flat_field_cv(flat[channel]), flat_field_cv(corrected[channel])
        assert before > 0.1 and before / after >= 5, (channel, before, after)
        assert abs(corner_centre_ratio(corrected[channel]) - 1) < 0.05


def test_apply_clips_to_the_dtype_range_and_keeps_the_dtype():
    flat = np.full((1, 4, 4), 0.5, np.float32)
    functions = IlluminationFunctions("cellprofiler", ("DNA",), flat)
    out8 = apply_illumination(np.full((1, 4, 4), 200, np.uint8), functions)
    assert out8.dtype == np.uint8 and out8.max() == 255
    out16 = apply_illumination(np.full((4, 4), 40000, np.uint16), functions)
    assert out16.dtype == np.uint16 and out16.max() == 65535 and out16.shape == (4, 4)
    dark = IlluminationFunctions("basic", ("DNA",), np.ones((1, 4, 4)), np.full((1, 4, 4), 100.0))
    assert apply_illumination(np.full((1, 4, 4), 50, np.uint16), dark).min() == 0
    with pytest.raises(ValueError, match="1 channel"):
        apply_illumination(np.zeros((2, 4, 4), np.uint16), functions)


def test_functions_are_saved_and_read_back_and_missing_ones_say_how_to_make_them(vignetted, tmp_path):
    functions = estimate_illumination(vignetted, channels=["GFP"], options=IlluminationOptions(max_sites=3))
    assert functions.provenance["n_sites"] == 3 and functions.channels == ("GFP",)
    functions.save(tmp_path)
    again = load_illumination(tmp_path, "cellprofiler")
    assert again.channels == ("GFP",) and np.array_equal(again.flatfield, functions.flatfield)
    with pytest.raises(FileNotFoundError, match="napari-hcs illumination"):
        load_illumination(tmp_path, "basic")
    with pytest.raises(ValueError, match="Unknown illumination method"):
        estimate_illumination(vignetted, method="retinex")
    with pytest.raises(KeyError, match="RFP"):
        functions.select(["RFP"])


def test_a_site_with_nan_is_left_out_not_fatal():
    from dataclasses import replace

    plate = make_vignetted_plate(n_sites=3, shape=(64, 64), cells=0)

    class NanFirst:
        def __call__(self, site):
            pixels = plate.loader(site)
            return pixels * np.nan if site.field == 1 else pixels

    functions = estimate_illumination(replace(plate, loader=NanFirst()))
    assert functions.provenance["n_sites"] == 2 and "NaN" in functions.provenance["skipped"][0]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_correction_lowers_the_corner_centre_background_spread_on_scportrait(scportrait_plate, method):
    plate, images = scportrait_plate
    functions = estimate_illumination(plate, method=method)
    before = np.mean([[abs(1 - corner_centre_ratio(p)) for p in image] for image in images], axis=0)
    corrected = [apply_illumination(image, functions) for image in images]
    after = np.mean([[abs(1 - corner_centre_ratio(p)) for p in image] for image in corrected], axis=0)
    assert all(c.dtype == np.uint16 for c in corrected)
    if method == "cellprofiler":
        assert (after <= before).all() and after.mean() < before.mean() * 0.8, (before, after)
    else:  # BaSiC from 2 fields: recorded, not required to improve every channel
        assert np.isfinite(after).all()


@pytest.fixture(scope="module")
def scportrait_plate(scportrait_dir):
    from napari_hcs.io import open_plate

    plate = open_plate(scportrait_dir / "input_images", pattern="scportrait")
    return plate, [plate.read_site(site) for site in plate.iter_sites()]
