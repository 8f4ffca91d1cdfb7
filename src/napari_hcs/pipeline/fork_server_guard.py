"""Imported first by the fork server: it dies with the process that started it (Linux).

Importing this module anywhere else does nothing.

Examples
--------
>>> from napari_hcs.pipeline.lifetime import in_fork_server
>>> in_fork_server()
False
"""

import os

from .lifetime import PARENT_PID_VARIABLE, guard_parent_death, in_fork_server

if in_fork_server():
    # The process that started the server may have died while the server's
    # interpreter started: compare with its recorded pid, not the current parent.
    recorded = os.environ.get(PARENT_PID_VARIABLE, "")
    guard_parent_death(int(recorded) if recorded.isdigit() else None)
