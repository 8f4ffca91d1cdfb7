"""The one cancel check of long work.

Long functions take ``cancel``: None, a callable returning True to stop, or a
:class:`threading.Event`. They call :func:`check_cancel` between units of work
(sites, batches, chunks) and stop with :class:`Cancelled`; what was finished
before stays written.

Examples
--------
>>> import threading
>>> stop = threading.Event()
>>> is_cancelled(stop), is_cancelled(None), is_cancelled(lambda: True)
(False, False, True)
>>> stop.set()
>>> check_cancel(stop, "Training was cancelled after epoch 3.")
Traceback (most recent call last):
...
napari_hcs.cancel.Cancelled: Training was cancelled after epoch 3.
"""

from __future__ import annotations

from typing import Callable, Union

__all__ = ["CancelCheck", "Cancelled", "check_cancel", "is_cancelled"]

#: What long functions accept as ``cancel``.
CancelCheck = Union[Callable[[], bool], "threading.Event", None]  # noqa: F821


class Cancelled(InterruptedError):
    """Raised when long work stops because the user cancelled it."""


def is_cancelled(cancel: CancelCheck) -> bool:
    """Return True when ``cancel`` (None, a callable or an Event) says stop."""
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def check_cancel(cancel: CancelCheck, message: str) -> None:
    """Raise :class:`Cancelled` with ``message`` when ``cancel`` says stop."""
    if is_cancelled(cancel):
        raise Cancelled(message)
