"""OME-Zarr HCS plates (NGFF plate/well spec): reading, writing, labels.

Two versions are supported: NGFF 0.4 on Zarr format 2, and NGFF 0.5 on Zarr
format 3 (metadata under the ``ome`` attribute). Each field of a well is an
image with axes ``(c, y, x)``, or ``(t, c, y, x)`` when the plate has several
timepoints, stored as a multiscale pyramid. Segmentation labels go under
``<well>/<field>/labels/<name>`` as NGFF image-labels.

napari-hcs keeps well annotations and channel names of its own under the root
attribute ``napari_hcs`` so that a round trip keeps them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import dask.array as da
import numpy as np
import zarr

from ..plate import Plate, PlateError, Site, row_label, well_position

__all__ = [
    "create_plate_store",
    "is_ome_zarr_plate",
    "open_ome_zarr_plate",
    "write_plate",
    "write_site",
    "write_site_labels",
]

DEFAULT_COLORS = ["0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF"]


def _ome_attrs(group: zarr.Group) -> tuple[dict, str]:
    attrs = group.attrs.asdict()
    if "ome" in attrs:
        return attrs["ome"], attrs["ome"].get("version", "0.5")
    return attrs, None


def is_ome_zarr_plate(path: str | os.PathLike) -> bool:
    """Return True when ``path`` is a Zarr group holding NGFF plate metadata."""
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:
        return False
    return "plate" in _ome_attrs(group)[0]


# -- reading ------------------------------------------------------------------


def open_ome_zarr_plate(path: str | os.PathLike) -> Plate:
    """Open an OME-Zarr HCS plate lazily (metadata only; no pixel is read).

    Raises
    ------
    PlateError
        If the store holds no plate metadata or its wells hold no images.
    """
    path = Path(path)
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as error:
        raise PlateError(f"{path} is not a readable Zarr store: {error}") from None
    ome, version = _ome_attrs(root)
    if "plate" not in ome:
        raise PlateError(f"{path} holds no OME-Zarr plate metadata (no 'plate' attribute).")
    plate_meta = ome["plate"]
    version = version or plate_meta.get("version", "0.4")
    rows = [r["name"] for r in plate_meta["rows"]]
    columns = [c["name"] for c in plate_meta["columns"]]
    extra = root.attrs.asdict().get("napari_hcs", {})
    well_paths = {}
    for well in plate_meta["wells"]:
        name = f"{row_label(well['rowIndex'])}{well['columnIndex'] + 1:02d}"
        well_paths[name] = well["path"]
    if not well_paths:
        raise PlateError(f"Plate {path} lists no wells.")

    first_well = next(iter(well_paths.values()))
    fields = _well_fields(root, first_well, path)
    image_meta, _ = _ome_attrs(root[f"{first_well}/{fields[0]}"])
    axes = [a["name"] if isinstance(a, dict) else a for a in image_meta["multiscales"][0]["axes"]]
    level0 = image_meta["multiscales"][0]["datasets"][0]["path"]
    array = root[f"{first_well}/{fields[0]}/{level0}"]
    n_time = array.shape[axes.index("t")] if "t" in axes else 1
    channels = extra.get("channels") or _omero_channels(image_meta, array.shape, axes)

    field_counts = plate_meta.get("field_count")
    timepoints = extra.get("timepoints") or list(range(n_time))
    if len(timepoints) != n_time:
        timepoints = list(range(n_time))
    sites = {}
    for name, well_path in well_paths.items():
        well_fields = fields if field_counts else _well_fields(root, well_path, path)
        sites[name] = [
            Site(name, field_index, t) for t in timepoints for field_index in range(len(well_fields))
        ]

    plate = Plate(
        name=plate_meta.get("name") or path.name.removesuffix(".zarr"),
        channels=list(channels),
        sites=sites,
        loader=_make_loader(root, well_paths, fields, level0, axes, path, timepoints),
        shape=(array.shape[axes.index("y")], array.shape[axes.index("x")]),
        dtype=array.dtype,
        layout=(len(rows), len(columns)),
        pixel_size=_pixel_size(image_meta, axes),
        source=str(path),
        label_loader=_make_label_loader(root, well_paths, fields, timepoints),
        pyramid_loader=_make_pyramid_loader(
            root, well_paths, fields, _level_paths(image_meta), axes, timepoints
        ),
    )
    _restore_annotations(plate, extra.get("annotations", {}))
    return plate


def _well_fields(root: zarr.Group, well_path: str, path: Path) -> list[str]:
    try:
        meta, _ = _ome_attrs(root[well_path])
        images = meta["well"]["images"]
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


def _pixel_size(image_meta: dict, axes) -> float | None:
    dataset = image_meta["multiscales"][0]["datasets"][0]
    axes_meta = image_meta["multiscales"][0]["axes"]
    for transform in dataset.get("coordinateTransformations", []):
        if transform.get("type") == "scale":
            x_axis = axes.index("x")
            unit = axes_meta[x_axis].get("unit", "") if isinstance(axes_meta[x_axis], dict) else ""
            if unit in ("micrometer", ""):
                value = float(transform["scale"][x_axis])
                return value if unit == "micrometer" or value != 1.0 else None
    return None


def _select(array, axes: list[str], timepoint: int, keep: tuple[str, ...]):
    index = []
    for axis in axes:
        if axis in keep:
            index.append(slice(None))
        elif axis == "t":
            index.append(timepoint)
        else:
            index.append(0)
    return array[tuple(index)]


def _make_loader(root, well_paths, fields, level0, axes, path, timepoints) -> Callable:
    def load(site: Site):
        well_path = well_paths[site.well]
        key = f"{well_path}/{fields[site.field]}/{level0}"
        try:
            array = da.from_zarr(root[key])
        except KeyError:
            raise PlateError(f"Site {site.name}: {path}/{key} does not exist.") from None
        data = _select(array, axes, timepoints.index(site.timepoint), ("c", "y", "x"))
        return data if "c" in axes else data[None]

    return load


def _level_paths(image_meta: dict) -> list[str]:
    return [d["path"] for d in image_meta["multiscales"][0]["datasets"]]


def _make_pyramid_loader(root, well_paths, fields, levels, axes, timepoints) -> Callable:
    def load(site: Site) -> list:
        base = f"{well_paths[site.well]}/{fields[site.field]}"
        t = timepoints.index(site.timepoint)
        pyramid = []
        for level in levels:
            data = _select(da.from_zarr(root[f"{base}/{level}"]), axes, t, ("c", "y", "x"))
            pyramid.append(data if "c" in axes else data[None])
        return pyramid

    return load


def _make_label_loader(root, well_paths, fields, timepoints) -> Callable:
    def load(site: Site) -> dict:
        base = f"{well_paths[site.well]}/{fields[site.field]}/labels"
        if base not in root:
            return {}
        names = _ome_attrs(root[base])[0].get("labels", [])
        result = {}
        for name in names:
            meta, _ = _ome_attrs(root[f"{base}/{name}"])
            label_axes = [a["name"] for a in meta["multiscales"][0]["axes"]]
            level = meta["multiscales"][0]["datasets"][0]["path"]
            array = da.from_zarr(root[f"{base}/{name}/{level}"])
            result[name] = _select(array, label_axes, timepoints.index(site.timepoint), ("y", "x"))
        return result

    return load


def _restore_annotations(plate: Plate, annotations: dict) -> None:
    import pandas as pd

    if not annotations:
        return
    frame = pd.DataFrame.from_dict(annotations, orient="index")
    frame.index.name = "well"
    plate.annotations = frame


# -- writing ------------------------------------------------------------------


def _pyramid_shapes(shape: tuple[int, int], min_size: int) -> list[tuple[int, int]]:
    shapes = [tuple(shape)]
    while max(shapes[-1]) // 2 >= min_size:
        y, x = shapes[-1]
        shapes.append(((y + 1) // 2, (x + 1) // 2))
    return shapes


def _axes_meta(axes: list[str], pixel_size: float | None) -> list[dict]:
    meta = []
    for axis in axes:
        if axis == "t":
            meta.append({"name": "t", "type": "time"})
        elif axis == "c":
            meta.append({"name": "c", "type": "channel"})
        else:
            entry = {"name": axis, "type": "space"}
            if pixel_size:
                entry["unit"] = "micrometer"
            meta.append(entry)
    return meta


def _multiscales(axes, levels, pixel_size, name, version) -> dict:
    datasets = []
    for level in range(levels):
        scale = [1.0 if a in ("t", "c") else (pixel_size or 1.0) * 2**level for a in axes]
        datasets.append(
            {"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        )
    meta = {"axes": _axes_meta(axes, pixel_size), "datasets": datasets, "name": name}
    if version == "0.4":
        meta["version"] = "0.4"
    return meta


def _set_ome(group: zarr.Group, version: str, **values) -> None:
    if version == "0.5":
        current = group.attrs.asdict().get("ome", {"version": "0.5"})
        current.update(values)
        group.attrs["ome"] = current
    else:
        group.attrs.update(values)


def _channel_window(dtype: np.dtype) -> dict:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return {"min": int(info.min), "max": int(info.max), "start": 0, "end": int(info.max)}
    return {"min": 0.0, "max": 1.0, "start": 0.0, "end": 1.0}


def create_plate_store(
    path: str | os.PathLike,
    *,
    wells: list[str],
    n_fields: int,
    channels: list[str],
    shape: tuple[int, int],
    dtype,
    n_timepoints: int = 1,
    layout: tuple[int, int] | None = None,
    pixel_size: float | None = None,
    name: str | None = None,
    version: str = "0.4",
    chunk_size: int = 1024,
    min_level_size: int = 256,
    annotations: dict | None = None,
    timepoints: list[int] | None = None,
) -> zarr.Group:
    """Create an empty OME-Zarr HCS plate: full metadata, arrays without chunks.

    Chunks never written read back as zeros, so a large plate can be laid out
    at once and filled site by site with :func:`write_site`.

    Parameters
    ----------
    path : path
        Store to create (overwritten).
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
    layout : (int, int), optional
        Plate rows and columns; inferred from the wells when not given.
    version : {"0.4", "0.5"}
        NGFF version: 0.4 writes Zarr format 2, 0.5 writes Zarr format 3.

    Returns
    -------
    zarr.Group
        The root group of the new plate.
    """
    if version not in ("0.4", "0.5"):
        raise ValueError(f"NGFF version must be '0.4' or '0.5', not {version!r}.")
    from ..plate import infer_layout

    layout = layout or infer_layout(wells)
    dtype = np.dtype(dtype)
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    row_names = [row_label(r) for r in range(layout[0])]
    col_names = [str(c + 1) for c in range(layout[1])]
    positions = {w: well_position(w) for w in wells}
    well_entries = [
        {"path": f"{row_names[r]}/{col_names[c]}", "rowIndex": r, "columnIndex": c}
        for w, (r, c) in positions.items()
    ]
    plate_meta = {
        "name": name or Path(path).name.removesuffix(".zarr"),
        "rows": [{"name": n} for n in row_names],
        "columns": [{"name": n} for n in col_names],
        "wells": well_entries,
        "field_count": n_fields,
        "acquisitions": [{"id": 0}],
    }
    if version == "0.4":
        plate_meta["version"] = "0.4"
    _set_ome(root, version, plate=plate_meta)
    root.attrs["napari_hcs"] = {
        "channels": list(channels),
        "timepoints": list(timepoints or range(n_timepoints)),
        "annotations": annotations or {},
    }

    axes = (["t"] if n_timepoints > 1 else []) + ["c", "y", "x"]
    levels = _pyramid_shapes(tuple(shape), min_level_size)
    omero = {
        "channels": [
            {
                "label": channel,
                "color": DEFAULT_COLORS[i % len(DEFAULT_COLORS)],
                "active": True,
                "window": _channel_window(dtype),
            }
            for i, channel in enumerate(channels)
        ]
    }
    if version == "0.4":
        omero["version"] = "0.4"
    lead = ([n_timepoints] if n_timepoints > 1 else []) + [len(channels)]
    for entry in well_entries:
        well_group = root.require_group(entry["path"])
        well_meta = {"images": [{"path": str(f), "acquisition": 0} for f in range(n_fields)]}
        if version == "0.4":
            well_meta["version"] = "0.4"
        _set_ome(well_group, version, well=well_meta)
        for field_index in range(n_fields):
            image = well_group.require_group(str(field_index))
            _set_ome(
                image,
                version,
                multiscales=[_multiscales(axes, len(levels), pixel_size, str(field_index), version)],
                omero=omero,
            )
            for level, (ly, lx) in enumerate(levels):
                image.create_array(
                    str(level),
                    shape=tuple(lead) + (ly, lx),
                    chunks=(1,) * len(lead) + (min(chunk_size, ly), min(chunk_size, lx)),
                    dtype=dtype,
                    fill_value=0,
                    **_dimension_names(version, axes),
                )
    return root


def _dimension_names(version: str, axes: list[str]) -> dict:
    if version == "0.5":
        return {"dimension_names": axes}
    return {"chunk_key_encoding": {"name": "v2", "separator": "/"}}


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
    ome, _ = _ome_attrs(root)
    r, c = well_position(well)
    for entry in ome["plate"]["wells"]:
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
    levels = sorted((k for k in image.array_keys()), key=int)
    level_data = np.asarray(data)
    for level in levels:
        array = image[level]
        target = array.shape[-2:]
        if level_data.shape[-2:] != target:
            level_data = _downsample(level_data, target, labels=False)
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
    """Write a label image of a site as NGFF image-labels ``labels/<name>``.

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
    """
    root = store if isinstance(store, zarr.Group) else zarr.open_group(str(store), mode="r+")
    _, version = _ome_attrs(root)
    version = version or "0.4"
    image = root[f"{_well_path(root, site.well)}/{site.field}"]
    image_meta, _ = _ome_attrs(image)
    image_axes = [a["name"] for a in image_meta["multiscales"][0]["axes"]]
    level0 = image[image_meta["multiscales"][0]["datasets"][0]["path"]]
    n_time = n_timepoints or (level0.shape[0] if "t" in image_axes else 1)
    axes = (["t"] if "t" in image_axes else []) + ["y", "x"]
    labels_group = image.require_group("labels")
    existing = _ome_attrs(labels_group)[0].get("labels", [])
    if name not in existing:
        _set_ome(labels_group, version, labels=existing + [name])
    shapes = [tuple(image[d["path"]].shape[-2:]) for d in image_meta["multiscales"][0]["datasets"]]
    label_group = labels_group.require_group(name)
    if not _ome_attrs(label_group)[0].get("multiscales"):
        pixel_size = _pixel_size(image_meta, image_axes)
        _set_ome(
            label_group,
            version,
            multiscales=[_multiscales(axes, len(shapes), pixel_size, name, version)],
            **{"image-label": {"source": {"image": "../../"}, **({"version": "0.4"} if version == "0.4" else {})}},
        )
    level_data = np.asarray(labels)
    dtype = np.uint32 if level_data.max(initial=0) > np.iinfo(np.uint16).max else np.uint16
    for level, shape in enumerate(shapes):
        if level_data.shape != shape:
            level_data = _downsample(level_data, shape, labels=True)
        key = str(level)
        if key not in label_group:
            lead = (n_time,) if "t" in axes else ()
            label_group.create_array(
                key,
                shape=lead + shape,
                chunks=(1,) * len(lead) + tuple(min(1024, s) for s in shape),
                dtype=dtype,
                fill_value=0,
                **_dimension_names(version, axes),
            )
        array = label_group[key]
        if array.ndim == 3:
            array[_time_index(root, site.timepoint)] = level_data.astype(array.dtype)
        else:
            array[...] = level_data.astype(array.dtype)


def write_plate(
    plate: Plate,
    path: str | os.PathLike,
    *,
    version: str = "0.4",
    chunk_size: int = 1024,
    progress: Callable[[int, int, Site], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Write any plate to an OME-Zarr HCS plate, with pyramids and annotations.

    Parameters
    ----------
    plate : Plate
        Source plate (read site by site: memory stays at one site).
    path : path
        Output store (``.zarr``); overwritten.
    version : {"0.4", "0.5"}
        NGFF version (0.4: Zarr v2, 0.5: Zarr v3).
    progress : callable, optional
        ``progress(done, total, site)`` after each site.
    cancel : callable, optional
        Returns True to stop after the current site.

    Returns
    -------
    Path
        The written store.
    """
    path = Path(path)
    fields = max(len({s.field for s in sites}) for sites in plate.sites.values())
    annotations = {
        w: {k: _plain(v) for k, v in plate.well_annotations(w).items()} for w in plate.annotations.index
    }
    root = create_plate_store(
        path,
        wells=plate.wells,
        n_fields=fields,
        channels=plate.channels,
        shape=plate.shape,
        dtype=plate.dtype,
        n_timepoints=len(plate.timepoints),
        layout=plate.layout,
        pixel_size=plate.pixel_size,
        name=plate.name,
        version=version,
        chunk_size=chunk_size,
        annotations=annotations,
        timepoints=plate.timepoints,
    )
    field_numbers = {w: sorted({s.field for s in sites}) for w, sites in plate.sites.items()}
    total = plate.n_sites()
    for done, site in enumerate(plate.iter_sites(), start=1):
        if cancel is not None and cancel():
            raise InterruptedError(f"Writing {path} was cancelled after {done - 1} of {total} sites.")
        target = Site(site.well, field_numbers[site.well].index(site.field), site.timepoint)
        write_site(root, target, plate.read_site(site))
        for name, labels in plate.site_labels(site).items():
            write_site_labels(root, target, name, np.asarray(labels))
        if progress is not None:
            progress(done, total, site)
    return path


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
