"""Single images as one-well plates: a multichannel TIFF / OME-TIFF, or one TIFF per channel.

The channel axis of a multichannel TIFF follows :mod:`napari_hcs.io.tiff_axes`.
The plates' loaders (:class:`TiffSeriesLoader`, :class:`ChannelFilesLoader`)
hold file paths and plain values, so the plates pickle small.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import tifffile

from ..plate import Plate, PlateError, Site
from .tiff_axes import tcyx_shape, to_tcyx
from .tiff_folder import read_tiff_pixel_size

__all__ = ["ChannelFilesLoader", "TiffSeriesLoader", "open_channel_files", "open_single_image"]

SINGLE_WELL = "A01"


def _read_tcyx(path: str, axes: str) -> np.ndarray:
    return to_tcyx(tifffile.imread(path), axes)


@dataclass(frozen=True)
class TiffSeriesLoader:
    """``loader(site)``: one timepoint of a (multichannel) TIFF as ``(C, Y, X)``.

    Attributes
    ----------
    path : str
        The TIFF file.
    axes : str
        tifffile's axis letters of its first series.
    shape : tuple of int
        ``(T, C, Y, X)`` shape after :func:`~napari_hcs.io.tiff_axes.to_tcyx`.
    dtype : str
        Pixel type.
    """

    path: str
    axes: str
    shape: tuple[int, int, int, int]
    dtype: str

    def __call__(self, site: Site) -> da.Array:
        whole = da.from_delayed(
            dask.delayed(_read_tcyx)(self.path, self.axes), shape=self.shape, dtype=self.dtype
        )
        return whole[site.timepoint]


@dataclass(frozen=True)
class ChannelFilesLoader:
    """``loader(site)``: one 2-D TIFF per channel, stacked as ``(C, Y, X)``."""

    paths: tuple[str, ...]
    shape: tuple[int, int]
    dtype: str

    def __call__(self, site: Site) -> da.Array:
        return da.stack([
            da.from_delayed(dask.delayed(tifffile.imread)(path, key=0), shape=self.shape, dtype=self.dtype)
            for path in self.paths
        ])


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


def open_single_image(path: str | os.PathLike, *, channel_names: list[str] | None = None) -> Plate:
    """Open one multichannel TIFF / OME-TIFF (or a grey TIFF) as a one-well plate.

    Channel names come from OME metadata, else ``channel_names``, else
    ``channel_0``... A time axis becomes timepoints; a z axis takes its first plane.

    Raises
    ------
    PlateError
        If the file is not a readable TIFF.

    Examples
    --------
    >>> ht29 = open_single_image(sample_path("ht29"))
    >>> ht29.wells, ht29.channels, ht29.site_array(ht29.site("A01")).shape
    (['A01'], ['DNA', 'PH3', 'actin'], (3, 512, 512))
    """
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape, dtype = series.axes, series.shape, series.dtype
            names = _ome_channel_names(tif)
    except Exception as error:
        raise PlateError(f"Could not read TIFF {path}: {error}") from None
    try:
        tcyx = tcyx_shape(shape, axes)
    except ValueError as error:
        raise PlateError(f"Could not read TIFF {path}: {error}") from None
    n_time, n_channels = tcyx[:2]
    names = channel_names or names
    if not names or len(names) != n_channels:
        if channel_names:
            raise PlateError(
                f"{path} has {n_channels} channel(s); {len(channel_names)} channel name(s) given."
            )
        names = [f"channel_{i}" for i in range(n_channels)]

    sites = [Site(SINGLE_WELL, 0, t) for t in range(n_time)]
    return Plate(
        name=path.stem.removesuffix(".ome"),
        channels=list(names),
        sites={SINGLE_WELL: sites},
        loader=TiffSeriesLoader(str(path), axes, tuple(tcyx), np.dtype(dtype).str),
        shape=tcyx[-2:],
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
    return Plate(
        name=paths[0].parent.name,
        channels=list(names),
        sites={SINGLE_WELL: [Site(SINGLE_WELL, 0, 0)]},
        loader=ChannelFilesLoader(tuple(str(p) for p in paths), shape, np.dtype(dtype).str),
        shape=shape,
        dtype=dtype,
        layout=(1, 1),
        pixel_size=read_tiff_pixel_size(paths[0]),
        source=str(paths[0].parent),
    )
