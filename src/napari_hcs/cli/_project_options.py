"""The project lock of the commands that write a project: ``--no-wait`` and the lock they hold."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

NO_WAIT_HINT = "Run it again when that run has finished, or without --no-wait to wait for it."


def add_lock_argument(parser) -> None:
    """Add ``--no-wait``."""
    parser.add_argument(
        "--no-wait", action="store_true",
        help="when another run is writing the project, stop at once (exit 1) instead of waiting for it",
    )


def project_lock(folder, args, *, create: bool = True):
    """The project's lock for this command: waits (with a message on stderr) unless ``--no-wait``."""
    from ..project import ProjectLock

    return ProjectLock(folder, wait=not args.no_wait, command=_command(args), hint=NO_WAIT_HINT,
                       create=create)


def locked_command(parser, func, *, create: bool = False) -> None:
    """Make ``func`` the command of ``parser``, holding the lock of ``--project`` for its whole run.

    Adds ``--no-wait``. Under ``torchrun`` only rank 0, the process that writes, takes the lock.
    """
    add_lock_argument(parser)

    @functools.wraps(func)
    def run(args):
        if int(os.environ.get("RANK", "0")) != 0:
            return func(args)
        with project_lock(args.project, args, create=create):
            return func(args)

    parser.set_defaults(func=run)


def _command(args) -> str:
    """``napari-hcs COMMAND ...`` as typed, for the message another run shows."""
    if sys.argv and Path(sys.argv[0]).name in ("napari-hcs", "__main__.py") and args.command in sys.argv:
        text = " ".join(["napari-hcs", *sys.argv[sys.argv.index(args.command):]])
    else:
        text = f"napari-hcs {args.command}"
    return text if len(text) <= 200 else text[:197] + "..."
