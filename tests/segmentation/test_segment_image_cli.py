"""``napari-hcs segment-image``: nuclei and cell labels of one 2D image into label TIFFs."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_hcs.cli import main

from segmentation_images import discs


def test_segment_image_command(tmp_path, capsys):
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
    out = tmp_path / "stardist_labels.tif"
    assert main(["segment-image", str(shared_data / "stardist_nuclei" / "img2d.tif"), "--out", str(out)]) == 0
    labels = tifffile.imread(out)
    assert f"{labels.max()} nuclei" in capsys.readouterr().out
    assert 100 <= labels.max() <= 150
