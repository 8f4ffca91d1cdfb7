"""Fault injection: ``segment --workers 2`` killed at random moments, resumed each time.

The project after ten SIGKILLs and resumes must equal the project of one clean run: the
same cells, each with the same crop byte for byte and the same features, and no process of
the killed runs may be left alive.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from run_report_plates import tiff_folder

from napari_hcs.project import CROP_INDEX, CellStore, feature_columns
from napari_hcs.samples import make_synthetic_plate

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only"),
]

KILLS = 10
IDENTITY = ["well", "field", "timepoint", "label"]


def _segment(folder, project) -> list[str]:
    return [sys.executable, "-m", "napari_hcs.cli", "segment", str(folder), "--project", str(project),
            "--pattern", "imagexpress", "--nuclei-channel", "1", "--cell-channel", "2",
            "--crop-size", "16", "--workers", "2"]


def _cells(project) -> dict[tuple, tuple[bytes, np.ndarray]]:
    """Each cell's crop bytes and feature values, keyed by its site and label."""
    store = CellStore(project)
    table = store.table()
    features = feature_columns(table)
    crops = store.crops[:]
    assert len(table) == len(crops) == table[CROP_INDEX].nunique(), "one crop per row, none shared"
    return {
        tuple(row[IDENTITY]): (crops[int(row[CROP_INDEX])].tobytes(), row[features].to_numpy(dtype=float))
        for _, row in table.iterrows()
    }


def _kill_at(command, seconds: float) -> list[psutil.Process]:
    """Start the command, SIGKILL it after ``seconds``; return every process it had started."""
    main = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and main.poll() is None:
        try:
            for child in psutil.Process(main.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    main.kill()
    main.wait(timeout=30)
    return list(seen.values())


def test_segment_killed_ten_times_ends_like_a_clean_run(tmp_path):
    plate = make_synthetic_plate(n_rows=2, n_columns=6, n_sites=2, shape=(96, 96), n_cells=5)
    assert plate.n_sites() == 24
    folder = tiff_folder(tmp_path / "tiffs", plate)
    clean = subprocess.run(_segment(folder, tmp_path / "clean"), capture_output=True, timeout=300)
    assert clean.returncode == 0, clean.stderr.decode()

    rng = np.random.default_rng(7)
    project = tmp_path / "killed"
    for moment in rng.uniform(0.5, 5.0, size=KILLS):
        started = _kill_at(_segment(folder, project), float(moment))
        # A fork server killed while its interpreter starts (before the parent-death signal
        # is armed) still ends by itself once its preloads are imported: allow for that.
        _, alive = psutil.wait_procs(started, timeout=15.0)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"left running after a kill at {moment:.1f} s: {[p.cmdline() for p in alive]}"
    finished = subprocess.run(_segment(folder, project), capture_output=True, timeout=300)
    assert finished.returncode == 0, finished.stderr.decode()

    expected, found = _cells(tmp_path / "clean"), _cells(project)
    assert found.keys() == expected.keys()
    for key, (crop, features) in expected.items():
        assert found[key][0] == crop, f"crop of cell {key} differs"
        np.testing.assert_allclose(found[key][1], features, rtol=0, atol=0, err_msg=str(key))
