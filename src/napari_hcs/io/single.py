"""Single images as one-well plates: a multichannel TIFF / OME-TIFF, or one TIFF per channel."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import tifffile

from ..plate import Plate, PlateError, Site
from .tiff_folder import read_tiff_pixel_size

__all__ = ["open_single_image", "open_channel_files"]

SINGLE_WELL = "A01"


def _ome_channel_names(tif: tifffile.TiffFile) -> list[str]:
    if not tif.ome_metadata:
        return []
    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return []
    names = []
    for element in root.iter():
        if element.tag.endswith("}Channel") or element.tag == "Channel":
            names.append(element.get("Name") or element.get("ID") or f"channel_{len(names)}")
    return names


def _to_tcyx(data: np.ndarray, axes: str) -> np.ndarray:
    """Reorder an image with tifffile axes letters to (T, C, Y, X); Z and others take index 0."""
    axes = axes.upper().replace("S", "C") if "C" not in axes.upper() else axes.upper()
    for axis in [a for a in axes if a not in "TCYX"]:
        data = np.take(data, 0, axis=axes.index(axis))
        axes = axes.replace(axis, "")
    for axis in "TC":
        if axis not in axes:
            data = data[None]
            axes = axis + axes
    order = [axes.index(a) for a in "TCYX"]
    return np.transpose(data, order)


def open_single_image(path: str | os.PathLike, *, channel_names: list[str] | None = None) -> Plate:
    """Open one multichannel TIFF / OME-TIFF (or a grey TIFF) as a one-well plate.

    Channel names come from OME metadata, else ``channel_names``, else
    ``channel_0``... A time axis becomes timepoints; a z axis takes its first plane.

    Raises
    ------
    PlateError
        If the file is not a readable TIFF.
    """
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape, dtype = series.axes, series.shape, series.dtype
            names = _ome_channel_names(tif)
    except Exception as error:
        raise PlateError(f"Could not read TIFF {path}: {error}") from None
    probe = np.empty(shape, dtype=np.uint8)
    tcyx_shape = _to_tcyx(probe, axes).shape
    n_time, n_channels = tcyx_shape[:2]
    names = channel_names or names
    if not names or len(names) != n_channels:
        if channel_names:
            raise PlateError(
                f"{path} has {n_channels} channel(s); {len(channel_names)} channel name(s) given."
            )
        names = [f"channel_{i}" for i in range(n_channels)]

    def read_all() -> np.ndarray:
        return _to_tcyx(tifffile.imread(path), axes)

    whole = da.from_delayed(dask.delayed(read_all)(), shape=tcyx_shape, dtype=dtype)
    sites = [Site(SINGLE_WELL, 0, t) for t in range(n_time)]
    return Plate(
        name=path.stem.removesuffix(".ome"),
        channels=list(names),
        sites={SINGLE_WELL: sites},
        loader=lambda site: whole[site.timepoint],
        shape=tcyx_shape[-2:],
        dtype=dtype,
        layout=(1, 1),
        pixel_size=read_tiff_pixel_size(path),
        source=str(path),
    )


def open_channel_files(
    paths: list[str | os.PathLike], *, channel_names: list[str] | None = None
) -> Plate:
    """Open one 2-D TIFF per channel as a one-well, one-site plate.

    Raises
    ------
    PlateError
        Naming the file that is unreadable or whose shape differs.
    """
    paths = [Path(p) for p in paths]
    headers = []
    for path in paths:
        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                headers.append((tuple(page.shape), np.dtype(page.dtype)))
        except Exception as error:
            raise PlateError(f"Could not read TIFF {path}: {error}") from None
    shape, dtype = headers[0]
    for path, (other_shape, _) in zip(paths, headers):
        if other_shape != shape or len(other_shape) != 2:
            raise PlateError(
                f"{path} has shape {other_shape}; every channel file must be one 2-D plane of "
                f"shape {shape} (like {paths[0].name})."
            )
    names = channel_names or [p.stem for p in paths]
    if len(names) != len(paths):
        raise PlateError(f"{len(paths)} channel files but {len(names)} channel names.")
    planes = [
        da.from_delayed(dask.delayed(tifffile.imread)(str(p), key=0), shape=shape, dtype=dtype)
        for p in paths
    ]
    stacked = da.stack(planes)
    return Plate(
        name=paths[0].parent.name,
        channels=list(names),
        sites={SINGLE_WELL: [Site(SINGLE_WELL, 0, 0)]},
        loader=lambda site: stacked,
        shape=shape,
        dtype=dtype,
        layout=(1, 1),
        pixel_size=read_tiff_pixel_size(paths[0]),
        source=str(paths[0].parent),
    )
