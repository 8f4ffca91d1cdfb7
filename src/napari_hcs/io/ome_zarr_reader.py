"""Reading OME-Zarr HCS plates (NGFF plate/well spec) lazily.

Opening reads the plate metadata and the metadata of the first image only; the
pixels of a site are read when its dask array is computed. The loaders a plate
gets (:class:`OmeZarrPixels`, :class:`OmeZarrPyramid`, :class:`OmeZarrLabels`)
hold the store path and plain values, so the plate pickles small and another
process reopens the store on its first read.

napari-hcs keeps channel names, timepoints and well annotations of its own under
the root attribute ``napari_hcs``, so that a round trip keeps them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import pandas as pd
import zarr

from ..chunks import CheckedArray, corrupt_metadata_file
from ..plate import Plate, PlateError, Site, row_label
from .ngff import axis_names, ome_attrs

__all__ = ["OmeZarrLabels", "OmeZarrPixels", "OmeZarrPyramid", "OmeZarrSites", "open_ome_zarr_plate"]


@dataclass(frozen=True)
class OmeZarrSites:
    """Where each site's image lies in an OME-Zarr plate store.

    Attributes
    ----------
    path : str
        The store.
    well_paths : dict of str to str
        Canonical well name to the well's group path (``B/4``).
    fields : tuple of str
        Image paths of the fields, indexed by field number.
    levels : tuple of str
        Array paths of the pyramid levels, full resolution first.
    axes : tuple of str
        Axis names of the images (``c, y, x`` or ``t, c, y, x``).
    timepoints : tuple of int
        Timepoint numbers, in the order of the ``t`` axis.
    all_chunks_stored : bool
        The writer stored every chunk (napari-hcs does), so a chunk that is not
        stored is missing, not a chunk of fill value that zarr left out.
    """

    path: str
    well_paths: dict[str, str]
    fields: tuple[str, ...]
    levels: tuple[str, ...]
    axes: tuple[str, ...]
    timepoints: tuple[int, ...]
    all_chunks_stored: bool = False

    def root(self) -> zarr.Group:
        """Return the store's root group, opened once per process."""
        handle = self.__dict__.get("_root")
        if handle is None:
            handle = zarr.open_group(self.path, mode="r")
            object.__setattr__(self, "_root", handle)
        return handle

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_root"}

    def image_path(self, site: Site) -> str:
        """Return the group path of a site's image (``B/4/0``)."""
        return f"{self.well_paths[site.well]}/{self.fields[site.field]}"

    def time_index(self, site: Site) -> int:
        return self.timepoints.index(site.timepoint)

    def level(self, site: Site, level: str, *, checked: bool = False) -> da.Array:
        """Return one pyramid level of a site as a lazy ``(C, Y, X)`` array.

        With ``checked``, computing it raises naming the chunk file when a chunk
        it needs is missing or corrupt (:func:`napari_hcs.chunks.read_checked`).
        """
        key = f"{self.image_path(site)}/{level}"
        try:
            array = self.root()[key]
        except KeyError:
            raise PlateError(f"Site {site.name}: {self.path}/{key} does not exist.") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise _metadata_error(Path(self.path), error) from None
        if checked:
            source = da.from_array(CheckedArray(array, f"well {site.well}, site {site.name}",
                                                require_stored=self.all_chunks_stored),
                                   chunks=array.chunks, asarray=True, name=f"{self.path}/{key}")
        else:
            source = da.from_zarr(array)
        data = _select(source, self.axes, self.time_index(site), ("c", "y", "x"))
        return data if "c" in self.axes else data[None]


@dataclass(frozen=True)
class OmeZarrPixels:
    """``loader(site)``: the full-resolution ``(C, Y, X)`` pixels of a site."""

    sites: OmeZarrSites

    def __call__(self, site: Site) -> da.Array:
        return self.sites.level(site, self.sites.levels[0], checked=True)


@dataclass(frozen=True)
class OmeZarrPyramid:
    """``pyramid_loader(site)``: every stored level of a site, full resolution first."""

    sites: OmeZarrSites

    def __call__(self, site: Site) -> list[da.Array]:
        return [self.sites.level(site, level) for level in self.sites.levels]


@dataclass(frozen=True)
class OmeZarrLabels:
    """``label_loader(site)``: the NGFF image-labels stored with a site, name -> ``(Y, X)``."""

    sites: OmeZarrSites

    def __call__(self, site: Site) -> dict[str, da.Array]:
        root = self.sites.root()
        base = f"{self.sites.image_path(site)}/labels"
        if base not in root:
            return {}
        result = {}
        for name in ome_attrs(root[base])[0].get("labels", []):
            multiscale = ome_attrs(root[f"{base}/{name}"])[0]["multiscales"][0]
            level = multiscale["datasets"][0]["path"]
            array = da.from_zarr(root[f"{base}/{name}/{level}"])
            result[name] = _select(array, axis_names(multiscale), self.sites.time_index(site), ("y", "x"))
        return result


def _select(array, axes, timepoint: int, keep: tuple[str, ...]):
    index = []
    for axis in axes:
        if axis in keep:
            index.append(slice(None))
        elif axis == "t":
            index.append(timepoint)
        else:
            index.append(0)
    return array[tuple(index)]


