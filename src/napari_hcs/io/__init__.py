"""Plate readers and writers.

:func:`open_plate` is the one entry point: it recognises OME-Zarr plates, folders
of TIFFs named by a pattern, single multichannel TIFFs and lists of per-channel
TIFFs, and attaches a layout table when given.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..plate import Plate, PlateError
from .layout import read_layout_table, write_layout_table
from .ome_zarr import is_ome_zarr_plate, open_ome_zarr_plate, write_plate, write_site_labels
from .single import open_channel_files, open_single_image
from .tiff_folder import PRESETS, open_tiff_folder

__all__ = [
    "PRESETS",
    "open_plate",
    "read_layout_table",
    "write_layout_table",
    "write_plate",
    "write_site_labels",
]


def open_plate(
    path: str | os.PathLike | list,
    *,
    pattern: str | None = None,
    layout: str | os.PathLike | None = None,
    channel_names: list[str] | None = None,
) -> Plate:
    """Open a plate from any supported source, reading no pixels.

    Parameters
    ----------
    path : path or list of paths
        An OME-Zarr plate, a folder of TIFFs, a single (multichannel) TIFF, or a
        list of TIFFs, one per channel.
    pattern : str, optional
        For TIFF folders: a preset name (``imagexpress``, ``operetta``,
        ``scportrait``, ``nf1``, ``cellomics``) or a regular expression with
        named groups; detected when not given.
    layout : path, optional
        CSV/TSV plate layout table attached to the wells.
    channel_names : list of str, optional
        Names for the channels, replacing the names found in the files.

    Returns
    -------
    Plate

    Raises
    ------
    PlateError
        With the file, well or channel at fault when the input is not a plate.
    FileNotFoundError
        If ``path`` does not exist.

    Examples
    --------
    >>> plate = open_plate("scportrait_timecourse", pattern="scportrait")
    >>> plate.wells, plate.channels
    (['B02', 'B04'], ['Alexa488', 'DAPI', 'mCherry'])
    """
    if isinstance(path, (list, tuple)):
        if len(path) == 1:
            path = path[0]
        else:
            plate = open_channel_files(path, channel_names=channel_names)
            return _with_layout(plate, layout)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.is_dir() and (is_ome_zarr_plate(path)):
        plate = open_ome_zarr_plate(path)
    elif path.is_dir() and (path / "zarr.json").exists() or (path / ".zattrs").exists():
        raise PlateError(f"{path} is a Zarr store without OME-Zarr plate metadata.")
    elif path.is_dir():
        plate = open_tiff_folder(path, pattern=pattern)
    elif path.suffix.lower() in (".tif", ".tiff"):
        plate = open_single_image(path, channel_names=channel_names)
        channel_names = None
    else:
        raise PlateError(
            f"{path} is neither an OME-Zarr plate, a folder of TIFFs, nor a TIFF file."
        )
    if channel_names:
        if len(channel_names) != len(plate.channels):
            raise PlateError(
                f"{path} has {len(plate.channels)} channels ({', '.join(plate.channels)}); "
                f"{len(channel_names)} names were given."
            )
        plate.channels = list(channel_names)
    return _with_layout(plate, layout)


def _with_layout(plate: Plate, layout) -> Plate:
    if layout is not None:
        read_layout_table(layout, plate=plate)
    return plate
