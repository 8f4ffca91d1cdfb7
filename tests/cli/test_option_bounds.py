"""Bad numbers are refused while the command line is read, and huge sites when a plate opens."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_hcs.cli import main
from napari_hcs.io import open_plate
from napari_hcs.plate import MAX_SITE_PIXELS, PlateError
from napari_hcs.samples import sample_path


@pytest.mark.parametrize("option, value", [("--workers", "0"), ("--crop-size", "-3"), ("--workers", "1.5")])
def test_segment_refuses_bad_numbers_before_any_work(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as stopped:
        main(["segment", str(sample_path("scportrait_mini")), "--project", str(tmp_path / "p"),
              "--nuclei-channel", "DAPI", option, value])
    assert stopped.value.code == 2
    assert f"{option}: expected a whole number of at least 1, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("option", ["--epochs", "--batch-size"])
def test_train_refuses_bad_numbers(tmp_path, capsys, option):
    with pytest.raises(SystemExit):
        main(["train", "--project", str(tmp_path), "--label-column", "class", option, "0"])
    assert "expected a whole number of at least 1" in capsys.readouterr().err


def test_train_refuses_negative_self_training_rounds(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--project", str(tmp_path), "--label-column", "class", "--self-training", "-1"])
    assert "--self-training: expected a whole number of at least 0, got '-1'" in capsys.readouterr().err


def test_a_site_larger_than_the_limit_is_refused_by_name(tmp_path):
    side = int(np.sqrt(MAX_SITE_PIXELS)) + 1
    path = tmp_path / "huge.tif"
    with tifffile.TiffWriter(path) as tif:  # only the header says how big: no pixels are held
        tif.write(shape=(side, side), dtype=np.uint8)
    with pytest.raises(PlateError, match=rf"huge\.tif: sites of {side} x {side} pixels are larger"):
        open_plate(path)
