"""The one rule for the axes of a TIFF image: which axis holds the channels.

tifffile names each axis of a series with a letter (``T`` time, ``C`` channel,
``S`` sample, ``Z`` plane, ``Y``, ``X``; ``Q`` or ``I`` when the file does not
say). The rule:

- the channel axis is ``C``, else ``S`` (the samples of an RGB image);
- when the file names neither and has axes it does not name, the channel axis
  is the smallest of those axes and ``Y``, ``X`` (tifffile calls the last two
  axes of an unlabelled stack ``Y`` and ``X``, also when the channels come last);
- ``T`` becomes timepoints; ``Z`` and any other axis take their first plane;
- axes of length 1 are dropped first.

Examples
--------
>>> tcyx_shape((64, 64, 3), "YXS")
(1, 3, 64, 64)
>>> tcyx_shape((120, 200, 2), "QYX")
(1, 2, 120, 200)
>>> tcyx_shape((4, 2, 5, 64, 64), "TCZYX")
(4, 2, 64, 64)
"""

from __future__ import annotations

import numpy as np

__all__ = ["tcyx_shape", "to_tcyx"]


def _unnamed(letter: str) -> bool:
    return letter not in "TCSZYX"


def _roles(shape: tuple[int, ...], axes: str) -> list[str]:
    """Return the role of each axis: ``T``, ``C``, ``Y``, ``X`` or ``-`` (take plane 0)."""
    letters = axes.upper()
    if len(letters) != len(shape):
        raise ValueError(f"Axes {axes!r} do not match an image of shape {tuple(shape)}.")
    kept = [i for i, (a, n) in enumerate(zip(letters, shape)) if n > 1 or a in "YX"]
    roles = ["-"] * len(shape)
    channel = next((i for a in "CS" for i in kept if letters[i] == a), None)
    spatial = [i for i in kept if letters[i] in "YX"]
    if channel is None and any(_unnamed(letters[i]) for i in kept):
        candidates = [i for i in kept if _unnamed(letters[i]) or letters[i] in "YX"]
        channel = min(candidates, key=lambda i: shape[i])
        spatial = [i for i in candidates if i != channel][-2:]
    if channel is not None:
        roles[channel] = "C"
    for role, index in zip("YX", spatial):
        roles[index] = role
    time = next((i for i in kept if letters[i] == "T"), None)
    if time is not None:
        roles[time] = "T"
    return roles


def to_tcyx(data: np.ndarray, axes: str) -> np.ndarray:
    """Return an image whose axes tifffile names as ``(T, C, Y, X)``, by the rule above.

    Parameters
    ----------
    data : ndarray
        The image, e.g. ``tifffile.TiffFile(path).series[0].asarray()``.
    axes : str
        tifffile's axis letters of ``data`` (``series.axes``).

    Returns
    -------
    ndarray
        A view of ``data`` with axes ``(T, C, Y, X)``; missing axes have length 1.
    """
    roles = _roles(np.shape(data), axes)
    index = tuple(slice(None) if role != "-" else 0 for role in roles)
    kept = [role for role in roles if role != "-"]
    data = np.asarray(data)[index]
    for role in "TC":
        if role not in kept:
            data = data[np.newaxis]
            kept.insert(0, role)
    return np.transpose(data, [kept.index(role) for role in "TCYX"])


def tcyx_shape(shape: tuple[int, ...], axes: str) -> tuple[int, int, int, int]:
    """Return the ``(T, C, Y, X)`` shape :func:`to_tcyx` gives an image of ``shape`` (reads nothing)."""
    return to_tcyx(np.broadcast_to(np.zeros((), np.uint8), tuple(shape)), axes).shape
