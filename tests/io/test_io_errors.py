"""Bad input: every case gives a clear error naming the file or well, or opens the rest."""

import numpy as np
import pytest
import tifffile

from napari_hcs.cli import main
from napari_hcs.io import open_plate, read_layout_table
from napari_hcs.plate import PlateError


def _write_site(folder, well, site, channels, shape=(32, 32), value=100):
    for index, channel in enumerate(channels, start=1):
        data = np.full(shape, value + index, np.uint16)
        tifffile.imwrite(folder / f"screen_{well}_s{site}_w{channel}.tif", data)


@pytest.fixture
def imagexpress(tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    for well in ("A01", "A02", "B01"):
        for site in (1, 2):
            _write_site(folder, well, site, ["1", "2"])
    return folder


def test_imagexpress_folder_opens(imagexpress):
    plate = open_plate(imagexpress, pattern="imagexpress")
    assert plate.wells == ["A01", "A02", "B01"] and plate.channels == ["1", "2"]
    assert [s.field for s in plate.sites["A01"]] == [1, 2]
    assert plate.read_site(plate.site("A02", 1))[1, 0, 0] == 102


def test_folder_with_no_matching_files(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    tifffile.imwrite(tmp_path / "random_name.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(PlateError, match=r"No file in .* matches .*random_name\.tif"):
        open_plate(tmp_path)
    with pytest.raises(PlateError, match="matches pattern 'operetta'"):
        open_plate(tmp_path, pattern="operetta")


def test_bad_user_pattern(tmp_path):
    with pytest.raises(PlateError, match="needs a named group 'well'"):
        open_plate(tmp_path, pattern=r"(?P<channel>\d+)\.tif")
    with pytest.raises(PlateError, match="valid regular expression"):
        open_plate(tmp_path, pattern=r"(?P<well>[")


def test_corrupt_tiff_skips_its_site_and_names_the_file(imagexpress):
    bad = imagexpress / "screen_A02_s2_w1.tif"
    bad.write_bytes(b"II*\x00garbage that is not a tiff")
    plate = open_plate(imagexpress, pattern="imagexpress")
    assert [s.field for s in plate.sites["A02"]] == [1]
    assert any("screen_A02_s2_w1.tif" in str(item) for item in plate.skipped)


def test_sites_whose_channels_differ_in_shape(imagexpress):
    tifffile.imwrite(imagexpress / "screen_B01_s1_w2.tif", np.zeros((16, 16), np.uint16))
    plate = open_plate(imagexpress, pattern="imagexpress")
    assert [s.field for s in plate.sites["B01"]] == [2]
    (item,) = plate.skipped
    assert "B01 f1" in item.where and "differ in shape" in item.reason


def test_missing_channel_in_one_site(imagexpress):
    (imagexpress / "screen_A01_s2_w2.tif").unlink()
    plate = open_plate(imagexpress, pattern="imagexpress")
    assert [s.field for s in plate.sites["A01"]] == [1]
    assert "missing channel(s) 2" in str(plate.skipped[0])


def test_unknown_well_name_in_file_names(tmp_path):
    for well in ("A01", "Row_X"):
        tifffile.imwrite(tmp_path / f"{well}-DAPI.tif", np.zeros((8, 8), np.uint8))
    pattern = r"(?P<well>[^-]+)-(?P<channel>\w+)\.tif"
    plate = open_plate(tmp_path, pattern=pattern)
    assert plate.wells == ["A01"]
    assert "Row_X-DAPI.tif" in plate.skipped[0].where
    assert "Unknown well name 'Row_X'" in plate.skipped[0].reason


def test_layout_naming_wells_that_do_not_exist(imagexpress, tmp_path):
    table = tmp_path / "layout.csv"
    table.write_text("well,class\nA01,control\nH12,treated\n")
    with pytest.raises(PlateError, match="H12"):
        open_plate(imagexpress, pattern="imagexpress", layout=table)
    table.write_text("well,class\nZZ99x,control\n")
    with pytest.raises(PlateError, match=r"line 2: Unknown well name 'ZZ99x'"):
        read_layout_table(table)
    table.write_text("plate,class\np1,control\n")
    with pytest.raises(PlateError, match="no well column"):
        read_layout_table(table)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "absent")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_unreadable_single_tiff(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(PlateError, match="broken.tif"):
        open_plate(bad)
