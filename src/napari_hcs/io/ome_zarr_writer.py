"""Writing OME-Zarr HCS plates: NGFF 0.4 on Zarr format 2, NGFF 0.5 on Zarr format 3.

The plate, well, image (multiscales, omero) and image-label metadata are written
by ome-zarr-py (:mod:`ome_zarr.writer`); the arrays are laid out here, one per
pyramid level, so that a plate can be created whole and filled site by site.
Each field of a well is an image with axes ``(c, y, x)``, or ``(t, c, y, x)``
when the plate has several timepoints. Labels go under
``<well>/<field>/labels/<name>``.

:func:`write_plate` writes the whole plate into a hidden store beside its target
and moves it into place at the end (:func:`napari_hcs.io.outputs.atomic_folder`):
an interrupted or failed write leaves the target as it was. It refuses a target
that is, holds or lies inside the source, and replaces an existing target only
when it is a plate napari-hcs wrote (``writer`` in the root attribute
``napari_hcs``), an empty folder, or ``overwrite=True`` is given.

Examples
--------
>>> store = write_plate(plate, tmp_path / "plate.zarr", version="0.5")
>>> from napari_hcs.io import open_plate
>>> open_plate(store).channels
['Alexa488', 'DAPI', 'mCherry']
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import zarr

from ..cancel import CancelCheck, check_cancel
from ..plate import Plate, PlateError, Site, infer_layout, row_label, well_position
from .labels import label_dtype
from .ngff import axis_names, ngff_format, ome_attrs
from .ome_zarr_reader import pixel_size as multiscale_pixel_size
from .outputs import atomic_folder, check_outputs, check_replaceable, root_attributes

if TYPE_CHECKING:
    from ome_zarr.format import Format

__all__ = [
    "PlateStoreSpec", "check_plate_output", "create_plate_store", "is_napari_hcs_plate", "write_plate",
    "write_site", "write_site_labels",
]

#: The ``writer`` value of the root attribute ``napari_hcs`` of the plates written here.
WRITER = "napari-hcs"

def _ngff_writer():
    """ome-zarr-py's writer module, imported on first use (it loads scikit-image and dask)."""
    with warnings.catch_warnings():
        # ome-zarr-py builds its deprecated Scaler as a default argument on import.
        warnings.simplefilter("ignore", DeprecationWarning)
        from ome_zarr import writer
    return writer


DEFAULT_COLORS = ["0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF"]


@dataclass(frozen=True)
class PlateStoreSpec:
    """What an OME-Zarr plate store holds, for :func:`create_plate_store`.

    Attributes
    ----------
    wells : list of str
        Canonical well names (``A01`` style).
    n_fields : int
        Fields per well.
    channels : list of str
        Channel names (stored as omero labels).
    shape : (int, int)
        ``(Y, X)`` of every field.
    dtype : numpy dtype
        Pixel type.
    n_timepoints : int
        Timepoints; above 1 the image axes are ``(t, c, y, x)``.
    timepoints : list of int, optional
        Timepoint numbers; ``0 .. n_timepoints - 1`` by default.
    layout : (int, int), optional
        Plate rows and columns; inferred from the wells when not given.
    pixel_size : float, optional
        Micrometres per pixel.
    name : str, optional
        Plate name; the store's name by default.
    version : {"0.4", "0.5"}
        NGFF version: 0.4 writes Zarr format 2, 0.5 writes Zarr format 3.
    chunk_size : int
        Chunk edge in pixels.
    min_level_size : int
        The pyramid halves the image while its larger side stays at least this.
    annotations : dict, optional
        Well -> ``{column: value}``, kept under the ``napari_hcs`` attribute.
    """

    wells: list[str]
    n_fields: int
    channels: list[str]
    shape: tuple[int, int]
    dtype: object
    n_timepoints: int = 1
    timepoints: list[int] | None = None
    layout: tuple[int, int] | None = None
    pixel_size: float | None = None
    name: str | None = None
    version: str = "0.4"
    chunk_size: int = 1024
    min_level_size: int = 256
    annotations: dict | None = None

    @property
    def axes(self) -> list[str]:
        return (["t"] if self.n_timepoints > 1 else []) + ["c", "y", "x"]


