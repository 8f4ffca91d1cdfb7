"""Nuclei on real images with ground truth (stardist demo, NF1, DSB 2018, scPortrait)."""

from __future__ import annotations

import warnings

import numpy as np
import tifffile

from napari_hcs.segmentation import foreground_iou, instance_f1, match_instances, segment_nuclei

DSB_SAMPLE = ["0d2bf916cc8d", "29dd28df98ee", "3852c7e45bd8", "4c465a54e329", "a90cad45551d", "f487cc82271c"]


def test_stardist_nuclei_f1(shared_data):
    folder = shared_data / "stardist_nuclei"
    image = tifffile.imread(folder / "img2d.tif")
    truth = tifffile.imread(folder / "mask2d.tif")
    labels = segment_nuclei(image)
    assert instance_f1(truth, labels, 0.5) >= 0.85


def test_nf1_nuclei_match_cellprofiler(shared_data):
    folder = shared_data / "nf1_cellpainting"
    dapi = tifffile.imread(next((folder / "Plate_2_images").glob("*_DAPI_*.tif")))
    mask = tifffile.imread(next((folder / "Plate_2_masks").glob("*_MaskNuclei.tiff")))
    assert foreground_iou(mask, segment_nuclei(dapi)) >= 0.8


def test_dsb_sample(shared_data):
    folder = shared_data / "dsb2018_nuclei"
    totals = np.zeros(3)
    for key in DSB_SAMPLE:
        matches = sorted(folder.glob(f"{key}*_image.tif"))
        assert matches, f"{key} not in {folder}"
        image = tifffile.imread(matches[0])
        truth = tifffile.imread(str(matches[0]).replace("_image.tif", "_labels.tif"))
        totals += match_instances(truth, segment_nuclei(image), 0.5)
    tp, fp, fn = totals
    assert 2 * tp / (2 * tp + fp + fn) >= 0.8


def test_scportrait_site_count_plausible(scportrait_dir):
    path = (
        scportrait_dir / "input_images" / "Row02_Well02_r000_c000"
        / "Timepoint001_Row02_Well02_DAPI_zstack001_r000_c000.tif"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = segment_nuclei(tifffile.imread(path))
    assert 100 <= labels.max() <= 200
