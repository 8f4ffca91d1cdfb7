"""Feature column names: every column parses, and groups by kind, compartment and channel."""

from __future__ import annotations

import pytest
from feature_images import two_rectangles

from napari_hcs.features import feature_groups, measure_cells, parse_feature_name
from napari_hcs.features.naming import GLCM_FEATURES, INTENSITY_FEATURES, SER_FEATURES, SHAPE_FEATURES


def test_every_column_parses_and_groups():
    image, labels, _ = two_rectangles(4)
    channels = ["DAPI", "GFP_488"]  # an underscore inside a channel name
    table = measure_cells(image, labels, channel_names=channels)
    columns = [c for c in table if c != "label"]
    parsed = [parse_feature_name(c) for c in columns]
    per_compartment = (
        len(SHAPE_FEATURES) + len(channels) * (len(INTENSITY_FEATURES) + 2 * len(GLCM_FEATURES) + len(SER_FEATURES))
    )
    assert len(columns) == 2 * per_compartment + 3
    assert {p.channel for p in parsed} == {None, "DAPI", "GFP_488"}
    assert parse_feature_name("feat_cell_glcm_asm_s2_GFP_488").scale == 2
    by_kind = feature_groups(table.columns)
    assert set(by_kind) == {"shape", "intensity", "texture", "ser", "neighbourhood"}
    assert sum(len(v) for v in by_kind.values()) == len(columns)
    by_channel = feature_groups(list(table.columns) + ["crop_index", "emb_0"], by="channel")
    assert len(by_channel["GFP_488"]) == len(by_channel["DAPI"])
    with pytest.raises(ValueError, match="not a feature column"):
        parse_feature_name("feat_whatever")


def test_neighbourhood_names_and_bad_grouping():
    count = parse_feature_name("feat_neighbourhood_count")
    assert (count.kind, count.compartment, count.feature) == ("neighbourhood", "neighbourhood", "count")
    touching = parse_feature_name("feat_cell_touching_fraction")
    assert (touching.compartment, touching.feature) == ("cell", "touching_fraction")
    assert feature_groups(["feat_nucleus_area", "feat_crop_mean_DNA"], by="compartment") == {
        "nucleus": ["feat_nucleus_area"],
        "crop": ["feat_crop_mean_DNA"],
    }
    with pytest.raises(ValueError, match="Cannot group features by 'colour'"):
        feature_groups(["feat_nucleus_area"], by="colour")
