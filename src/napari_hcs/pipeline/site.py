"""One site: segment, crop and measure, writing nothing.

:func:`process_site` reads a site's pixels, segments nuclei and cells
(:func:`napari_hcs.segmentation.segment_site`), cuts one crop per cell
(:func:`napari_hcs.crops.extract_crops`) and measures classical features
(:func:`napari_hcs.features.measure_cells`). It returns a :class:`SiteResult`.
Non-finite pixels are background (:func:`napari_hcs.finite.finite_image`) and
non-finite feature values are 0 (:func:`napari_hcs.finite.finite_features`),
each with a warning in the result.

Examples
--------
>>> from napari_hcs.samples import make_synthetic_plate
>>> from napari_hcs.segmentation import SegmentationParams
>>> small = make_synthetic_plate(n_rows=1, n_columns=1, n_sites=1, shape=(96, 96), n_cells=6)
>>> params = SegmentationParams(nuclei_channel="DNA", cell_channel="cytoplasm")
>>> result = process_site(small, small.site("A01"), params, features=False)
>>> result.crops.shape[1:], result.n_cells > 0
((3, 32, 32), True)
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..crops import cell_centroids, extract_crops
from ..features import measure_cells
from ..finite import finite_features, finite_image
from ..io import open_plate
from ..plate import Plate, PlateError, Site
from ..segmentation import SegmentationParams, segment_site

__all__ = [
    "ROW_COLUMNS",
    "SiteResult",
    "check_channels",
    "measure_site",
    "process_site",
    "read_pixels",
    "segmentation_params",
    "site_image",
]

#: Identity columns of the cell rows of a site.
ROW_COLUMNS = [
    "plate", "well", "site", "field", "timepoint", "label",
    "centroid_y", "centroid_x", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1",
    "nucleus_area", "cell_area",
]


@dataclass
class SiteResult:
    """Everything :func:`process_site` computed for one site.

    Attributes
    ----------
    site : Site
        The site.
    rows : DataFrame
        One row per cell (:data:`ROW_COLUMNS`): ``plate, well, site`` (index of
        the site within its well), ``field, timepoint, label, centroid_y,
        centroid_x``, cell bounding box ``bbox_y0, bbox_x0, bbox_y1, bbox_x1``
        (end exclusive), ``nucleus_area, cell_area`` (pixels).
    crops : ndarray
        ``(n_cells, C, S, S)`` float32 crops centred on the nuclei, in row order.
    nuclei, cells : ndarray
        ``(Y, X)`` int32 instance labels; a cell has the id of its nucleus.
    features : DataFrame or None
        ``label`` and ``feat_*`` columns in row order; None when not computed.
    warnings : list of str
        What went wrong without stopping the site (empty image, NaN pixels, ...).
    seconds : float
        Wall time spent on the site.
    cpu_seconds : float
        CPU time of the thread that processed the site (lower than
        ``seconds`` when the machine is busy with other work).
    """

    site: Site
    rows: pd.DataFrame
    crops: np.ndarray
    nuclei: np.ndarray
    cells: np.ndarray
    features: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def n_cells(self) -> int:
        return len(self.rows)


def segmentation_params(params: Any) -> SegmentationParams:
    """Return ``params`` (a :class:`SegmentationParams` or its dict) as SegmentationParams."""
    if isinstance(params, SegmentationParams):
        return params
    if isinstance(params, dict):
        return SegmentationParams.from_dict(params)
    raise TypeError(
        f"Segmentation parameters must be a SegmentationParams or a dict, got {type(params).__name__}."
    )


def check_channels(params: Any, channels: list[str], *, where: str = "the plate") -> None:
    """Raise a PlateError listing the channels when a segmentation channel is missing.

    Examples
    --------
    >>> check_channels({"nuclei_channel": "DNA"}, ["DAPI", "GFP"], where="plate P1")
    Traceback (most recent call last):
    ...
    napari_hcs.plate.PlateError: The nuclei channel 'DNA' is not on plate P1; channels are: DAPI, GFP.
    """
    params = segmentation_params(params)
    for role, name in (("nuclei", params.nuclei_channel), ("cell", params.cell_channel)):
        if name is None or name in channels:
            continue
        raise PlateError(
            f"The {role} channel {name!r} is not on {where}; channels are: {', '.join(channels)}."
        )


def read_pixels(plate: Plate, site: Site) -> np.ndarray:
    """Read a site's ``(C, Y, X)`` pixels with dask's synchronous scheduler.

    A worker must not open its own thread pool or reach a distributed client
    from inside a task.
    """
    array = plate.site_array(site)
    if hasattr(array, "compute"):
        array = array.compute(scheduler="synchronous")
    return np.asarray(array)


def site_image(image: np.ndarray, channels: list[str], where: str) -> tuple[np.ndarray, list[str]]:
    """Check a site's pixels are ``(C, Y, X)`` with one plane per channel; return them finite.

    Returns
    -------
    image : ndarray
        Non-finite pixels set to background (:func:`napari_hcs.finite.finite_image`).
    notes : list of str
        One note per channel that had non-finite pixels.
    """
    if image.ndim != 3:
        raise PlateError(f"Site {where}: expected a (C, Y, X) image, got shape {image.shape}.")
    if image.shape[0] != len(channels):
        raise PlateError(
            f"Site {where}: image has {image.shape[0]} channels, expected {len(channels)} "
            f"({', '.join(channels)})."
        )
    return finite_image(image, names=list(channels))


def _cell_rows(nuclei: np.ndarray, cells: np.ndarray, *, plate_name: str, site: Site, site_index: int):
    ids, centroids = cell_centroids(nuclei)
    ids = np.asarray(ids, dtype=np.int64)
    centroids = np.asarray(centroids, dtype=np.float64).reshape(-1, 2)
    boxes = np.zeros((len(ids), 4), dtype=np.int64)
    slices = ndi.find_objects(cells) if cells.any() else []
    for i, label in enumerate(ids):
        box = slices[label - 1] if label - 1 < len(slices) else None
        if box is not None:
            boxes[i] = (box[0].start, box[1].start, box[0].stop, box[1].stop)
    n_bins = int(ids.max(initial=0)) + 1
    n = len(ids)
    rows = pd.DataFrame({
        "plate": pd.Series([plate_name] * n, dtype=object),
        "well": pd.Series([site.well] * n, dtype=object),
        "site": np.full(n, site_index, dtype=np.int64),
        "field": np.full(n, site.field, dtype=np.int64),
        "timepoint": np.full(n, site.timepoint, dtype=np.int64),
        "label": ids,
        "centroid_y": centroids[:, 0],
        "centroid_x": centroids[:, 1],
        "bbox_y0": boxes[:, 0],
        "bbox_x0": boxes[:, 1],
        "bbox_y1": boxes[:, 2],
        "bbox_x1": boxes[:, 3],
        "nucleus_area": np.bincount(nuclei.ravel(), minlength=n_bins)[ids].astype(np.int64),
        "cell_area": np.bincount(cells.ravel(), minlength=n_bins)[ids].astype(np.int64),
    })
    return rows, centroids


def measure_site(image, nuclei, cells, ids, channels) -> tuple[pd.DataFrame, list[str]]:
    """Measure the cells ``ids`` of a site: ``label`` and ``feat_*`` columns in ``ids`` order.

    Returns the table, with non-finite values set to 0, and the notes saying so.
    """
    if len(ids) == 0:
        return pd.DataFrame({"label": np.zeros(0, dtype=np.int64)}), []
    table = measure_cells(image, nuclei, cells, channel_names=list(channels))
    table = table.set_index("label").reindex(ids)
    table.index.name = "label"
    table, notes = finite_features(table)
    return table.reset_index(), notes


def process_site(
    source: Plate | str | os.PathLike | np.ndarray,
    site: Site | None = None,
    params: Any = None,
    *,
    crop_size: int = 32,
    channels: list[str] | None = None,
    pattern: str | None = None,
    features: bool = True,
) -> SiteResult:
    """Segment one site, cut its crops and measure its cells (writes nothing).

    Parameters
    ----------
    source : Plate, path or ndarray
        A plate (or a path to open it from, with ``pattern``), or the
        ``(C, Y, X)`` image of the site itself.
    site : Site
        The site to process; optional for an image (then well ``A01``).
    params : SegmentationParams or dict
        Segmentation parameters (channels chosen by name).
    crop_size : int, optional
        Side of the square crops, in pixels.
    channels : list of str, optional
        Channel names of an image source (required then); a plate's own names
        otherwise.
    pattern : str, optional
        Reader pattern when ``source`` is a path.
    features : bool, optional
        Measure classical features too.

    Returns
    -------
    SiteResult

    Raises
    ------
    PlateError
        If the image is not ``(C, Y, X)`` with one plane per channel, or a
        segmentation channel is not among the channels.
    """
    start, cpu_start = time.perf_counter(), time.thread_time()
    params = segmentation_params(params)
    image, channels, site, plate_name, site_index = _load_site(source, site, channels, pattern)
    check_channels(params, channels, where=f"site {site.name}")
    image, notes = site_image(image, channels, site.name)
    table = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nuclei, cells = segment_site(image, params, channels)
        nuclei = np.asarray(nuclei, dtype=np.int32)
        cells = nuclei if cells is None else np.asarray(cells, dtype=np.int32)
        rows, centroids = _cell_rows(nuclei, cells, plate_name=plate_name, site=site, site_index=site_index)
        if len(rows) == 0:
            notes.append("no cells found.")
            crops = np.zeros((0, len(channels), crop_size, crop_size), dtype=np.float32)
        else:
            crops = np.asarray(extract_crops(image, centroids, size=crop_size), dtype=np.float32)
        if features:
            table, feature_notes = measure_site(image, nuclei, cells, rows["label"].to_numpy(), channels)
            notes += feature_notes
    return SiteResult(
        site=site,
        rows=rows,
        crops=crops,
        nuclei=nuclei,
        cells=cells,
        features=table,
        warnings=unique_notes([str(w.message) for w in caught] + notes),
        seconds=time.perf_counter() - start,
        cpu_seconds=time.thread_time() - cpu_start,
    )


def _load_site(source, site: Site | None, channels, pattern):
    """Return ``(image, channel names, site, plate name, index of the site in its well)``."""
    if not isinstance(source, (Plate, str, os.PathLike)):
        if channels is None:
            raise ValueError("process_site on an image needs its channel names (channels=...).")
        return np.asarray(source), list(channels), site or Site("A01"), "image", 0
    if site is None:
        raise ValueError("process_site on a plate needs the site to process.")
    plate = source if isinstance(source, Plate) else open_plate(source, pattern=pattern)
    well_sites = plate.sites.get(site.well, [])
    site_index = well_sites.index(site) if site in well_sites else 0
    return read_pixels(plate, site), list(channels or plate.channels), site, plate.name, site_index


def unique_notes(notes: list[str]) -> list[str]:
    """Return the notes without repeats, in order."""
    return list(dict.fromkeys(notes))