def create_plate_store(path: str | os.PathLike, spec: PlateStoreSpec | None = None, **options) -> zarr.Group:
    """Create an empty OME-Zarr HCS plate: full metadata, arrays without chunks.

    Chunks never written read back as zeros, so a large plate can be laid out
    at once and filled site by site with :func:`write_site`.

    Parameters
    ----------
    path : path
        Store to create (overwritten).
    spec : PlateStoreSpec, optional
        What the store holds; built from ``options`` (the fields of
        :class:`PlateStoreSpec`) when not given.

    Returns
    -------
    zarr.Group
        The root group of the new plate.

    Examples
    --------
    >>> root = create_plate_store(tmp_path / "empty.zarr", wells=["B02"], n_fields=1,
    ...                           channels=["DAPI"], shape=(64, 64), dtype="uint16")
    >>> from napari_hcs.io import open_plate
    >>> int(open_plate(tmp_path / "empty.zarr").read_site(Site("B02")).max())
    0
    """
    spec = spec or PlateStoreSpec(**options)
    fmt = ngff_format(spec.version)
    layout = spec.layout or infer_layout(spec.wells)
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    rows = [row_label(r) for r in range(layout[0])]
    columns = [str(c + 1) for c in range(layout[1])]
    well_paths = [f"{rows[r]}/{columns[c]}" for r, c in map(well_position, spec.wells)]
    _ngff_writer().write_plate_metadata(
        root, rows, columns, well_paths, fmt=fmt, acquisitions=[{"id": 0}],
        field_count=spec.n_fields, name=spec.name or Path(path).name.removesuffix(".zarr"),
    )
    root.attrs["napari_hcs"] = {
        "writer": WRITER,
        "all_chunks_stored": True,
        "channels": list(spec.channels),
        "timepoints": list(spec.timepoints or range(spec.n_timepoints)),
        "annotations": spec.annotations or {},
    }
    levels = _pyramid_shapes(tuple(spec.shape), spec.min_level_size)
    omero = _omero(spec.channels, np.dtype(spec.dtype))
    for well_path in well_paths:
        well = root.require_group(well_path)
        images = [{"path": str(f), "acquisition": 0} for f in range(spec.n_fields)]
        _ngff_writer().write_well_metadata(well, images, fmt=fmt)
        for field_index in range(spec.n_fields):
            image = well.require_group(str(field_index))
            _ngff_writer().write_multiscales_metadata(
                image, _datasets(spec.axes, len(levels), spec.pixel_size), fmt=fmt,
                axes=_axes_meta(spec.axes, spec.pixel_size), name=str(field_index),
                metadata={"omero": omero},
            )
            _create_level_arrays(image, spec, levels, fmt)
    return root


def _create_level_arrays(image: zarr.Group, spec: PlateStoreSpec, levels, fmt: Format) -> None:
    lead = ([spec.n_timepoints] if spec.n_timepoints > 1 else []) + [len(spec.channels)]
    for level, (ly, lx) in enumerate(levels):
        image.create_array(
            str(level),
            shape=tuple(lead) + (ly, lx),
            chunks=(1,) * len(lead) + (min(spec.chunk_size, ly), min(spec.chunk_size, lx)),
            dtype=np.dtype(spec.dtype),
            fill_value=0,
            # every chunk is stored, zeros too, so that a chunk not stored is known to be missing
            config={"write_empty_chunks": True},
            **_array_naming(fmt, spec.axes),
        )


