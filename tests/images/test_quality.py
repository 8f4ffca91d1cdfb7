"""Image quality metrics: CellProfiler's definitions, real sites, blur, saturation and bad planes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
from scipy import ndimage

from napari_hcs.images.quality import QUALITY_METRICS, focus_score, power_log_log_slope, site_quality
from napari_hcs.io import open_plate


def _cellprofiler_slope(pixels: np.ndarray) -> float:
    """MeasureImageQuality's PowerLogLogSlope with centrosome's ``rps``, written out as they are."""
    radii2 = np.arange(pixels.shape[0])[:, None] ** 2 + np.arange(pixels.shape[1]) ** 2
    radii2 = np.minimum(radii2, np.flipud(radii2))
    radii2 = np.minimum(radii2, np.fliplr(radii2))
    maxwidth = min(pixels.shape) / 8.0
    if np.ptp(pixels) > 0:
        pixels = pixels / np.median(np.abs(pixels - pixels.mean()))
    magnitude = np.abs(scipy.fft.fft2(pixels - pixels.mean()))
    radii = np.floor(np.sqrt(radii2)).astype(int) + 1
    labels = np.arange(2, np.floor(maxwidth)).astype(int)
    mag = ndimage.sum(magnitude, radii, labels)
    power = ndimage.sum(magnitude ** 2, radii, labels)
    valid = mag > 0
    x, y = np.log(labels[valid]), np.log(power[valid])
    return float(scipy.linalg.lstsq(np.c_[x, np.ones_like(x)], y)[0][0])


@pytest.fixture(scope="module")
def scportrait_site(scportrait_dir):
    plate = open_plate(scportrait_dir)
    return plate.read_site(plate.site("B02", 0)), plate.channels


def test_power_log_log_slope_is_cellprofilers_on_real_planes_of_any_shape(scportrait_site):
    image, _ = scportrait_site
    for plane in (image[0], image[1, :1001, :777], image[2, 5:, 8:]):
        scaled = plane.astype(np.float64) / 65535
        assert power_log_log_slope(plane) == pytest.approx(_cellprofiler_slope(scaled), abs=1e-9)


def test_focus_score_is_the_normalised_variance_of_the_scaled_image(scportrait_site):
    image, _ = scportrait_site
    scaled = image[1].astype(np.float64) / 65535
    expected = np.sum((scaled - scaled.mean()) ** 2) / (scaled.size * scaled.mean())
    assert focus_score(image[1]) == pytest.approx(expected, rel=1e-9)
    row = site_quality(image[1:2], channels=["DAPI"]).iloc[0]
    assert row["focus_score"] == pytest.approx(expected, rel=1e-9)


def test_real_site_table_and_its_histogram_summary_match_numpy(scportrait_site):
    image, channels = scportrait_site
    table = site_quality(image, channels=channels)
    assert list(table.columns) == ["channel", *QUALITY_METRICS] and list(table["channel"]) == channels
    for plane, (_, row) in zip(image, table.iterrows()):
        expected = np.quantile(plane, [0.01, 0.25, 0.5, 0.75, 0.99], method="inverted_cdf")
        assert row[["q01", "q25", "q50", "q75", "q99"]].tolist() == expected.tolist()
        assert row["mean"] == pytest.approx(plane.mean()) and row["std"] == pytest.approx(plane.std())
        assert row["percent_maximal"] == pytest.approx(100 * np.mean(plane == plane.max()))
        assert row["percent_minimal"] == pytest.approx(100 * np.mean(plane == plane.min()))
        assert row["percent_saturated"] == pytest.approx(100 * np.mean(plane == 65535))
    assert (table["power_log_log_slope"].between(-2.5, -1.3)).all()          # fluorescence, in focus
    assert table["nan_fraction"].eq(0).all() and table["cell_count"].isna().all()
    # a float copy gives the same numbers through the general path
    as_float = site_quality(image.astype(np.float32), channels=channels)
    for column in ("q01", "q50", "q99", "mean", "power_log_log_slope", "percent_maximal"):
        assert as_float[column].to_numpy() == pytest.approx(table[column].to_numpy(), rel=1e-6)


def test_blur_lowers_the_slope_and_saturation_raises_percent_maximal(scportrait_site):
    image, channels = scportrait_site
    sharp = site_quality(image, channels=channels)
    blurred = site_quality(ndimage.gaussian_filter(image, (0, 2, 2)), channels=channels)
    assert (blurred["power_log_log_slope"] < sharp["power_log_log_slope"] - 0.4).all()
    bright = np.minimum(image.astype(np.float64) * 6, 65535).astype(np.uint16)
    saturated = site_quality(bright, channels=channels)
    assert saturated.loc[1, "percent_maximal"] > 1 and saturated.loc[1, "percent_saturated"] > 1
    assert (sharp["percent_maximal"] < 0.01).all()


def test_bad_planes_give_numbers_not_errors():
    constant = np.full((1, 64, 64), 700, np.uint16)
    row = site_quality(constant, channels=["DAPI"]).iloc[0]
    assert np.isnan(row["power_log_log_slope"]) and row["focus_score"] == 0
    assert row["percent_maximal"] == 100 and row["q01"] == row["q99"] == 700

    with_nan = np.random.default_rng(0).normal(100, 10, (1, 64, 64)).astype(np.float32)
    with_nan[0, :16] = np.nan
    row = site_quality(with_nan, channels=["DAPI"]).iloc[0]
    assert row["nan_fraction"] == 0.25 and np.isfinite(row["power_log_log_slope"])
    assert np.isfinite(row[["q01", "q99", "mean", "std", "focus_score"]].astype(float)).all()

    all_nan = np.full((1, 32, 32), np.nan, np.float32)
    row = site_quality(all_nan, channels=["DAPI"]).iloc[0]
    assert row["nan_fraction"] == 1 and np.isnan(row["q50"])

    with pytest.raises(ValueError, match="2 channel\\(s\\) but 1 name"):
        site_quality(np.zeros((2, 8, 8)), channels=["DAPI"])
    with pytest.raises(ValueError, match=r"\(C, Y, X\)"):
        site_quality(np.zeros((8, 8)), channels=["DAPI"])


def test_nf1_site(shared_data):
    plate = open_plate(shared_data / "nf1_cellpainting" / "Plate_2_images")
    image = plate.read_site(next(plate.iter_sites()))
    table = site_quality(image, channels=plate.channels)
    assert list(table["channel"]) == ["DAPI", "GFP", "RFP"]
    assert table["power_log_log_slope"].between(-2.5, -1.3).all()
    # 8-bit data stretched to 16 bits: a few pixels sit at 65535, far below the saturation limit
    assert (table["percent_saturated"] < 0.1).all() and (table["percent_saturated"] > 0).any()
