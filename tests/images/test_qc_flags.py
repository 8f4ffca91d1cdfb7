"""Quality control flags: each rule with its reason, the robust rules' plate, and real quarters of a site."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from napari_hcs.images.qc_flags import QcThresholds, flag_sites, site_flags
from napari_hcs.images.quality import site_quality
from napari_hcs.io import open_plate
from napari_hcs.vocabulary import QC_FLAGS


def _table(n: int = 8, **columns) -> pd.DataFrame:
    """``n`` clean DAPI rows of plate P1 with a little spread; ``columns`` overrides."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({
        "plate": "P1", "site_key": [f"B02_f{i:03d}_t000" for i in range(n)], "channel": "DAPI",
        "power_log_log_slope": -1.8 + rng.normal(0, 0.03, n), "focus_score": 0.1 + rng.normal(0, 0.01, n),
        "percent_maximal": 0.0001, "percent_saturated": 0.0, "q01": 100.0, "q50": 150.0,
        "q99": 5000.0 * np.exp(rng.normal(0, 0.2, n)), "nan_fraction": 0.0, "error": "",
    })
    for name, values in columns.items():
        table[name] = values
    return table


def _with(table: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    table = table.copy()
    for name, value in values.items():
        table.loc[row, name] = value
    return table


def test_clean_sites_are_not_flagged():
    flagged = flag_sites(_table())
    assert flagged["flags"].eq("").all() and flagged["reasons"].eq("").all()
    assert all(not flags for flags in site_flags(flagged).values())


@pytest.mark.parametrize(("values", "flag", "words"), [
    ({"power_log_log_slope": -2.4}, "focus", "PowerLogLogSlope -2.400 below the plate's"),
    ({"percent_maximal": 3.0}, "saturation", "3 % of the pixels saturated (limit 1 %)"),
    ({"percent_saturated": 2.0}, "saturation", "2 % of the pixels saturated"),
    ({"q01": 150.0, "q99": 150.5}, "blank", "near-constant image"),
    ({"q99": 500.0}, "dim", "below the plate's"),
    ({"q99": 60000.0}, "debris", "above the plate's"),
    ({"nan_fraction": 0.01}, "nan", "1 % of the pixels are NaN"),
    ({"error": "PlateError: Could not read TIFF x.tif", "power_log_log_slope": np.nan},
     "missing_channel", "could not be read: PlateError: Could not read TIFF x.tif"),
])
def test_each_rule_flags_with_its_reason(values, flag, words):
    flagged = flag_sites(_with(_table(), 3, **values))
    assert flagged.loc[3, "flags"] == flag
    assert flagged.loc[3, "reasons"].startswith(f"{flag}: ") and words in flagged.loc[3, "reasons"]
    assert flagged.drop(index=3)["flags"].eq("").all()
    assert site_flags(flagged)["B02_f003_t000"] == [flag]


def test_a_constant_site_is_blank_only_and_leaves_the_plate_statistics_alone():
    table = _with(_table(), 0, q01=500.0, q50=500.0, q99=500.0, percent_maximal=100.0, power_log_log_slope=np.nan)
    flagged = flag_sites(table)
    assert flagged["flags"].tolist() == ["blank"] + [""] * 7


def test_saturation_suppresses_debris_and_flags_keep_the_vocabulary_order():
    flagged = flag_sites(_with(_table(), 2, percent_saturated=4.0, q99=65535.0, nan_fraction=0.1,
                               power_log_log_slope=-2.6))
    assert flagged.loc[2, "flags"] == "focus;saturation;nan"
    assert site_flags(flagged)["B02_f002_t000"] == [f for f in QC_FLAGS if f in ("focus", "saturation", "nan")]


def test_robust_rules_need_enough_sites_the_absolute_ones_do_not():
    two = _with(_with(_table(2), 1, power_log_log_slope=-3.0), 0, percent_maximal=5.0)
    flagged = flag_sites(two)
    assert flagged["flags"].tolist() == ["saturation", ""]       # no plate to compare the slope against
    three = _with(_table(3), 2, power_log_log_slope=-3.0)
    assert flag_sites(three)["flags"].tolist() == ["", "", "focus"]
    assert flag_sites(three, QcThresholds(min_sites=4))["flags"].tolist() == ["", "", ""]


def test_near_identical_sites_need_the_minimum_drop():
    table = _table(power_log_log_slope=[-1.8] * 7 + [-1.9])     # MAD 0: z is infinite, the drop is 0.1
    assert flag_sites(table)["flags"].eq("").all()
    assert flag_sites(table, QcThresholds(focus_min_drop=0.05)).loc[7, "flags"] == "focus"


def test_plates_and_channels_are_judged_apart():
    first = _table()
    second = _table().assign(plate="P2", power_log_log_slope=lambda t: t["power_log_log_slope"] - 1.0)
    other_channel = _table().assign(channel="GFP", power_log_log_slope=-3.0)
    flagged = flag_sites(pd.concat([first, second, other_channel], ignore_index=True))
    assert flagged["flags"].eq("").all()


def test_focus_score_rule_is_optional():
    table = _with(_table(), 4, focus_score=0.01)
    assert flag_sites(table)["flags"].eq("").all()
    flagged = flag_sites(table, QcThresholds(focus_score_factor=4.0))
    assert flagged.loc[4, "flags"] == "focus" and "FocusScore 0.01 below" in flagged.loc[4, "reasons"]


def test_missing_columns_are_named():
    with pytest.raises(KeyError, match="'site_key'"):
        flag_sites(pd.DataFrame({"channel": ["DAPI"]}))
    assert QcThresholds().to_dict()["saturation_percent"] == 1.0


def test_real_quarters_clean_and_their_blurred_and_saturated_copies_flagged(shared_data):
    plate = open_plate(shared_data / "nf1_cellpainting" / "Plate_2_images")
    image = plate.read_site(next(plate.iter_sites()))
    h, w = image.shape[1] // 2, image.shape[2] // 2
    quarters = {f"D06_f{i * 2 + j:03d}_t000": image[:, i * h:(i + 1) * h, j * w:(j + 1) * w]
                for i in (0, 1) for j in (0, 1)}
    first = quarters["D06_f000_t000"]
    sites = {**quarters, "D07_f000_t000": ndimage.gaussian_filter(first, (0, 2, 2)),
             "D07_f001_t000": np.minimum(first.astype(np.float64) * 3, 65535).astype(np.uint16)}
    table = pd.concat([site_quality(pixels, channels=plate.channels).assign(plate="nf1", site_key=key)
                       for key, pixels in sites.items()], ignore_index=True)
    flags = site_flags(flag_sites(table))
    assert {key: f for key, f in flags.items() if f} == {"D07_f000_t000": ["focus"],
                                                        "D07_f001_t000": ["saturation"]}