def _pyramid_shapes(shape: tuple[int, int], min_size: int) -> list[tuple[int, int]]:
    shapes = [tuple(shape)]
    while max(shapes[-1]) // 2 >= min_size:
        y, x = shapes[-1]
        shapes.append(((y + 1) // 2, (x + 1) // 2))
    return shapes


def _axes_meta(axes: list[str], pixel_size: float | None) -> list[dict]:
    kinds = {"t": "time", "c": "channel"}
    meta = []
    for axis in axes:
        entry = {"name": axis, "type": kinds.get(axis, "space")}
        if axis not in kinds and pixel_size:
            entry["unit"] = "micrometer"
        meta.append(entry)
    return meta


def _datasets(axes: list[str], n_levels: int, pixel_size: float | None) -> list[dict]:
    datasets = []
    for level in range(n_levels):
        scale = [1.0 if a in ("t", "c") else (pixel_size or 1.0) * 2**level for a in axes]
        datasets.append(
            {"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        )
    return datasets


def _omero(channels: list[str], dtype: np.dtype) -> dict:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        window = {"min": int(info.min), "max": int(info.max), "start": 0, "end": int(info.max)}
    else:
        window = {"min": 0.0, "max": 1.0, "start": 0.0, "end": 1.0}
    return {
        "channels": [
            {"label": channel, "color": DEFAULT_COLORS[i % len(DEFAULT_COLORS)], "active": True,
             "window": dict(window)}
            for i, channel in enumerate(channels)
        ]
    }


def _array_naming(fmt: Format, axes: list[str]) -> dict:
    if fmt.zarr_format == 3:
        return {"dimension_names": axes}
    return {"chunk_key_encoding": {"name": "v2", "separator": "/"}}


def _store_format(root: zarr.Group) -> Format:
    return ngff_format(ome_attrs(root)[1] or "0.4")


def _downsample(image: np.ndarray, shape: tuple[int, int], labels: bool) -> np.ndarray:
    if labels:
        return image[..., ::2, ::2][..., : shape[0], : shape[1]]
    y, x = image.shape[-2:]
    padded = image
    if y % 2 or x % 2:
        pad = [(0, 0)] * (image.ndim - 2) + [(0, y % 2), (0, x % 2)]
        padded = np.pad(image, pad, mode="edge")
    blocks = padded.reshape(padded.shape[:-2] + (padded.shape[-2] // 2, 2, padded.shape[-1] // 2, 2))
    return blocks.mean(axis=(-3, -1)).astype(image.dtype)


def _well_path(root: zarr.Group, well: str) -> str:
    r, c = well_position(well)
    for entry in ome_attrs(root)[0]["plate"]["wells"]:
        if entry["rowIndex"] == r and entry["columnIndex"] == c:
            return entry["path"]
    raise PlateError(f"Well {well} is not in the plate metadata of {root.store}.")


def _time_index(root: zarr.Group, timepoint: int) -> int:
    timepoints = root.attrs.asdict().get("napari_hcs", {}).get("timepoints")
    if timepoints and timepoint in timepoints:
        return timepoints.index(timepoint)
    return timepoint


def write_site(root: zarr.Group, site: Site, data: np.ndarray) -> None:
    """Write one site's ``(C, Y, X)`` pixels into every pyramid level of its image."""
    image = root[f"{_well_path(root, site.well)}/{site.field}"]
    t = _time_index(root, site.timepoint)
    level_data = np.asarray(data)
    for level in sorted(image.array_keys(), key=int):
        array = image[level].with_config({"write_empty_chunks": True})
        if level_data.shape[-2:] != array.shape[-2:]:
            level_data = _downsample(level_data, array.shape[-2:], labels=False)
        if array.ndim == 4:
            array[t] = level_data
        else:
            array[...] = level_data


def write_site_labels(
    store: str | os.PathLike | zarr.Group,
    site: Site,
    name: str,
    labels: np.ndarray,
    *,
    n_timepoints: int | None = None,
) -> None:
    """Write a label image of a site into an OME-Zarr plate as NGFF image-labels.

    Parameters
    ----------
    store : path or zarr.Group
        The plate store (opened for writing when a path).
    site : Site
        Site whose image receives the labels.
    name : str
        Label name, e.g. ``"nuclei"`` or ``"cells"``.
    labels : ndarray
        ``(Y, X)`` integer labels.
    n_timepoints : int, optional
        Length of the label arrays' time axis; the image's by default.
    """
    root = store if isinstance(store, zarr.Group) else zarr.open_group(str(store), mode="r+")
    fmt = _store_format(root)
    image = root[f"{_well_path(root, site.well)}/{site.field}"]
    multiscale = ome_attrs(image)[0]["multiscales"][0]
    image_axes = axis_names(multiscale)
    shapes = [tuple(image[d["path"]].shape[-2:]) for d in multiscale["datasets"]]
    axes = (["t"] if "t" in image_axes else []) + ["y", "x"]
    lead = (n_timepoints or image[multiscale["datasets"][0]["path"]].shape[0],) if "t" in axes else ()
    labels_group = image.require_group("labels")
    label_group = labels_group.require_group(name)
    if not ome_attrs(label_group)[0].get("multiscales"):
        pixel_size = multiscale_pixel_size(multiscale)
        _ngff_writer().write_multiscales_metadata(
            label_group, _datasets(axes, len(shapes), pixel_size), fmt=fmt,
            axes=_axes_meta(axes, pixel_size), name=name,
        )
    if name not in ome_attrs(labels_group)[0].get("labels", []):
        _ngff_writer().write_label_metadata(labels_group, name, fmt=fmt, source={"image": "../../"})
    level_data = np.asarray(labels)
    for level, shape in enumerate(shapes):
        if level_data.shape != shape:
            level_data = _downsample(level_data, shape, labels=True)
        if str(level) not in label_group:
            label_group.create_array(
                str(level), shape=lead + shape, chunks=(1,) * len(lead) + tuple(min(1024, s) for s in shape),
                dtype=label_dtype(level_data), fill_value=0, **_array_naming(fmt, axes),
            )
        array = label_group[str(level)]
        target = _time_index(root, site.timepoint) if array.ndim == 3 else Ellipsis
        array[target] = level_data.astype(array.dtype)


def is_napari_hcs_plate(path: str | os.PathLike) -> bool:
    """Return True when ``path`` is an OME-Zarr plate that napari-hcs wrote.

    Plates of earlier versions, which carry ``channels`` but no ``writer`` in the
    root attribute ``napari_hcs``, are recognised too.

    Examples
    --------
    >>> is_napari_hcs_plate(write_plate(plate, tmp_path / "plate.zarr")), is_napari_hcs_plate(tmp_path)
    (True, False)
    """
    extra = root_attributes(path).get("napari_hcs")
    return isinstance(extra, dict) and (extra.get("writer") == WRITER or "channels" in extra)


def check_plate_output(
    path: str | os.PathLike,
    *,
    inputs: list,
    overwrite: bool = False,
    flag: str = "overwrite=True",
) -> None:
    """Refuse a plate output that is, holds or lies inside an input, or is not ours to replace.

    Raises
    ------
    napari_hcs.io.outputs.OutputRefused
        Naming the output and the input, or the existing output and ``flag``.
    """
    check_outputs([path], inputs)
    check_replaceable(path, overwrite=overwrite, ours=is_napari_hcs_plate,
                      what="an OME-Zarr plate written by napari-hcs", flag=flag)


def _plate_inputs(plate: Plate) -> list:
    """The files or folders a plate reads its pixels and layout from."""
    files = getattr(plate.loader, "paths", None)
    sources = list(files) if isinstance(files, (list, tuple)) else [plate.source]
    return sources + [plate.layout_source]


def write_plate(
    plate: Plate,
    path: str | os.PathLike,
    *,
    version: str = "0.4",
    chunk_size: int = 1024,
    overwrite: bool = False,
    progress: Callable[[int, int, Site], None] | None = None,
    cancel: CancelCheck = None,
) -> Path:
    """Write any plate to an OME-Zarr HCS plate, with pyramids, labels and annotations.

    Parameters
    ----------
    plate : Plate
        Source plate (read site by site: memory stays at one site).
    path : path
        Output store (``.zarr``). It appears whole when the plate is written, and
        is left as it was when writing fails or is cancelled.
    version : {"0.4", "0.5"}
        NGFF version (0.4: Zarr v2, 0.5: Zarr v3).
    chunk_size : int
        Chunk edge in pixels.
    overwrite : bool
        Replace an existing ``path`` that is not a plate napari-hcs wrote (such a
        plate, or an empty folder, is replaced anyway). The old content is removed
        only once the new store is complete.
    progress : callable, optional
        ``progress(done, total, site)`` after each site.
    cancel : callable or threading.Event, optional
        Checked before each site; stops with :class:`~napari_hcs.cancel.Cancelled`.

    Returns
    -------
    Path
        The written store.

    Raises
    ------
    napari_hcs.io.outputs.OutputRefused
        When ``path`` is, holds or lies inside the plate's source or layout table,
        or exists and may not be replaced; nothing is written then.

    Examples
    --------
    >>> notes = tmp_path / "notes"
    >>> _ = notes.mkdir(), (notes / "keep.txt").write_text("mine")
    >>> write_plate(plate, notes)
    Traceback (most recent call last):
    ...
    napari_hcs.io.outputs.OutputRefused: Output ...notes exists and is not an OME-Zarr plate written by napari-hcs; it is left as it is. Pass overwrite=True to replace it, or choose another output.
    >>> (notes / "keep.txt").read_text()
    'mine'
    """
    path = Path(path)
    check_plate_output(path, inputs=_plate_inputs(plate), overwrite=overwrite)
    with atomic_folder(path) as tmp:
        _write_plate_into(plate, tmp, name=plate.name or path.name.removesuffix(".zarr"), version=version,
                          chunk_size=chunk_size, progress=progress, cancel=cancel, shown=path)
    return path


def _write_plate_into(plate: Plate, path: Path, *, name: str, version: str, chunk_size: int,
                      progress, cancel: CancelCheck, shown: Path) -> None:
    field_numbers = {w: sorted({s.field for s in sites}) for w, sites in plate.sites.items()}
    annotations = {
        w: {k: _plain(v) for k, v in plate.well_annotations(w).items()} for w in plate.annotations.index
    }
    root = create_plate_store(path, PlateStoreSpec(
        wells=plate.wells, n_fields=max(len(f) for f in field_numbers.values()),
        channels=plate.channels, shape=plate.shape, dtype=plate.dtype,
        n_timepoints=len(plate.timepoints), timepoints=plate.timepoints, layout=plate.layout,
        pixel_size=plate.pixel_size, name=name, version=version, chunk_size=chunk_size,
        annotations=annotations,
    ))
    total = plate.n_sites()
    for done, site in enumerate(plate.iter_sites(), start=1):
        check_cancel(cancel, f"Writing {shown} was cancelled after {done - 1} of {total} sites; "
                     f"{shown} is left as it was.")
        target = Site(site.well, field_numbers[site.well].index(site.field), site.timepoint)
        write_site(root, target, plate.read_site(site))
        for name, labels in plate.site_labels(site).items():
            write_site_labels(root, target, name, np.asarray(labels))
        if progress is not None:
            progress(done, total, site)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
