"""What every dock's worker threads share: progress relayed to the GUI thread, errors in words.

A worker may still run when its widget is deleted (the viewer was closed: the dock
cancels its work, but a batch in progress finishes). Emitting a signal of the
deleted widget from the worker thread would crash the process, so progress goes
through a parentless :class:`Relay`, whose connection Qt drops when the widget is
gone.
"""

from __future__ import annotations

from qtpy.QtCore import QObject, Signal

from ..cancel import Cancelled
from ..project import ProjectLockedError

__all__ = ["Relay", "describe_error", "relay_to", "worker_call"]


class Relay(QObject):
    """Carries a worker's progress to the GUI thread; it outlives the widget."""

    event = Signal(object)


def worker_call(function, *args, **kwargs):
    """Run ``function``; return ``(result, None)`` or ``(None, error)`` for the errors users cause."""
    try:
        return function(*args, **kwargs), None
    except (Cancelled, ValueError, OSError, KeyError, ProjectLockedError) as error:
        return None, error


def relay_to(slot):
    """A callable for the worker thread that queues ``slot(args)`` in the GUI thread.

    The relay has no parent, so a worker that is still running when its panel is
    deleted (the viewer was closed) emits into an object that exists; Qt drops the
    connection to the deleted panel instead of crashing.
    """
    relay = Relay()
    relay.event.connect(slot)  # a bound method of the panel: disconnected when the panel is deleted

    def emit(*args):
        relay.event.emit(args)

    emit.relay = relay
    return emit


def describe_error(error: BaseException, folder=None) -> str:
    """Words for a problem of training or prediction (never a traceback)."""
    if isinstance(error, Cancelled):
        return str(error) or "Cancelled."
    if isinstance(error, OSError):
        where = f" in {folder}" if folder is not None else ""
        return f"Could not write{where}: {error.strerror or error}. Is the project folder read-only? Nothing was lost."
    return str(error)
