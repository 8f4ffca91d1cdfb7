"""Imported first by the fork server: it and every process it forks die with the command (Linux).

Importing this module anywhere else does nothing.

The server checks its parent against the pid its command recorded, since the command may
have died while the server's interpreter started. Each process the server forks asks for
the parent-death signal at once, before multiprocessing runs any of its code: a worker
forked just as the server dies cannot outlive it.

Examples
--------
>>> from napari_hcs.pipeline.lifetime import in_fork_server
>>> in_fork_server()
False
"""

import functools
import os

from .lifetime import PARENT_PID_VARIABLE, guard_parent_death, in_fork_server

if in_fork_server():
    recorded = os.environ.get(PARENT_PID_VARIABLE, "")
    guard_parent_death(int(recorded) if recorded.isdigit() else None)
    os.register_at_fork(after_in_child=functools.partial(guard_parent_death, os.getpid()))
