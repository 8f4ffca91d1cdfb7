"""``napari-hcs segment`` and ``napari-hcs features`` on a folder of TIFFs."""

from __future__ import annotations

import json

import tifffile
from pipeline_plates import synthetic

from napari_hcs.cli import main
from napari_hcs.plate import Plate
from napari_hcs.project import Project, feature_columns


def _tiff_folder(tmp_path, plate: Plate):
    folder = tmp_path / "tiffs"
    folder.mkdir()
    for site in plate.iter_sites():
        image = plate.read_site(site)
        for index, plane in enumerate(image):
            tifffile.imwrite(folder / f"P1_{site.well}_s{site.field + 1}_w{index + 1}.tif", plane)
    return folder


def _summary(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_cli_segment_and_features(tmp_path, capsys):
    folder = _tiff_folder(tmp_path, synthetic(n_columns=2))
    layout = tmp_path / "layout.csv"
    layout.write_text("well,treatment\nA01,control\nA02,drug\n")
    project = tmp_path / "project"
    code = main(["segment", str(folder), "--project", str(project), "--nuclei-channel", "1",
                 "--cell-channel", "2", "--crop-size", "16", "--pattern", "imagexpress", "--no-features",
                 "--layout", str(layout), "--workers", "2"])
    summary = _summary(capsys)
    assert code == 0 and summary["sites"] == 2 and summary["cells"] > 0, summary
    assert Project(project).read_meta()["pattern"] == "imagexpress"

    code = main(["features", "--project", str(project), "--workers", "2", "--pool", "thread"])
    assert code == 0 and _summary(capsys)["sites"] == 2
    table = Project(project).cell_table()
    assert feature_columns(table) and set(table.treatment) == {"control", "drug"}

    code = main(["segment", str(folder), "--project", str(project), "--nuclei-channel", "1",
                 "--cell-channel", "2", "--crop-size", "16", "--wells", "A01,A02"])
    assert code == 0 and _summary(capsys)["skipped_done"] == 2
    # other settings on a project that holds cells are refused, naming what differs
    code = main(["segment", str(folder), "--project", str(project), "--nuclei-channel", "1",
                 "--crop-size", "16"])
    assert code == 1 and "cell_channel" in capsys.readouterr().err


def test_cli_unknown_channel_lists_channels(tmp_path, capsys):
    folder = _tiff_folder(tmp_path, synthetic(n_columns=1))
    code = main(["segment", str(folder), "--project", str(tmp_path / "p"), "--nuclei-channel", "DAPI"])
    error = capsys.readouterr().err
    assert code == 1 and "'DAPI'" in error and "channels are: 1, 2, 3" in error
