"""Every site of a plate is processed or reported: skipped files and failed sites, exit codes."""

from __future__ import annotations

import json

import pytest
from run_report_plates import GARBAGE, SCPORTRAIT_REGEX, broken_sample

from napari_hcs.cli import main
from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.segmentation import SegmentationParams

PARAMS = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
SEGMENT = ["--nuclei-channel", "DAPI", "--cell-channel", "mCherry", "--crop-size", "16", "--no-features"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return broken_sample(tmp_path_factory.mktemp("plates") / "sample")


def _summary(out: str) -> dict:
    return json.loads(out[out.index("{"):])


def test_run_plate_reports_the_sites_the_reader_left_out(broken, tmp_path):
    plate = open_plate(broken, pattern="scportrait")
    assert plate.n_sites() == 4
    summary = run_plate(plate, tmp_path / "project", PARAMS, crop_size=16, features=False)
    assert summary["sites"] == 4 and summary["failures"] == []
    by_site = {s["where"].split("/")[-1]: s["reason"] for s in summary["skipped"]}
    assert set(by_site) == {"B02 f0 t2", "B04 f0 t3"}, summary["skipped"]
    assert GARBAGE in by_site["B02 f0 t2"] and "unreadable" in by_site["B02 f0 t2"]
    assert "(100, 120)" in by_site["B04 f0 t3"] and "(540, 540)" in by_site["B04 f0 t3"]


def test_segment_exit_code_and_listing_say_what_was_skipped(broken, tmp_path, capsys):
    code = main(["segment", str(broken), "--project", str(tmp_path / "p"), "--pattern", "scportrait", *SEGMENT])
    captured = capsys.readouterr()
    summary = _summary(captured.out)
    assert code == 3 and summary["sites"] == 4 and summary["skipped"], summary
    assert "skipped: " in captured.err and GARBAGE in captured.err
    # the re-run has nothing left to do, but the plate still lacks those sites
    code = main(["segment", str(broken), "--project", str(tmp_path / "p"), "--pattern", "scportrait", *SEGMENT])
    assert code == 3 and _summary(capsys.readouterr().out)["skipped_done"] == 4


def test_a_clean_run_exits_0_and_a_skipped_site_3(tmp_path, capsys):
    from run_report_plates import tiff_folder

    from napari_hcs.samples import make_synthetic_plate

    plate = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=1, shape=(96, 96), n_cells=5)
    folder = tiff_folder(tmp_path / "tiffs", plate)
    options = ["--nuclei-channel", "1", "--cell-channel", "2", "--crop-size", "16", "--pattern", "imagexpress"]
    assert main(["segment", str(folder), "--project", str(tmp_path / "clean"), *options]) == 0
    assert _summary(capsys.readouterr().out)["skipped"] == []
    # an unreadable file: its site is skipped by the reader and reported, the other finishes
    (folder / "P1_A02_s1_w1.tif").write_bytes(b"garbage")
    code = main(["segment", str(folder), "--project", str(tmp_path / "fresh"), *options, "--workers", "2"])
    captured = capsys.readouterr()
    summary = _summary(captured.out)
    assert code == 3 and summary["sites"] == 1, summary
    assert [s["where"].split("/")[-1] for s in summary["skipped"]] == ["A02 f1 t0"], summary["skipped"]
    assert "P1_A02_s1_w1.tif" in captured.err


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    text = capsys.readouterr().out
    assert "exit codes:" in text and "3 " in text and "130" in text and "143" in text


def test_a_regex_plate_runs_on_two_worker_processes(tmp_path):
    plate = open_plate(broken_sample(tmp_path / "sample"), pattern=SCPORTRAIT_REGEX)
    summary = run_plate(plate, tmp_path / "project", PARAMS, crop_size=16, features=True, workers=2,
                        pattern=SCPORTRAIT_REGEX)
    assert summary["sites"] == 4 and summary["failures"] == [] and summary["cells"] > 0, summary
    assert summary["features_sites"] == 0 and len(summary["skipped"]) >= 2


def test_a_failing_site_reason_reaches_the_summary_on_processes(tmp_path):
    from run_report_plates import tiff_folder

    from napari_hcs.samples import make_synthetic_plate

    generated = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=1, shape=(96, 96), n_cells=5)
    folder = tiff_folder(tmp_path / "tiffs", generated)
    plate = open_plate(folder, pattern=r"^P1_(?P<well>[A-P]\d\d)_s(?P<field>\d+)_w(?P<channel>\d)\.tif$")
    (folder / "P1_A02_s1_w3.tif").write_bytes(b"garbage")
    summary = run_plate(plate, tmp_path / "project", SegmentationParams(nuclei_channel="1", cell_channel="2"),
                        crop_size=16, features=False, workers=2)
    assert summary["sites"] == 1 and len(summary["failures"]) == 1, summary
    failure = summary["failures"][0]
    assert failure["site"].startswith("A02") and "P1_A02_s1_w3.tif" in failure["error"], failure
