"""One writer per project: a lock file that names its holder.

Every command that writes a project holds its :class:`ProjectLock` for the whole
run. The lock is the file ``.lock`` in the project folder, created atomically
(``O_CREAT | O_EXCL``: of two runs only one creates it) and holding the holder's
pid, host, command line and start time as JSON. A second run waits until the
file is gone, or refuses at once (``wait=False``) with a message naming the
holder. A lock left by a process of this host that is no longer alive (killed,
crashed) is taken over, with a note.

The lock is re-entrant within one thread: a command that holds it can call
:func:`~napari_hcs.pipeline.run_plate`, which takes it again. Another thread of
the same process is a second writer and waits or is refused like another process.

Examples
--------
>>> with ProjectLock(tmp_path) as lock:
...     holder = read_lock(tmp_path)
...     holder["pid"] == os.getpid()
True
>>> (tmp_path / LOCK_FILE).exists()   # released on exit, also on errors and Ctrl-C
False
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from ..cancel import CancelCheck, check_cancel

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["LOCK_FILE", "ProjectLock", "ProjectLockedError", "read_lock"]

LOCK_FILE = ".lock"
#: Seconds after which a lock file that still holds no readable JSON counts as left behind.
UNREADABLE_GRACE = 10.0

# Locks this process holds: folder -> [thread id, depth].
_HELD: dict[str, list[int]] = {}
_HELD_GUARD = threading.Lock()


class ProjectLockedError(RuntimeError):
    """Another run holds the project's lock (raised when not waiting)."""


def read_lock(folder: str | os.PathLike) -> dict | None:
    """Return the holder recorded in a project's lock file (None when unlocked).

    A lock file that holds no readable JSON (being written, or left half written)
    gives ``{}``.
    """
    path = Path(folder) / LOCK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return False
    return True


def describe_holder(folder: Path, holder: dict) -> str:
    """``Project X is in use by pid N (command, since T)``."""
    if not holder:
        return f"Project {folder} is in use (its lock file {folder / LOCK_FILE} is being written)"
    where = "" if holder.get("host") == socket.gethostname() else f" on host {holder.get('host')}"
    return (f"Project {folder} is in use by pid {holder.get('pid')}{where} "
            f"({holder.get('command') or 'unknown command'}, since {holder.get('started') or '?'})")


