"""ProjectLock: one writer per project, waiting or refusing, stale locks taken over, release on errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from napari_hcs.cancel import Cancelled
from napari_hcs.project import ProjectLock, ProjectLockedError, read_lock
from napari_hcs.project.lock import LOCK_FILE, UNREADABLE_GRACE


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_lock(folder, **holder):
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": "napari-hcs segment P",
              "started": "2024-05-01T10:00:00+00:00", **holder}
    (folder / LOCK_FILE).write_text(json.dumps(record))
    return record


def _hold_in_thread(folder, **options):
    """Take the lock in another thread (a second writer of this process); return (stop, thread)."""
    taken, stop = threading.Event(), threading.Event()

    def hold():
        with ProjectLock(folder, command="napari-hcs segment plate --project P", **options):
            taken.set()
            stop.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    return stop, thread


def test_the_lock_file_names_its_holder_and_goes_on_exit(tmp_path):
    with ProjectLock(tmp_path, command="napari-hcs segment plate") as lock:
        holder = read_lock(tmp_path)
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "napari-hcs segment plate" and holder["started"]
        assert lock.path == tmp_path / LOCK_FILE
    assert read_lock(tmp_path) is None and not (tmp_path / LOCK_FILE).exists()


def test_released_on_exceptions_and_ctrl_c(tmp_path):
    with pytest.raises(ValueError):
        with ProjectLock(tmp_path):
            raise ValueError("boom")
    assert not (tmp_path / LOCK_FILE).exists()
    with pytest.raises(KeyboardInterrupt):
        with ProjectLock(tmp_path):
            raise KeyboardInterrupt
    assert not (tmp_path / LOCK_FILE).exists()


def test_reentrant_in_one_thread(tmp_path):
    with ProjectLock(tmp_path, wait=False):
        with ProjectLock(tmp_path, wait=False):  # a command that calls run_plate takes it again
            assert (tmp_path / LOCK_FILE).exists()
        assert (tmp_path / LOCK_FILE).exists()  # the outer holder still has it
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    stop, thread = _hold_in_thread(tmp_path)
    try:
        with pytest.raises(ProjectLockedError) as refused:
            with ProjectLock(tmp_path, wait=False, hint="Run it again later."):
                pass
        message = str(refused.value)
        assert message.startswith(f"Project {tmp_path} is in use by pid {os.getpid()} ")
        assert "(napari-hcs segment plate --project P, since " in message and message.endswith("Run it again later.")
    finally:
        stop.set()
        thread.join()


def test_a_second_writer_waits_with_a_message_and_takes_the_lock_when_it_frees(tmp_path):
    stop, thread = _hold_in_thread(tmp_path)
    messages = []
    timer = threading.Timer(0.6, stop.set)
    timer.start()
    started = time.monotonic()
    with ProjectLock(tmp_path, on_wait=messages.append, poll=0.05, command="second"):
        assert time.monotonic() - started >= 0.5
        assert read_lock(tmp_path)["command"] == "second"
    thread.join()
    assert len(messages) == 1 and messages[0].endswith("; waiting...")
    assert f"in use by pid {os.getpid()} (napari-hcs segment plate --project P, since " in messages[0]


def test_waiting_stops_on_cancel(tmp_path):
    stop, thread = _hold_in_thread(tmp_path)
    try:
        with pytest.raises(Cancelled, match="Stopped waiting for the lock"):
            ProjectLock(tmp_path, on_wait=lambda m: None, poll=0.01, cancel=lambda: True).acquire()
    finally:
        stop.set()
        thread.join()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path):
    pid = _dead_pid()
    _write_lock(tmp_path, pid=pid)
    notes = []
    with ProjectLock(tmp_path, wait=False, on_wait=notes.append):
        assert read_lock(tmp_path)["pid"] == os.getpid()
    assert len(notes) == 1 and f"left by pid {pid}" in notes[0] and "no longer running" in notes[0]


def test_a_lock_whose_pid_was_reused_is_stale(tmp_path):
    # our parent is alive but began after this lock was written: the pid was reused
    _write_lock(tmp_path, pid=os.getppid(), started="2000-01-01T00:00:00+00:00")
    if not os.path.exists(f"/proc/{os.getppid()}/stat"):
        pytest.skip("process start times are read from /proc")
    with ProjectLock(tmp_path, wait=False, on_wait=lambda m: None):
        assert read_lock(tmp_path)["pid"] == os.getpid()


def test_a_live_holder_or_another_host_is_not_taken_over(tmp_path):
    _write_lock(tmp_path, pid=os.getppid(), started=_now())  # alive, began before the lock
    with pytest.raises(ProjectLockedError, match=f"in use by pid {os.getppid()} "):
        ProjectLock(tmp_path, wait=False).acquire()
    _write_lock(tmp_path, pid=_dead_pid(), host="elsewhere", started=_now())
    with pytest.raises(ProjectLockedError, match="on host elsewhere"):
        ProjectLock(tmp_path, wait=False).acquire()


def _now() -> str:
    from datetime import datetime

    return datetime.now().astimezone().isoformat(timespec="seconds")


def test_a_half_written_lock_file_is_waited_for_then_removed_when_old(tmp_path):
    path = tmp_path / LOCK_FILE
    path.write_text("")
    with pytest.raises(ProjectLockedError, match="being written"):
        ProjectLock(tmp_path, wait=False).acquire()
    old = time.time() - UNREADABLE_GRACE - 5
    os.utime(path, (old, old))
    notes = []
    with ProjectLock(tmp_path, wait=False, on_wait=notes.append):
        assert read_lock(tmp_path)["pid"] == os.getpid()
    assert "unreadable lock file" in notes[0]


def test_folder_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ProjectLock(tmp_path / "missing", create=False).acquire()
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        ProjectLock(tmp_path / "file").acquire()
    with ProjectLock(tmp_path / "new" / "project"):
        assert (tmp_path / "new" / "project" / LOCK_FILE).exists()


def test_a_read_only_project_is_named(tmp_path, monkeypatch):
    import errno

    from napari_hcs.project import lock as lock_module

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(lock_module.os, "open", read_only)
    with pytest.raises(PermissionError, match="Cannot write into project .*: creating its lock file .* failed "
                       r"\(Read-only file system\)"):
        ProjectLock(tmp_path).acquire()


def test_run_plate_and_run_features_hold_the_lock(tmp_path):
    from napari_hcs.pipeline import run_features, run_plate
    from napari_hcs.samples import make_synthetic_plate
    from napari_hcs.segmentation import SegmentationParams

    plate = make_synthetic_plate(n_rows=1, n_columns=1, n_sites=1, shape=(64, 64), n_cells=4)
    params = SegmentationParams(nuclei_channel="DNA")
    seen = []
    run_plate(plate, tmp_path, params, crop_size=16, features=False,
              progress=lambda done, total: seen.append(read_lock(tmp_path)))
    assert seen and seen[0]["pid"] == os.getpid() and read_lock(tmp_path) is None
    stop, thread = _hold_in_thread(tmp_path)
    try:
        with pytest.raises(ProjectLockedError, match=f"Project {tmp_path} is in use by pid {os.getpid()} "):
            run_plate(plate, tmp_path, params, crop_size=16)  # the viewer's runs: refused, not hung
        with pytest.raises(ProjectLockedError):
            run_features(tmp_path, plate=plate)
        with pytest.raises(Cancelled):
            run_plate(plate, tmp_path, params, crop_size=16, wait=True, cancel=lambda: True)
    finally:
        stop.set()
        thread.join()


def test_many_writers_never_overlap(tmp_path):
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def writer():
        try:
            for _ in range(15):
                with ProjectLock(tmp_path, poll=0.001, on_wait=lambda m: None):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    time.sleep(0.001)
                    with guard:
                        inside[0] -= 1
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and most[0] == 1 and read_lock(tmp_path) is None


WRITER = """
import os, sys, time
from napari_hcs.project import ProjectLock
folder = sys.argv[1]
with ProjectLock(folder, poll=0.01, on_wait=lambda m: print(m, file=sys.stderr)):
    fd = os.open(os.path.join(folder, "inside"), os.O_CREAT | os.O_EXCL)  # fails if two are inside
    time.sleep(0.2)
    os.close(fd)
    os.unlink(os.path.join(folder, "inside"))
"""


@pytest.mark.slow
def test_processes_that_find_one_stale_lock_take_turns(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid())
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], errors
    assert sum("took over the lock" in error for error in errors) == 1, errors
    assert read_lock(tmp_path) is None
