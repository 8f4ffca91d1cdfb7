"""A plate folder that holds a layout table offers it; a layout given explicitly wins."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from napari_hcs.cli import main
from napari_hcs.io import open_plate
from napari_hcs.samples import sample_path


def _plate_folder(tmp_path, wells=("A01", "A02")):
    folder = tmp_path / "plate"
    folder.mkdir()
    for well in wells:
        tifffile.imwrite(folder / f"P_{well}_s1_w1.tif", np.ones((8, 8), np.uint16))
    return folder


def test_the_folder_layout_table_is_attached(tmp_path):
    folder = _plate_folder(tmp_path)
    (folder / "Plate_Layout.csv").write_text("Well,compound\nA01,DMSO\nA02,taxol\n")
    plate = open_plate(folder)
    assert plate.well_annotations("A02") == {"compound": "taxol"}
    assert plate.summary()["layout_source"] == str(folder / "Plate_Layout.csv")
    assert not plate.skipped


def test_an_explicit_layout_wins(tmp_path):
    folder = _plate_folder(tmp_path)
    (folder / "layout.csv").write_text("well,compound\nA01,DMSO\n")
    other = tmp_path / "other.tsv"
    other.write_text("well\tdose\nA02\t3\n")
    plate = open_plate(folder, layout=other)
    assert plate.well_annotations("A01") == {} and plate.well_annotations("A02") == {"dose": 3}
    assert plate.layout_source == str(other)


def test_rows_of_wells_without_images_are_left_out_and_listed(tmp_path):
    folder = _plate_folder(tmp_path, wells=("A01",))
    (folder / "plate_layout.tsv").write_text("well\tcompound\nA01\tDMSO\nH12\ttaxol\n")
    plate = open_plate(folder)
    assert plate.well_annotations("A01") == {"compound": "DMSO"}
    assert [s.reason for s in plate.skipped] == ["rows of well(s) without images left out: H12"]


def test_an_unreadable_layout_table_does_not_stop_the_plate(tmp_path):
    folder = _plate_folder(tmp_path)
    (folder / "layout.csv").write_text("name,compound\nx,DMSO\n")
    plate = open_plate(folder)
    assert plate.wells == ["A01", "A02"] and plate.layout_source is None
    assert "no well column" in plate.skipped[0].reason


def test_info_shows_the_sample_annotations_and_their_source(capsys):
    assert main(["info", str(sample_path("scportrait_mini"))]) == 0
    out = capsys.readouterr().out
    assert "Annotations (from " in out and "Genotype=Genotype2" in out
    assert main(["info", str(sample_path("scportrait_mini")), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["annotations"]["B02"]["Treatment"] == "Unstimulated"
    assert summary["layout_source"].endswith("plate_layout.tsv")
