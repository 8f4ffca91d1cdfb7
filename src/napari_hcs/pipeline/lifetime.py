"""Worker processes end with the process that started them.

On Linux each pool worker (and the fork server it is forked from) asks the
kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a
command killed with SIGKILL or SIGTERM leaves no worker, fork server or resource
tracker behind (the tracker exits once no process holds its pipe). Elsewhere
these calls do nothing. :func:`terminate_on_sigterm` turns SIGTERM in the main
process into :class:`Terminated`, so a run unwinds (its pool is shut down, its
lock released) as it does on Ctrl-C.

Examples
--------
>>> guard_parent_death() in (True, False)
True
>>> with terminate_on_sigterm():
...     pass
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["PARENT_PID_VARIABLE", "Terminated", "guard_parent_death", "in_fork_server", "terminate_on_sigterm"]

_PR_SET_PDEATHSIG = 1
#: Environment variable through which a fork server learns the pid of the process
#: that started it, to notice when that process died before the guard was armed.
PARENT_PID_VARIABLE = "NAPARI_HCS_POOL_PARENT"


class Terminated(BaseException):
    """Raised in the main process when it receives SIGTERM (a BaseException, like Ctrl-C)."""


def guard_parent_death(expected_parent: int | None = None) -> bool:
    """Ask for SIGKILL when the parent process dies (Linux); return whether it was set.

    The parent may have died before the request: then this process exits at
    once. ``expected_parent`` is the parent's pid (the current parent by default).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    parent = os.getppid() if expected_parent is None else expected_parent
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:
        os._exit(1)
    return True


def in_fork_server() -> bool:
    """Whether this code runs inside multiprocessing's fork server, importing its preloads."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return False
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
