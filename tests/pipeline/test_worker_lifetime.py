"""Workers end with the command: ``segment --workers 2`` killed leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from run_report_plates import tiff_folder

from napari_hcs.pipeline.lifetime import in_fork_server
from napari_hcs.samples import make_synthetic_plate

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL])
def test_killed_segment_leaves_no_worker(tmp_path, kill):
    plate = make_synthetic_plate(n_rows=2, n_columns=4, n_sites=2, shape=(96, 96), n_cells=5)
    folder = tiff_folder(tmp_path / "tiffs", plate)
    command = [sys.executable, "-m", "napari_hcs.cli", "segment", str(folder), "--project", str(tmp_path / "p"),
               "--pattern", "imagexpress", "--nuclei-channel", "1", "--cell-channel", "2", "--workers", "2"]
    main = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        children: list[psutil.Process] = []
        # fork server, resource tracker and two workers
        while len(children) < 4 and time.monotonic() < deadline and main.poll() is None:
            time.sleep(0.05)
            children = _descendants(main.pid)
        assert len(children) >= 4, f"workers did not start: {children}"
        os.kill(main.pid, kill)
        main.wait(timeout=30)
        if kill == signal.SIGTERM:
            assert main.returncode == 143, main.stderr.read().decode()
        _, left = psutil.wait_procs(children, timeout=1.0)
        assert not _alive(left), [(p.pid, p.cmdline()) for p in _alive(left)]
    finally:
        if main.poll() is None:
            main.kill()
        main.stderr.close()


def test_the_guard_is_inert_outside_the_fork_server():
    import napari_hcs.pipeline.fork_server_guard  # noqa: F401 - importing must not arm this process

    assert not in_fork_server()
    assert open(f"/proc/{os.getpid()}/status").read()  # this process is alive and untouched
