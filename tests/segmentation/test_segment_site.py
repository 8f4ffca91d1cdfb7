"""Segmentation settings of a site and :func:`segment_site`."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from napari_hcs.segmentation import NucleiOptions, SegmentationParams, segment_site
from napari_hcs.vocabulary import SEGMENTATION_BACKENDS, SPLIT_METHODS, THRESHOLD_METHODS

from segmentation_images import two_cells


def test_params_round_trip_and_errors():
    params = SegmentationParams(nuclei_channel="DAPI", cell_channel="actin", diameter=25.0)
    assert SegmentationParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match="known settings"):
        SegmentationParams.from_dict({"nuclei_channel": "DAPI", "colour": "red"})
    with pytest.raises(ValueError, match="otsu"):
        SegmentationParams(nuclei_channel="DAPI", threshold="mean")
    with pytest.raises(ValueError, match="classical"):
        SegmentationParams(nuclei_channel="DAPI", backend="magic")
    with pytest.raises(ValueError, match="positive"):
        SegmentationParams(nuclei_channel="DAPI", diameter=0)


def test_params_accept_the_vocabulary():
    for method in THRESHOLD_METHODS:
        SegmentationParams(nuclei_channel="DAPI", threshold=method, cell_threshold=method)
    for split in SPLIT_METHODS:
        SegmentationParams(nuclei_channel="DAPI", split=split)
    for backend in SEGMENTATION_BACKENDS:
        SegmentationParams(nuclei_channel="DAPI", backend=backend)


def test_params_hold_the_nuclei_options():
    params = SegmentationParams(nuclei_channel="DAPI", diameter=30.0, split="none", local_contrast=0.2)
    options = params.nuclei_options()
    assert (options.diameter, options.split, options.local_contrast) == (30.0, "none", 0.2)
    assert {f.name for f in fields(NucleiOptions)} <= {f.name for f in fields(SegmentationParams)}


def test_segment_site_picks_channels_by_name():
    nuclei_image, cell_image = two_cells()
    image = np.stack([cell_image, nuclei_image])
    nuclei, cells = segment_site(
        image, SegmentationParams(nuclei_channel="DNA", cell_channel="actin"), ["actin", "DNA"]
    )
    assert nuclei.max() == 2 and np.bincount(cells.ravel())[1:].min() > 2000
    nuclei, grown = segment_site(image, SegmentationParams(nuclei_channel="DNA"), ["actin", "DNA"])
    assert np.array_equal(np.unique(grown), [0, 1, 2])
    assert np.all(np.bincount(grown.ravel())[1:] > np.bincount(nuclei.ravel())[1:])
    with pytest.raises(ValueError, match="channels are: actin, DNA"):
        segment_site(image, SegmentationParams(nuclei_channel="DAPI"), ["actin", "DNA"])
    with pytest.raises(ValueError, match="channels are: actin, DNA"):
        segment_site(
            image, SegmentationParams(nuclei_channel="DNA", cell_channel="tubulin"), ["actin", "DNA"]
        )
    with pytest.raises(ValueError, match=r"\(C, Y, X\) image with 3 channel"):
        segment_site(image, SegmentationParams(nuclei_channel="DNA"), ["actin", "DNA", "GFP"])


def test_segment_site_grows_by_the_given_expansion():
    nuclei_image, cell_image = two_cells()
    image = np.stack([cell_image, nuclei_image])
    params = SegmentationParams(nuclei_channel="DNA", diameter=20, cell_expansion=0)
    nuclei, cells = segment_site(image, params, ["actin", "DNA"])
    assert np.array_equal(nuclei, cells)
