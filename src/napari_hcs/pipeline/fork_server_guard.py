"""Imported first by the fork server: it dies with the process that started it (Linux).

Importing this module anywhere else does nothing.

Examples
--------
>>> from napari_hcs.pipeline.lifetime import in_fork_server
>>> in_fork_server()
False
"""

from .lifetime import guard_parent_death, in_fork_server

if in_fork_server():
    guard_parent_death()
