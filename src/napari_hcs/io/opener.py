"""Open a plate from any supported source: the reader is chosen by what the path is."""

from __future__ import annotations

import os
from pathlib import Path

from ..plate import Plate, PlateError, SkippedItem
from .layout import attach_layout, find_layout_table, read_layout_table
from ..chunks import corrupt_metadata_file
from .ngff import is_ome_zarr_plate
from .ome_zarr_reader import open_ome_zarr_plate
from .single import open_channel_files, open_single_image
from .tiff_folder import open_tiff_folder

__all__ = ["open_plate"]


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
        CSV/TSV plate layout table attached to the wells. Without it, a layout
        table inside a plate folder (one of
        :data:`~napari_hcs.io.layout.LAYOUT_TABLE_NAMES`) is attached; the
        rows it has for wells without images, or a table it cannot read, are
        listed in ``plate.skipped``.
    channel_names : list of str, optional
        Names for the channels, replacing the names found in the files.

    Returns
    -------
    Plate
        ``plate.layout_source`` names the layout table attached, if any.

    Raises
    ------
    PlateError
        With the file, well or channel at fault when the input is not a plate.
    FileNotFoundError
        If ``path`` does not exist.

    Examples
    --------
    >>> plate = open_plate(sample_path("scportrait_mini"))
    >>> plate.wells, plate.channels
    (['B02', 'B04'], ['Alexa488', 'DAPI', 'mCherry'])
    >>> plate.well_annotations("B04")
    {'Genotype': 'Genotype2', 'Treatment': 'Stimulated'}
    """
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return _with_layout(open_channel_files(path, channel_names=channel_names), layout, None)
        path = path[0]
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.is_dir() and is_ome_zarr_plate(path):
        plate = open_ome_zarr_plate(path)
    elif path.is_dir() and ((path / "zarr.json").exists() or (path / ".zattrs").exists()):
        bad = corrupt_metadata_file(path, limit=1000)
        if bad is not None:
            raise PlateError(f"{bad} is not valid JSON; the store {path} is damaged: write it again.")
        raise PlateError(f"{path} is a Zarr store without OME-Zarr plate metadata.")
    elif path.is_dir():
        plate = open_tiff_folder(path, pattern=pattern)
    elif path.suffix.lower() in (".tif", ".tiff"):
        plate = open_single_image(path, channel_names=channel_names)
        channel_names = None
    else:
        raise PlateError(f"{path} is neither an OME-Zarr plate, a folder of TIFFs, nor a TIFF file.")
    if channel_names:
        if len(channel_names) != len(plate.channels):
            raise PlateError(
                f"{path} has {len(plate.channels)} channels ({', '.join(plate.channels)}); "
                f"{len(channel_names)} names were given."
            )
        plate.channels = list(channel_names)
    return _with_layout(plate, layout, path if path.is_dir() else None)


def _with_layout(plate: Plate, layout, folder: Path | None) -> Plate:
    if layout is not None:
        read_layout_table(layout, plate=plate)
    elif folder is not None and (found := find_layout_table(folder)) is not None:
        _offer_layout(plate, found)
    return plate


def _offer_layout(plate: Plate, path: Path) -> None:
    """Attach the layout table a plate folder carries, leaving out what does not fit."""
    try:
        frame = read_layout_table(path)
    except (PlateError, ValueError, OSError) as error:
        plate.skipped.append(SkippedItem(str(path), f"layout table not attached: {error}"))
        return
    unknown = [w for w in frame.index if w not in plate.sites]
    if unknown:
        plate.skipped.append(
            SkippedItem(str(path), f"rows of well(s) without images left out: {', '.join(unknown)}")
        )
    if len(unknown) < len(frame):
        attach_layout(plate, frame.drop(index=unknown), source=str(path))
        plate.layout_source = str(path)
