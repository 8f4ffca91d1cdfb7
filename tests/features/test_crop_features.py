"""crop_features and find_crop_nuclei: the crop entry point, its NaN policy and cancel, real crops."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from feature_images import synthetic_crops

from napari_hcs.cancel import Cancelled
from napari_hcs.features import crop_features, find_crop_nuclei, parse_feature_name


def test_crop_nuclei_are_the_components_at_the_centre():
    crops = synthetic_crops()
    masks = find_crop_nuclei(crops[:, 0])
    assert masks.shape == crops[:, 0].shape
    for k in range(len(crops) - 1):
        assert masks[k, 20, 20] and not masks[k, 5, 5]
        # Otsu on the smoothed stain sits a little above the half-maximum of the edge.
        assert masks[k].sum() == pytest.approx(np.pi * (6 + k % 3) ** 2, rel=0.25)
    assert not masks[-1].any()


def test_crop_nuclei_have_their_holes_filled():
    stack = np.zeros((2, 30, 30), np.float32)
    yy, xx = np.indices((30, 30))
    ring = (np.hypot(yy - 15, xx - 15) <= 9) & (np.hypot(yy - 15, xx - 15) > 4)
    stack[:, ring] = 100.0
    masks = find_crop_nuclei(stack, smoothing=0)
    assert masks[:, 15, 15].all()  # the dark centre is a hole of the nucleus, in every crop
    np.testing.assert_array_equal(masks[0], np.hypot(yy - 15, xx - 15) <= 9)


def test_crop_features_measure_nucleus_and_whole_crop():
    crops = synthetic_crops()
    seen = []
    table = crop_features(
        crops, channel_names=["DNA", "other"], batch_size=4, progress=lambda done, total: seen.append(done)
    )
    assert seen == [4, 6] and len(table) == len(crops)
    assert not table.isna().any().any()
    assert all(parse_feature_name(c).compartment in ("nucleus", "crop") for c in table)
    assert table.loc[0, "feat_nucleus_mean_DNA"] == pytest.approx(100)
    assert table.loc[0, "feat_crop_mean_other"] == pytest.approx(10)
    assert table.loc[0, "feat_nucleus_solidity"] == pytest.approx(1.0)
    empty = table.iloc[-1]
    assert (empty[[c for c in table if c.startswith("feat_nucleus_")]] == 0).all()
    assert empty["feat_crop_glcm_homogeneity_s1_DNA"] == 1.0  # a flat crop is perfectly homogeneous
    by_name = crop_features(crops, channel_names=["DNA", "other"], nucleus_channel="DNA")
    pd.testing.assert_frame_equal(by_name, table)
    with pytest.raises(ValueError, match="not one of"):
        crop_features(crops, channel_names=["DNA", "other"], nucleus_channel="Hoechst")
    with pytest.raises(ValueError, match="out of range"):
        crop_features(crops, channel_names=["DNA", "other"], nucleus_channel=2)
    assert len(crop_features(crops[:0], channel_names=["DNA", "other"])) == 0


def test_cancel_says_after_how_many_crops():
    crops = synthetic_crops()
    with pytest.raises(Cancelled, match="cancelled after 0 of 6 crops"):
        crop_features(crops, channel_names=["DNA", "other"], cancel=lambda: True)
    stop = threading.Event()

    def stop_after_first_batch(done, total):
        stop.set()

    with pytest.raises(InterruptedError, match="cancelled after 4 of 6 crops"):
        crop_features(
            crops, channel_names=["DNA", "other"], batch_size=4, progress=stop_after_first_batch, cancel=stop
        )


def test_non_finite_crops_are_refused_naming_the_crops():
    crops = synthetic_crops()
    crops[2, 1, 3, 3] = np.nan
    crops[4, 0, 0, :2] = np.inf
    with pytest.raises(ValueError, match=r"Crop\(s\) 2, 4 of 6 hold 3 NaN or infinite value\(s\)"):
        crop_features(crops, channel_names=["DNA", "other"])
    with pytest.raises(ValueError, match="real numbers"):
        crop_features(crops.astype(complex), channel_names=["DNA", "other"])
    with pytest.raises(ValueError, match="2 channel"):
        crop_features(crops, channel_names=["DNA"])


def test_crop_features_on_real_crops(shared_data):
    crops = np.load(shared_data / "bbbc021_crops" / "bbbc021_crops.npz")["crops"][::15]
    table = crop_features(crops, channel_names=["DNA", "tubulin", "actin"])
    assert len(table) == len(crops) and not table.isna().any().any()
    assert (table.feat_nucleus_area > 100).mean() > 0.95  # a nucleus is found in (nearly) every crop
    assert (table.feat_nucleus_mean_DNA > table.feat_crop_mean_DNA).all()