def open_ome_zarr_plate(path: str | os.PathLike) -> Plate:
    """Open an OME-Zarr HCS plate lazily (metadata only; no pixel is read).

    Raises
    ------
    PlateError
        If the store holds no plate metadata or its wells hold no images.
    """
    path = Path(path)
    try:
        return _open_plate(path)
    except (ValueError, UnicodeDecodeError) as error:
        if isinstance(error, PlateError):
            raise
        raise _metadata_error(path, error) from None


def _metadata_error(path: Path, error: Exception) -> PlateError:
    """A PlateError naming the metadata file of ``path`` that does not decode."""
    bad = corrupt_metadata_file(path)
    if bad is None:
        return PlateError(f"{path} is not a readable Zarr store: {type(error).__name__}: {error}")
    return PlateError(f"{bad} is not valid JSON ({type(error).__name__}: {error}); the store "
                      f"{path} is damaged: write it again.")


def _open_plate(path: Path) -> Plate:
    try:
        root = zarr.open_group(str(path), mode="r")
    except (ValueError, UnicodeDecodeError):
        raise
    except Exception as error:
        raise PlateError(f"{path} is not a readable Zarr store: {error}") from None
    ome, _ = ome_attrs(root)
    if "plate" not in ome:
        raise PlateError(f"{path} holds no OME-Zarr plate metadata (no 'plate' attribute).")
    plate_meta = ome["plate"]
    extra = root.attrs.asdict().get("napari_hcs", {})
    well_paths = {
        f"{row_label(well['rowIndex'])}{well['columnIndex'] + 1:02d}": well["path"]
        for well in plate_meta["wells"]
    }
    if not well_paths:
        raise PlateError(f"Plate {path} lists no wells.")

    first_well = next(iter(well_paths.values()))
    fields = _well_fields(root, first_well, path)
    image_meta, _ = ome_attrs(root[f"{first_well}/{fields[0]}"])
    multiscale = image_meta["multiscales"][0]
    axes = axis_names(multiscale)
    levels = [d["path"] for d in multiscale["datasets"]]
    array = root[f"{first_well}/{fields[0]}/{levels[0]}"]
    n_time = array.shape[axes.index("t")] if "t" in axes else 1
    timepoints = extra.get("timepoints") or list(range(n_time))
    if len(timepoints) != n_time:
        timepoints = list(range(n_time))
    sites = {}
    for name, well_path in well_paths.items():
        well_fields = fields if plate_meta.get("field_count") else _well_fields(root, well_path, path)
        sites[name] = [Site(name, index, t) for t in timepoints for index in range(len(well_fields))]

    located = OmeZarrSites(
        path=str(path), well_paths=well_paths, fields=tuple(fields), levels=tuple(levels),
        axes=tuple(axes), timepoints=tuple(timepoints),
        all_chunks_stored=bool(extra.get("all_chunks_stored")),
    )
    plate = Plate(
        name=plate_meta.get("name") or path.name.removesuffix(".zarr"),
        channels=list(extra.get("channels") or _omero_channels(image_meta, array.shape, axes)),
        sites=sites,
        loader=OmeZarrPixels(located),
        shape=(array.shape[axes.index("y")], array.shape[axes.index("x")]),
        dtype=array.dtype,
        layout=(len(plate_meta["rows"]), len(plate_meta["columns"])),
        pixel_size=pixel_size(multiscale),
        source=str(path),
        label_loader=OmeZarrLabels(located),
        pyramid_loader=OmeZarrPyramid(located),
    )
    _restore_annotations(plate, extra.get("annotations", {}))
    return plate


def _well_fields(root: zarr.Group, well_path: str, path: Path) -> list[str]:
    try:
        images = ome_attrs(root[well_path])[0]["well"]["images"]
    except KeyError:
        raise PlateError(f"Well {well_path} of {path} has no well metadata (no 'well' attribute).")
    if not images:
        raise PlateError(f"Well {well_path} of {path} lists no images.")
    return [image["path"] for image in images]


def _omero_channels(image_meta: dict, shape, axes) -> list[str]:
    labels = [c.get("label") for c in image_meta.get("omero", {}).get("channels", [])]
    n_channels = shape[axes.index("c")] if "c" in axes else 1
    if len(labels) == n_channels and all(labels):
        return labels
    return [f"channel_{i}" for i in range(n_channels)]


def pixel_size(multiscale: dict) -> float | None:
    """Return the x pixel size in micrometres of a multiscale's full resolution, or None."""
    axes = axis_names(multiscale)
    x_meta = multiscale["axes"][axes.index("x")]
    unit = x_meta.get("unit", "") if isinstance(x_meta, dict) else ""
    for transform in multiscale["datasets"][0].get("coordinateTransformations", []):
        if transform.get("type") == "scale" and unit in ("micrometer", ""):
            value = float(transform["scale"][axes.index("x")])
            return value if unit == "micrometer" or value != 1.0 else None
    return None


def _restore_annotations(plate: Plate, annotations: dict) -> None:
    if not annotations:
        return
    frame = pd.DataFrame.from_dict(annotations, orient="index")
    frame.index.name = "well"
    plate.annotations = frame
