"""Nuclei / cell segmentation: synthetic discs, then real data with ground truth."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import tifffile

from napari_hcs.segmentation.segment import (
    SegmentationParams,
    average_precision,
    estimate_diameter,
    expand_nuclei,
    foreground_iou,
    instance_f1,
    match_instances,
    segment_cells,
    segment_nuclei,
    segment_site,
)


# -- synthetic images ----------------------------------------------------------
def discs(shape, centres, radius, *, value=200.0, background=10.0, noise=3.0, seed=0):
    """Float image of bright discs on a noisy background, and their true labels."""
    rows, cols = np.indices(shape)
    image = np.full(shape, background, dtype=np.float64)
    truth = np.zeros(shape, dtype=np.int32)
    for label, (r, c) in enumerate(centres, start=1):
        inside = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
        image[inside] = value
        truth[inside & (truth == 0)] = label
    from scipy import ndimage as ndi

    image = ndi.gaussian_filter(image, 1.0)
    image += np.random.default_rng(seed).normal(0, noise, shape)
    return image, truth


GRID = [(r, c) for r in (30, 90, 150) for c in (30, 90, 150)]


def test_separate_discs_found_with_estimated_diameter():
    image, truth = discs((180, 180), GRID, 12)
    labels = segment_nuclei(image)
    assert labels.dtype == np.int32
    assert labels.max() == 9
    assert instance_f1(truth, labels, 0.7) == 1.0
    # Calibrated on mildly elliptic nuclei, so perfect discs come out up to 18 % larger.
    assert 22 <= estimate_diameter(image) <= 29


def test_touching_pairs_are_split():
    centres = [(40, 30), (40, 52), (110, 40), (130, 58)]
    image, truth = discs((160, 100), centres, 12)
    labels = segment_nuclei(image, diameter=24)
    assert labels.max() == 4
    assert instance_f1(truth, labels, 0.5) == 1.0


def test_touching_pair_kept_whole_without_split():
    image, _ = discs((80, 100), [(40, 35), (40, 57)], 12)
    assert segment_nuclei(image, diameter=24, split="none").max() == 1
    assert segment_nuclei(image, diameter=24, split="intensity").max() >= 1


def test_border_nuclei_excluded_on_request():
    image, _ = discs((100, 100), [(50, 50), (50, 4), (96, 70)], 10)
    assert segment_nuclei(image, diameter=20).max() == 3
    kept = segment_nuclei(image, diameter=20, exclude_border=True)
    assert kept.max() == 1
    assert kept[50, 50] == 1


def test_empty_image_warns_and_gives_zeros():
    for image in (np.zeros((64, 64), np.uint16), np.full((64, 64), 7.5)):
        with pytest.warns(UserWarning, match="empty"):
            labels = segment_nuclei(image)
        assert labels.shape == (64, 64) and labels.dtype == np.int32 and not labels.any()


def test_nan_pixels_are_background_and_warn():
    image, truth = discs((120, 120), [(30, 30), (30, 90), (90, 60)], 12)
    image[0:5, :] = np.nan
    image[60, 60] = np.inf
    with pytest.warns(UserWarning, match="NaN"):
        labels = segment_nuclei(image)
    assert labels.max() == 3
    assert not labels[0:5].any()


def test_saturated_nuclei_and_integer_types():
    image, truth = discs((180, 180), GRID, 12, value=90000.0, background=2000.0, noise=300.0)
    saturated = np.clip(image, 0, 65535).astype(np.uint16)
    assert (saturated == 65535).mean() > 0.05
    counts = {
        "uint16": segment_nuclei(saturated).max(),
        "uint8": segment_nuclei((saturated // 257).astype(np.uint8)).max(),
        "float32": segment_nuclei(saturated.astype(np.float32) / 65535).max(),
    }
    assert counts == {"uint16": 9, "uint8": 9, "float32": 9}
    with pytest.warns(UserWarning, match="empty"):
        assert segment_nuclei(np.full((50, 50), 65535, np.uint16)).max() == 0


def test_artefacts_removed():
    image, _ = discs((200, 200), [(40, 40), (40, 120), (120, 40)], 10)
    image[170:174, 10:110] = 200.0  # a fibre: 4 px wide, 100 px long
    labels = segment_nuclei(image, diameter=20)
    assert labels.max() == 3
    assert not labels[172, 60]
    image[110:200, 120:200] = 200.0  # a large blob, far above 10 nucleus areas
    assert segment_nuclei(image, diameter=20).max() == 3


def test_bright_debris_removed_only_on_request():
    image, _ = discs((120, 240), [(40, 40), (40, 100), (40, 160), (90, 70), (90, 130)], 10)
    image[85:95, 195:205] = 1000.0  # five times brighter than the nuclei
    assert segment_nuclei(image, diameter=20).max() == 6
    assert segment_nuclei(image, diameter=20, max_intensity_quantile=0.5).max() == 5


def test_threshold_options():
    image, _ = discs((180, 180), GRID, 12)
    for method in ("otsu", "li", "triangle"):
        assert segment_nuclei(image, threshold=method).max() == 9
    assert segment_nuclei(image, threshold="manual", threshold_value=100).max() == 9
    with pytest.raises(ValueError, match="threshold_value"):
        segment_nuclei(image, threshold="manual")
    with pytest.raises(ValueError, match="otsu"):
        segment_nuclei(image, threshold="median")
    with pytest.raises(ValueError, match="2D"):
        segment_nuclei(np.zeros((2, 10, 10)))


# -- cells ------------------------------------------------------------------------
def _cells_case():
    nuclei_image, nuclei_truth = discs((120, 200), [(60, 50), (60, 150)], 10)
    cell_image, _ = discs((120, 200), [(60, 50), (60, 150)], 30, value=80.0)
    nuclei = segment_nuclei(nuclei_image, diameter=20)
    return nuclei, cell_image


def test_cells_grow_from_their_nuclei():
    nuclei, cell_image = _cells_case()
    cells = segment_cells(cell_image, nuclei)
    assert cells.dtype == np.int32
    assert set(np.unique(cells)) == {0, 1, 2}
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    areas = np.bincount(cells.ravel())[1:]
    assert np.all(areas > 0.8 * np.pi * 30**2) and np.all(areas < 1.2 * np.pi * 30**2)
    limited = segment_cells(cell_image, nuclei, max_distance=5)
    assert np.bincount(limited.ravel())[1:].max() < np.pi * 16**2


def test_cells_keep_nuclei_where_channel_is_dark():
    nuclei, cell_image = _cells_case()
    dark = cell_image.copy()
    dark[:, 100:] = 10.0
    cells = segment_cells(dark, nuclei)
    assert np.all(cells[nuclei == 2] == 2)
    assert np.array_equal(segment_cells(np.zeros_like(dark), nuclei), nuclei)


def test_expand_nuclei_without_overlap():
    nuclei = np.zeros((40, 40), np.int32)
    nuclei[10, 10] = 3
    nuclei[10, 16] = 5
    cells = expand_nuclei(nuclei, 4)
    assert set(np.unique(cells)) == {0, 3, 5}
    assert cells[10, 12] == 3 and cells[10, 14] == 5
    assert cells[10, 20] == 5 and cells[10, 21] == 0
    with pytest.raises(ValueError, match=">= 0"):
        expand_nuclei(nuclei, -1)


# -- sites and settings ----------------------------------------------------------
def test_params_round_trip_and_errors():
    params = SegmentationParams(nuclei_channel="DAPI", cell_channel="actin", diameter=25.0)
    assert SegmentationParams.from_dict(params.to_dict()) == params
    with pytest.raises(ValueError, match="known settings"):
        SegmentationParams.from_dict({"nuclei_channel": "DAPI", "colour": "red"})
    with pytest.raises(ValueError, match="otsu"):
        SegmentationParams(nuclei_channel="DAPI", threshold="mean")
    with pytest.raises(ValueError, match="classical"):
        SegmentationParams(nuclei_channel="DAPI", backend="magic")


def test_segment_site_picks_channels_by_name():
    nuclei_image, _ = discs((120, 200), [(60, 50), (60, 150)], 10)
    cell_image, _ = discs((120, 200), [(60, 50), (60, 150)], 30, value=80.0)
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


def test_cellpose_backend_needs_cellpose(monkeypatch):
    monkeypatch.setitem(sys.modules, "cellpose", None)
    params = SegmentationParams(nuclei_channel="DNA", backend="cellpose", cellpose_model="w.pt")
    with pytest.raises(RuntimeError, match="cellpose is not installed; pip install cellpose"):
        segment_site(np.zeros((1, 32, 32)), params, ["DNA"])


def test_cellpose_backend_uses_local_model(monkeypatch):
    nuclei_image, truth = discs((120, 200), [(60, 50), (60, 150)], 10)
    calls = []

    class FakeModel:
        def __init__(self, gpu, pretrained_model):
            calls.append(pretrained_model)

        def eval(self, image, diameter=None, channels=None):
            if image.ndim == 2:
                return truth, None, None
            cells = expand_nuclei(truth, 20)
            return np.where(cells > 0, 10 - cells, 0), None, None  # other ids than the nuclei

    fake = types.ModuleType("cellpose")
    fake.models = types.SimpleNamespace(CellposeModel=FakeModel)
    monkeypatch.setitem(sys.modules, "cellpose", fake)
    image = np.stack([nuclei_image, nuclei_image])
    params = SegmentationParams(
        nuclei_channel="DNA", cell_channel="actin", backend="cellpose", cellpose_model="w.pt"
    )
    nuclei, cells = segment_site(image, params, ["DNA", "actin"])
    assert calls == ["w.pt"]
    assert nuclei.max() == 2
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    assert set(np.unique(cells)) == {0, 1, 2}
    with pytest.raises(ValueError, match="model weights"):
        segment_site(image, SegmentationParams(nuclei_channel="DNA", backend="cellpose"), ["DNA", "actin"])


# -- metrics ------------------------------------------------------------------------
def test_matching_metrics():
    truth = np.zeros((20, 40), np.int32)
    truth[2:10, 2:10] = 1
    truth[2:10, 20:28] = 2
    truth[12:18, 30:36] = 3
    pred = np.zeros_like(truth)
    pred[2:10, 3:11] = 7  # IoU 56/72 with 1
    pred[2:10, 20:24] = 8  # IoU 0.5 with 2: not above 0.5
    pred[15:19, 2:6] = 9  # nothing there
    assert match_instances(truth, pred, 0.5) == (1, 2, 2)
    assert match_instances(truth, pred, 0.45) == (2, 1, 1)
    assert instance_f1(truth, truth) == 1.0
    assert average_precision(truth, truth) == 1.0
    assert average_precision(truth, pred) == pytest.approx(
        np.mean([1 / 5 if t < 56 / 72 else 0.0 for t in np.arange(0.5, 1.0, 0.05)])
    )
    assert instance_f1(np.zeros((5, 5), int), np.zeros((5, 5), int)) == 1.0
    assert foreground_iou(truth, pred) == pytest.approx(
        np.logical_and(truth, pred).sum() / np.logical_or(truth, pred).sum()
    )
    with pytest.raises(ValueError, match="shape"):
        match_instances(truth, pred[:10])


# -- real data ----------------------------------------------------------------------
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


# -- command line ---------------------------------------------------------------------
def test_segment_image_command(tmp_path, capsys):
    from napari_hcs.cli import main

    nuclei_image, _ = discs((120, 200), [(60, 50), (60, 150)], 10, value=3000.0, background=200.0)
    cell_image, _ = discs((120, 200), [(60, 50), (60, 150)], 30, value=1000.0, background=200.0)
    multi = tmp_path / "site.tif"
    tifffile.imwrite(multi, np.stack([cell_image, nuclei_image], axis=-1).astype(np.uint16))
    out = tmp_path / "labels" / "nuclei.tif"
    assert main(["segment-image", str(multi), "--out", str(out), "--channel", "1", "--cells-channel", "0"]) == 0
    printed = capsys.readouterr().out
    assert "2 nuclei" in printed and "2 cells" in printed
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].compression != 1  # compressed
        labels = tif.asarray()
    assert labels.dtype == np.uint16 and labels.max() == 2
    cells = tifffile.imread(tmp_path / "labels" / "nuclei_cells.tif")
    assert np.bincount(cells.ravel())[1:].min() > np.bincount(labels.ravel())[1:].max()


def test_segment_image_command_errors(tmp_path, capsys):
    from napari_hcs.cli import main

    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff")
    assert main(["segment-image", str(bad), "--out", str(tmp_path / "x.tif")]) == 1
    assert "broken.tif" in capsys.readouterr().err
    assert main(["segment-image", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "x.tif")]) == 1
    assert "missing.tif" in capsys.readouterr().err
    grey = tmp_path / "grey.tif"
    tifffile.imwrite(grey, np.zeros((20, 20), np.uint8))
    assert main(["segment-image", str(grey), "--out", str(tmp_path / "x.tif"), "--channel", "2"]) == 1
    assert "1 channel" in capsys.readouterr().err


def test_segment_image_on_real_image(shared_data, tmp_path, capsys):
    from napari_hcs.cli import main

    out = tmp_path / "stardist_labels.tif"
    assert main(["segment-image", str(shared_data / "stardist_nuclei" / "img2d.tif"), "--out", str(out)]) == 0
    labels = tifffile.imread(out)
    assert f"{labels.max()} nuclei" in capsys.readouterr().out
    assert 100 <= labels.max() <= 150


def test_bright_hair_does_not_hide_dim_nuclei():
    centres = [(r, c) for r in (40, 110, 180, 250) for c in (40, 110, 180)]
    image, truth = discs((300, 300), centres, 12)
    image[:, 240:262] = 3000.0  # a hair 22 px wide, 15 times brighter than the nuclei
    labels = segment_nuclei(image)
    assert labels.max() == 12
    assert instance_f1(truth, labels, 0.5) == 1.0