class ProjectLock:
    """The lock of a project folder, as a context manager.

    Parameters
    ----------
    folder : path
        Project folder; created when missing (unless ``create`` is False).
    wait : bool, optional
        When another run holds the lock: wait until it frees (True, default) or
        raise :class:`ProjectLockedError` at once.
    command : str, optional
        What the holder runs, recorded for the message others see; default the
        command line of this process.
    on_wait : callable, optional
        ``on_wait(message)`` once when the run starts waiting, and for notes
        (a stale lock taken over); default: printed to stderr.
    cancel : callable or threading.Event, optional
        Checked while waiting; stops the wait with
        :class:`~napari_hcs.cancel.Cancelled`.
    hint : str, optional
        Added to the refusal message (what the user can do).
    poll : float, optional
        Seconds between looks at the lock file while waiting.
    create : bool, optional
        Create a missing folder (True, default), or raise FileNotFoundError.

    Raises
    ------
    ProjectLockedError
        With ``wait=False``, when another run holds the lock.
    PermissionError
        When the lock file cannot be created (a read-only project).
    """

    def __init__(self, folder: str | os.PathLike, *, wait: bool = True, command: str | None = None,
                 on_wait: Callable[[str], None] | None = None, cancel: CancelCheck = None,
                 hint: str = "", poll: float = 0.5, create: bool = True):
        self.folder = Path(folder)
        self.wait = bool(wait)
        self.command = command if command is not None else _command_line()
        self.on_wait = on_wait if on_wait is not None else _print
        self.cancel = cancel
        self.hint = hint
        self.poll = float(poll)
        self.create = bool(create)
        self._key: str | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    # -- taking and releasing -------------------------------------------------
    def acquire(self) -> "ProjectLock":
        """Take the lock (waiting or refusing as asked); return self."""
        _make_folder(self.folder, create=self.create)
        key = str(self.folder.resolve())
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None and held[0] == threading.get_ident():
                held[1] += 1
                self._key = key
                return self
        announced = None
        while not self._create_and_hold(key):
            holder = read_lock(self.folder)
            if holder is None:
                continue
            if self._take_over_if_stale(holder, key):
                continue
            message = describe_holder(self.folder, holder)
            if not self.wait:
                raise ProjectLockedError(f"{message}.{' ' + self.hint if self.hint else ''}")
            if message != announced:
                self.on_wait(f"{message}; waiting...")
                announced = message
            check_cancel(self.cancel, f"Stopped waiting for the lock of project {self.folder}.")
            time.sleep(self.poll)
        self._key = key
        return self

    def _create_and_hold(self, key: str) -> bool:
        # Creating the file and registering it are one step for the other threads of this
        # process, which would otherwise take a lock of this pid that is not registered as stale.
        with _HELD_GUARD:
            if not self._try_create():
                return False
            _HELD[key] = [threading.get_ident(), 1]
            return True

    def release(self) -> None:
        """Give the lock back (the lock file is removed when the outermost holder releases)."""
        key, self._key = self._key, None
        if key is None:
            return
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            holder = read_lock(self.folder)
            if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            del _HELD[key]

    def __enter__(self) -> "ProjectLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- the lock file ----------------------------------------------------------
    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as error:  # read-only folder or file system
            raise PermissionError(
                f"Cannot write into project {self.folder}: creating its lock file {self.path} failed "
                f"({error.strerror or error}); choose a project folder you can write."
            ) from None
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record))
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _take_over_if_stale(self, holder: dict, key: str) -> bool:
        """Remove a lock left by a dead process (or half written long ago); True if removed."""
        # The re-read, the check and the removal are one step for this process's threads too:
        # a lock released and taken again by another thread in between must not be removed.
        with _takeover_guard(self.folder), _HELD_GUARD:
            current = read_lock(self.folder)
            if current != holder or not _is_stale(current, self.path, key):
                return False
            try:
                self.path.unlink()
            except FileNotFoundError:
                return True
        if holder:
            self.on_wait(
                f"Note: took over the lock of project {self.folder} left by pid {holder.get('pid')} "
                f"({holder.get('command') or 'unknown command'}, since {holder.get('started')}), "
                "which is no longer running."
            )
        else:
            self.on_wait(f"Note: removed the unreadable lock file {self.path} left behind.")
        return True


def _is_stale(holder: dict, path: Path, key: str) -> bool:
    if not holder:
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_GRACE
        except FileNotFoundError:
            return False
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if holder["pid"] == os.getpid():
        return key not in _HELD  # left by an earlier process that had this pid (caller holds _HELD_GUARD)
    return not _pid_alive(holder["pid"]) or _started_after(holder["pid"], holder.get("started"))


def _started_after(pid: int, started: str | None) -> bool:
    """True when process ``pid`` began after the lock was written: the pid was reused (Linux)."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        locked = datetime.fromisoformat(started).timestamp()
    except (OSError, ValueError, IndexError, StopIteration, TypeError):
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > locked + 2.0


@contextmanager
def _takeover_guard(folder: Path) -> Iterator[None]:
    """Serialise stale-lock take-overs (``flock`` on the folder), so two runs never both remove one."""
    try:
        fd = os.open(folder, os.O_RDONLY) if fcntl is not None else None
    except OSError:
        fd = None
    if fd is None:  # pragma: no cover - no flock here (Windows): take-overs are not serialised
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_folder(folder: Path, *, create: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"Project folder {folder} is a file, not a folder; give a folder.")
    if not create and not folder.is_dir():
        raise FileNotFoundError(f"Project folder {folder} does not exist.")
    folder.mkdir(parents=True, exist_ok=True)


def _command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if name in ("__main__.py", "-c", "-m"):
        name = "napari-hcs" if "napari_hcs" in (sys.argv[0] or "") else "python"
    text = " ".join([name, *sys.argv[1:]])
    return text if len(text) <= 200 else text[:197] + "..."


def _print(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
