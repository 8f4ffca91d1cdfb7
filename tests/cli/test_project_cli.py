"""The project lock and the plate check on the command line: concurrent runs, --no-wait, stale locks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_hcs.cli import main
from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.project import CROP_INDEX, CellStore, ProjectLock, read_lock
from napari_hcs.project.lock import LOCK_FILE
from napari_hcs.samples import make_synthetic_plate
from napari_hcs.segmentation import SegmentationParams

SEGMENT = ["--nuclei-channel", "1", "--cell-channel", "2", "--crop-size", "16", "--pattern", "imagexpress",
           "--no-features"]
PARAMS = SegmentationParams(nuclei_channel="1", cell_channel="2")

# A segment run that waits for a file before its first site: the test decides how long it holds the lock.
HELD_RUN = """
import sys, time
from pathlib import Path
import napari_hcs.pipeline.plate_run as plate_run
from napari_hcs.cli import main

go, site_task = Path(sys.argv[1]), plate_run.run_site_task

def held(task):
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return site_task(task)

plate_run.run_site_task = held
sys.argv = ["napari-hcs", *sys.argv[2:]]  # as the console script sees it
sys.exit(main(sys.argv[1:]))
"""


def _tiff_plate(folder: Path, n_columns: int = 2) -> Path:
    plate = make_synthetic_plate(n_rows=1, n_columns=n_columns, n_sites=1, shape=(96, 96), n_cells=6)
    folder.mkdir(parents=True)
    for site in plate.iter_sites():
        for index, plane in enumerate(plate.read_site(site)):
            tifffile.imwrite(folder / f"P1_{site.well}_s{site.field + 1}_w{index + 1}.tif", plane)
    return folder


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "napari_hcs.cli", *args]


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _cells_and_crops(folder: Path) -> pd.DataFrame:
    """Each cell with the bytes of its own crop, in a stable order."""
    store = CellStore(folder)
    cells = store.cells()
    crops = store.crops[:]
    cells["crop"] = [crops[i].tobytes() for i in cells[CROP_INDEX]]
    return cells.drop(columns=CROP_INDEX).sort_values(["well", "field", "timepoint", "label"]).reset_index(drop=True)


@pytest.mark.slow
def test_concurrent_segment_runs_wait_or_refuse_and_every_row_keeps_its_crop(tmp_path):
    plate = _tiff_plate(tmp_path / "plate", n_columns=4)
    project = tmp_path / "project"
    go = tmp_path / "go"
    (tmp_path / "held.py").write_text(HELD_RUN)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first_args = ["segment", str(plate), "--project", str(project), "--wells", "A01,A02", *SEGMENT]
    with open(tmp_path / "first.err", "w") as first_err, open(tmp_path / "second.err", "w") as second_err:
        first = subprocess.Popen([sys.executable, str(tmp_path / "held.py"), str(go), *first_args],
                                 stdout=subprocess.PIPE, stderr=first_err, env=env, text=True)
        try:
            _wait_for(lambda: (read_lock(project) or {}).get("pid") == first.pid, "the first run's lock")
            refused = subprocess.run(_cli("segment", str(plate), "--project", str(project), "--no-wait", *SEGMENT),
                                     capture_output=True, text=True, env=env, timeout=300)
            assert refused.returncode == 1, refused.stderr
            assert f"Project {project} is in use by pid {first.pid} (napari-hcs segment {plate}" in refused.stderr
            assert "without --no-wait to wait" in refused.stderr and "Traceback" not in refused.stderr

            second = subprocess.Popen(_cli("segment", str(plate), "--project", str(project), *SEGMENT),
                                      stdout=subprocess.PIPE, stderr=second_err, env=env, text=True)
            _wait_for(lambda: "waiting..." in (tmp_path / "second.err").read_text(), "the second run to wait")
            go.touch()
            first_out, _ = first.communicate(timeout=300)
            second_out, _ = second.communicate(timeout=300)
        finally:
            go.touch()
            for process in (first, locals().get("second")):
                if process is not None and process.poll() is None:
                    process.kill()
    assert first.returncode == 0 and second.returncode == 0, (tmp_path / "second.err").read_text()
    waiting = (tmp_path / "second.err").read_text()
    assert f"is in use by pid {first.pid} (napari-hcs segment" in waiting and "; waiting..." in waiting
    first_summary = json.loads(first_out[first_out.index("{"):])
    second_summary = json.loads(second_out[second_out.index("{"):])
    assert first_summary["sites"] == 2 and second_summary["skipped_done"] == 2 and second_summary["sites"] == 2
    assert not (project / LOCK_FILE).exists()

    store = CellStore(project)
    cells = store.cells()
    assert len(cells) == store.crops.shape[0] == second_summary["total_cells"]
    assert sorted(cells[CROP_INDEX]) == list(range(len(cells)))  # one crop per row, none shared
    run_plate(open_plate(plate, pattern="imagexpress"), tmp_path / "clean", PARAMS, crop_size=16, features=False)
    pd.testing.assert_frame_equal(_cells_and_crops(project), _cells_and_crops(tmp_path / "clean"))


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    plate = _tiff_plate(tmp_path / "plate")
    project = tmp_path / "project"
    project.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (project / LOCK_FILE).write_text(json.dumps({
        "pid": dead.pid, "host": __import__("socket").gethostname(),
        "command": "napari-hcs segment plate", "started": "2024-05-01T10:00:00+02:00"}))
    code = main(["segment", str(plate), "--project", str(project), "--no-wait", *SEGMENT])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"took over the lock of project {project} left by pid {dead.pid}" in captured.err
    assert json.loads(captured.out[captured.out.index("{"):])["sites"] == 2
    assert not (project / LOCK_FILE).exists()


@pytest.fixture
def held_lock(tmp_path):
    """The project folder, its lock held by another thread (another writer) during the test."""
    project = tmp_path / "project"
    project.mkdir()
    taken, stop = threading.Event(), threading.Event()

    def hold():
        with ProjectLock(project, command="napari-hcs train --project P"):
            taken.set()
            stop.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    yield project
    stop.set()
    thread.join()


@pytest.mark.parametrize("command", [
    ["segment", "{plate}", "--nuclei-channel", "1"],
    ["features"],
    ["import-crops", "crops.npz", "meta.csv"],
    ["train", "--label-column", "class"],
    ["predict", "--model", "model.pt"],
    ["baseline", "--label-column", "class"],
    ["compare", "--label-column", "class"],
])
def test_every_writing_command_refuses_a_locked_project_with_no_wait(command, held_lock, tmp_path, capsys):
    plate = _tiff_plate(tmp_path / "plate") if "{plate}" in command else None
    argv = [str(plate) if part == "{plate}" else part for part in command]
    code = main([*argv, "--project", str(held_lock), "--no-wait"])
    error = capsys.readouterr().err
    assert code == 1
    assert f"napari-hcs {command[0]}: error: Project {held_lock} is in use by pid {os.getpid()} " in error
    assert "(napari-hcs train --project P, since " in error and "without --no-wait" in error


def test_segment_with_another_plate_is_refused_by_name(tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["segment", str(_tiff_plate(tmp_path / "a")), "--project", str(project), *SEGMENT]) == 0
    capsys.readouterr()
    code = main(["segment", str(_tiff_plate(tmp_path / "b", n_columns=3)), "--project", str(project), *SEGMENT])
    error = capsys.readouterr().err
    assert code == 1 and "holds 2 segmented site(s) of another plate" in error
    assert "wells differ: project has A01, A02; plate has A01, A02, A03" in error
    assert "give a new project folder (--project)" in error and "Traceback" not in error


def test_features_after_the_plate_moved(tmp_path, capsys):
    plate = _tiff_plate(tmp_path / "plate")
    project = tmp_path / "project"
    assert main(["segment", str(plate), "--project", str(project), *SEGMENT]) == 0
    moved = shutil.move(plate, tmp_path / "moved")
    capsys.readouterr()
    assert main(["features", "--project", str(project)]) == 1
    error = capsys.readouterr().err
    assert f"is not at {plate} any more" in error and "--plate PATH" in error
    assert main(["features", "--project", str(project), "--plate", str(moved)]) == 0
    summary = json.loads((out := capsys.readouterr().out)[out.index("{"):])
    assert summary["sites"] == 2 and not summary["failures"]
    assert json.loads((project / "project.json").read_text())["plate"] == str(moved)
    assert np.isfinite(CellStore(project).table().filter(like="feat_").to_numpy()).all()


def test_under_torchrun_only_rank_0_takes_the_lock(tmp_path, monkeypatch):
    import argparse

    from napari_hcs.cli._project_options import locked_command

    seen = []
    parser = argparse.ArgumentParser()
    parser.add_argument("--project")
    locked_command(parser, lambda args: seen.append(read_lock(args.project)) or 0)
    args = parser.parse_args(["--project", str(tmp_path)])
    args.command = "train"
    monkeypatch.setenv("RANK", "1")
    assert args.func(args) == 0 and seen == [None]
    monkeypatch.setenv("RANK", "0")
    assert args.func(args) == 0 and seen[-1]["pid"] == os.getpid()
    assert read_lock(tmp_path) is None
