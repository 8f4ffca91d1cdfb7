"""``napari-hcs illumination`` and ``napari-hcs preprocess`` on the bundled real sample."""

from __future__ import annotations

import json

import pytest

from napari_hcs.cli import main
from napari_hcs.images.basic_illumination import basicpy_available
from napari_hcs.project import Project
from napari_hcs.samples import sample_path


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def plate_dir():
    return str(sample_path("scportrait_mini"))


@pytest.mark.slow
def test_illumination_estimates_saves_and_records_whether_it_is_applied(plate_dir, tmp_path, capsys):
    project = tmp_path / "p"
    assert main(["illumination", plate_dir, "--pattern", "scportrait", "--project", str(project), "--json"]) == 0
    summary = _last_json(capsys.readouterr().out)
    assert summary["method"] == "cellprofiler" and summary["applied"] is False and summary["n_sites"] == 6
    assert set(summary["function"]) == {"Alexa488", "DAPI", "mCherry"}
    assert (project / "illumination" / "cellprofiler" / "illumination.json").exists()
    assert main(["illumination", plate_dir, "--pattern", "scportrait", "--project", str(project), "--apply",
                 "--channels", "DAPI", "--json"]) == 0
    assert _last_json(capsys.readouterr().out)["applied"] is True
    assert Project(project).read_meta()["illumination"] == {"method": "cellprofiler", "applied": True}
    assert type(Project(project).open_plate().loader).__name__ == "CorrectedLoader"


@pytest.mark.skipif(basicpy_available(), reason="basicpy is installed")
def test_basic_without_basicpy_says_how_to_install_it(plate_dir, tmp_path, capsys):
    code = main(["illumination", plate_dir, "--project", str(tmp_path / "p"), "--illumination-method", "basic"])
    assert code == 1
    assert "pip install --no-deps basicpy" in capsys.readouterr().err


@pytest.mark.slow
def test_preprocess_previews_a_site_and_saves_the_options(plate_dir, tmp_path, capsys):
    project, preview = tmp_path / "p", tmp_path / "preview.png"
    code = main(["preprocess", plate_dir, "--pattern", "scportrait", "--project", str(project),
                 "--steps", "outliers", "median", "centre_crop", "--crop-size", "256",
                 "--outlier-threshold", "DAPI=400", "*=auto", "--site", "B04/0/2", "--preview", str(preview),
                 "--save", "--json"])
    assert code == 0
    summary = _last_json(capsys.readouterr().out)
    assert summary["site"] == "B04 f0 t2" and summary["shape_out"] == [3, 256, 256] and summary["saved"]
    assert preview.stat().st_size > 10_000
    saved = Project(project).read_meta()["preprocessing"]
    assert saved["steps"] == ["outliers", "median", "centre_crop"]
    assert saved["outlier_threshold"] == {"DAPI": 400.0, "*": None}
    # options not given come from the project's saved ones
    assert main(["preprocess", plate_dir, "--project", str(project), "--site", "B02_f000_t001", "--json"]) == 0
    assert _last_json(capsys.readouterr().out)["options"]["crop_size"] == 256


@pytest.mark.parametrize("arguments, words", [
    (["--site", "H12/0/0"], "not on plate"),
    (["--outlier-radius", "1", "2"], "2 values for 3 channels"),
    (["--outlier-threshold", "GFP=3"], "unknown channel"),
    (["--rolling-ball-radius", "0", "--steps", "rolling_ball"], "rolling_ball_radius"),
])
def test_preprocess_refuses_bad_input_in_words(plate_dir, tmp_path, capsys, arguments, words):
    code = main(["preprocess", plate_dir, "--pattern", "scportrait", "--project", str(tmp_path / "p"), *arguments])
    assert code == 1
    error = capsys.readouterr().err
    assert words in error and "Traceback" not in error
