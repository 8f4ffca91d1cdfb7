"""``napari-hcs figure`` (exit codes, refusals, errors) and ``napari-hcs view`` (without a GUI)."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

from napari_hcs.cli import main
from napari_hcs.cli.figure_commands import LAUNCHER
from napari_hcs.project import Project

from predicted_sample import plausible_predictions, save_cnn_checkpoint, segmented_sample


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """The sample segmented, with a command-line checkpoint ``wrn`` and its predictions."""
    project = Project(segmented_sample(tmp_path_factory.mktemp("sample") / "project"))
    save_cnn_checkpoint(project)
    plausible_predictions(project, model="wrn")
    return project.folder


def _figure(*arguments) -> int:
    return main(["figure", *map(str, arguments)])


def test_figure_writes_a_png_prints_its_path_and_replaces_an_earlier_one(predicted, tmp_path, capsys):
    out = tmp_path / "pictures" / "predictions.png"
    assert _figure("--project", predicted, "--model", "wrn", "--out", out) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert Image.open(out).format == "PNG"
    assert _figure("--project", predicted, "--site", "B04/0/3", "--out", out) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["predictions.png"]  # no temporary files left


def test_figure_refuses_to_write_over_other_files_and_its_inputs(predicted, tmp_path, capsys):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    assert _figure("--project", predicted, "--out", notes) == 1
    error = capsys.readouterr().err
    assert "napari-hcs figure: error:" in error and "is not a PNG image" in error and "--overwrite" in error
    assert notes.read_text() == "not a picture"
    assert _figure("--project", predicted, "--out", tmp_path / "figure.jpg") == 1
    assert "does not end in .png" in capsys.readouterr().err
    plate = Path(Project(predicted).read_meta()["plate"])
    assert _figure("--project", predicted, "--out", plate / "figure.png") == 1
    assert "lies inside the input" in capsys.readouterr().err and not (plate / "figure.png").exists()
    assert _figure("--project", predicted, "--out", predicted / "labels" / "figure.png") == 1
    assert "lies inside the input" in capsys.readouterr().err
    assert _figure("--project", predicted, "--out", notes, "--overwrite") == 0
    assert Image.open(notes).format == "PNG"


def test_figure_errors_exit_1_with_the_reason(predicted, tmp_path, capsys):
    out = tmp_path / "f.png"
    assert _figure("--project", tmp_path / "nowhere", "--out", out) == 1
    assert "Project folder" in capsys.readouterr().err
    assert _figure("--project", predicted, "--model", "resnet", "--out", out) == 1
    error = capsys.readouterr().err
    assert "No model named 'resnet'" in error and "models are: wrn" in error
    assert _figure("--project", predicted, "--site", "Z99", "--out", out) == 1
    assert "Well Z99 is not on plate" in capsys.readouterr().err
    empty = tmp_path / "empty"
    shutil.copytree(predicted, empty)
    (empty / "columns" / "predictions.parquet").unlink()
    assert _figure("--project", empty, "--out", out) == 1
    assert "run 'napari-hcs predict' first" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["figure", "--project", str(predicted)])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err


def test_view_help_and_its_launcher(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["view", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "PLATE" in text.upper() and "--project" in text and "--model" in text
    assert importlib.util.find_spec(LAUNCHER) is not None
    launcher = importlib.import_module(LAUNCHER)
    assert callable(launcher.launch) and callable(launcher.run)
    assert launcher.display_problem({}, platform="linux").startswith("No display")


def test_view_refuses_before_starting_napari(predicted, tmp_path, capsys, monkeypatch):
    assert main(["view", str(tmp_path / "missing.zarr")]) == 1
    assert "does not exist" in capsys.readouterr().err
    plate = Project(predicted).read_meta()["plate"]
    assert main(["view", plate, "--project", str(predicted), "--model", "resnet"]) == 1
    assert "No model named 'resnet'" in capsys.readouterr().err
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["view", plate, "--project", str(predicted), "--model", "wrn"]) == 1
    assert "No display to open napari on" in capsys.readouterr().err
