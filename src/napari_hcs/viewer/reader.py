"""napari reader: opens a plate (OME-Zarr plate, TIFF folder, TIFF file) at its first site.

napari asks :func:`get_reader` whether a path can be read; the manifest offers
this reader for folders and ``.tif``/``.tiff`` files only. It first declines in
a few file-system calls what cannot be a plate (a folder with neither OME-Zarr
metadata nor a TIFF in it, a file that does not start like a TIFF), then answers
with a reader function only when :func:`napari_hcs.io.open_plate` opens the path
(which reads metadata and file headers, no pixels); for anything else it answers
``None`` so that napari can try other readers.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

from ..io import open_plate
from .layers import site_layer_data
from ..plate import Plate

__all__ = ["get_reader", "read_plate"]

TIFF_SUFFIXES = (".tif", ".tiff")
#: First bytes of a TIFF (little- and big-endian, classic and BigTIFF).
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Files that mark a folder as a Zarr store.
ZARR_MARKERS = ("zarr.json", ".zattrs", ".zgroup")


def _candidate(path: str | os.PathLike | list) -> str | list[str] | None:
    """Return what ``open_plate`` should try, or None when the path is not for us."""
    if isinstance(path, (list, tuple)):
        paths = [str(p) for p in path]
        if len(paths) == 1:
            return _candidate(paths[0])
        if paths and all(p.lower().endswith(TIFF_SUFFIXES) for p in paths):
            return paths
        return None
    path = Path(path)
    if path.is_dir():
        return str(path) if _may_hold_a_plate(path) else None
    if path.is_file() and path.suffix.lower() in TIFF_SUFFIXES and _starts_like_tiff(path):
        return str(path)
    return None


def _may_hold_a_plate(folder: Path) -> bool:
    """True for a Zarr store or a folder with a TIFF in it (or in a subfolder)."""
    if any((folder / marker).exists() for marker in ZARR_MARKERS):
        return True
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.lower().endswith(TIFF_SUFFIXES):
                    return True
                if entry.is_dir() and not entry.name.startswith("."):
                    return True  # plates often keep their images in subfolders
    except OSError:
        return False
    return False


def _starts_like_tiff(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in TIFF_MAGIC
    except OSError:
        return False


def get_reader(path: str | os.PathLike | list) -> Callable | None:
    """Return a reader for a plate, or None when ``path`` is not a plate.

    Parameters
    ----------
    path : path or list of paths
        A folder (OME-Zarr plate or folder of TIFFs whose names match a
        preset), a ``.tif``/``.tiff`` file, or a list of TIFFs (one per channel).

    Returns
    -------
    callable or None
        ``reader(path) -> list of layer data tuples`` showing the first site of
        the first well; None for anything that is not a plate. Never raises.
    """
    candidate = _candidate(path)
    if candidate is None:
        return None
    try:
        plate = open_plate(candidate)
    except Exception:  # a reader probe declines what it cannot open instead of failing
        return None
    return functools.partial(read_plate, plate=plate)


def read_plate(path: str | os.PathLike | list, *, plate: Plate | None = None) -> list[tuple]:
    """Read the first site of the first well of a plate as napari layer data.

    Parameters
    ----------
    path : path or list of paths
        The plate; ignored when ``plate`` is given.
    plate : Plate, optional
        An already opened plate.

    Returns
    -------
    list of tuple
        Layer data tuples from :func:`napari_hcs.viewer.layers.site_layer_data`; each
        layer's metadata holds the plate, which the plate widget picks up.
    """
    if plate is None:
        plate = open_plate(path)
    first = plate.site(plate.wells[0], 0)
    return site_layer_data(plate, first)
