"""Segment, crop and measure every site of a plate into a project's cell store.

:func:`process_site` runs one site: read its pixels, segment nuclei and cells
(:func:`napari_hcs.segmentation.segment.segment_site`), cut one crop per cell
(:func:`napari_hcs.crops.extract_crops`) and measure classical features
(:func:`napari_hcs.features.measure.measure_cells`). It returns a :class:`SiteResult`
and writes nothing.

:func:`run_plate` maps :func:`process_site` over the sites of a plate with
:func:`napari_hcs.pipeline.parallel.map_sites` and writes each site as soon as it is
done: first its labels, then its crops and table part
(:meth:`napari_hcs.project.cell_store.CellStore.append_site`, atomic), then its features.
Sites whose table part exists are skipped, so an interrupted run resumes where
it stopped. A failing site is recorded and the others go on.

:func:`run_features` measures the sites that were segmented without features,
from the image and the stored labels.

Labels are written into the plate itself when it is a writable OME-Zarr store
(``<row>/<col>/<field>/labels/{nuclei,cells}``); otherwise into the project
folder as ``labels/<site key>/{nuclei,cells}.tif`` (zlib-compressed TIFF,
uint16, or uint32 past 65,535 objects). :func:`read_site_labels` reads either.
"""

from __future__ import annotations

import functools
import os
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..project.cell_store import CROP_INDEX, CellStore, site_key
from ..crops import cell_centroids, extract_crops
from ..features.measure import measure_cells
from .parallel import map_sites
from ..plate import Plate, PlateError, Site
from ..project.folder import Project
from ..segmentation.segment import SegmentationParams, segment_site

__all__ = [
    "LABEL_NAMES",
    "PlateSource",
    "SiteResult",
    "check_channels",
    "process_site",
    "read_site_labels",
    "run_features",
    "run_plate",
    "write_site_labels",
]

#: Modules worker processes import before their first site: the pipeline and
#: the libraries its building blocks import on first use.
WORKER_PRELOAD = (
    "napari_hcs.pipeline.site",
    "imagecodecs",
    "scipy.spatial",
    "skimage.feature",
    "skimage.filters",
    "skimage.measure",
    "skimage.morphology",
    "skimage.segmentation",
)

#: Names of the label images written for each site.
LABEL_NAMES = ("nuclei", "cells")

#: Identity columns of the cell table written by :func:`run_plate`.
ROW_COLUMNS = [
    "plate", "well", "site", "field", "timepoint", "label",
    "centroid_y", "centroid_x", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1",
    "nucleus_area", "cell_area",
]


# -- plate sources --------------------------------------------------------------
@dataclass(frozen=True)
class PlateSource:
    """Where a plate can be reopened from, in another process or on a cluster.

    Attributes
    ----------
    path : str
        Plate path given to :func:`napari_hcs.io.open_plate`.
    pattern : str, optional
        Reader pattern (preset or regular expression) for TIFF folders.
    channels : tuple of str, optional
        Channel names to set on the reopened plate (when they were renamed).
    """

    path: str
    pattern: str | None = None
    channels: tuple[str, ...] | None = None

    def open(self) -> Plate:
        """Return the plate, opened once per process and then reused."""
        return _open_source(self.path, self.pattern, self.channels)


@functools.lru_cache(maxsize=4)
def _open_source(path: str, pattern: str | None, channels: tuple[str, ...] | None) -> Plate:
    from ..io import open_plate

    plate = open_plate(path, pattern=pattern)
    if channels is not None:
        if len(channels) != len(plate.channels):
            raise PlateError(
                f"Plate {path} reopened with channels {plate.channels}; expected "
                f"{len(channels)} channels {list(channels)}."
            )
        plate.channels = list(channels)
    return plate


def _resolve_plate(source: Plate | PlateSource | str | os.PathLike, pattern: str | None) -> Plate:
    if isinstance(source, Plate):
        return source
    if isinstance(source, PlateSource):
        return source.open()
    return _open_source(str(source), pattern, None)


def _worker_source(plate: Plate, pattern: str | None, in_process: bool) -> Plate | PlateSource:
    """What tasks carry to find the plate: the object itself in this process,
    else its path (pickling a plate would ship its whole lazy graph)."""
    if in_process:
        return plate
    if plate.source is not None:
        return PlateSource(str(plate.source), pattern, tuple(plate.channels))
    try:
        pickle.dumps(plate)
    except Exception as error:
        raise ValueError(
            f"Plate {plate.name!r} was not opened from a path, so worker processes cannot "
            f"reopen it ({error}); run with one worker or pool='thread'."
        ) from None
    return plate


# -- one site -------------------------------------------------------------------
@dataclass
class SiteResult:
    """Everything :func:`process_site` computed for one site.

    Attributes
    ----------
    site : Site
        The site.
    rows : DataFrame
        One row per cell: ``plate, well, site`` (index of the site within its
        well), ``field, timepoint, label, centroid_y, centroid_x``, cell bounding
        box ``bbox_y0, bbox_x0, bbox_y1, bbox_x1`` (end exclusive),
        ``nucleus_area, cell_area`` (pixels).
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


def _as_params(params: Any) -> SegmentationParams:
    if isinstance(params, SegmentationParams):
        return params
    if isinstance(params, dict):
        return SegmentationParams.from_dict(params)
    raise TypeError(
        f"Segmentation parameters must be a SegmentationParams or a dict, got {type(params).__name__}."
    )


def check_channels(params: Any, channels: list[str], *, where: str = "the plate") -> None:
    """Raise a PlateError listing the channels when a segmentation channel is missing."""
    params = _as_params(params)
    for role, name in (("nuclei", params.nuclei_channel), ("cell", params.cell_channel)):
        if name is None or name in channels:
            continue
        raise PlateError(
            f"The {role} channel {name!r} is not on {where}; channels are: {', '.join(channels)}."
        )


def _read_pixels(plate: Plate, site: Site) -> np.ndarray:
    array = plate.site_array(site)
    if hasattr(array, "compute"):
        # Synchronous: a worker must not open its own thread pool or reach a
        # distributed client from inside a task.
        array = array.compute(scheduler="synchronous")
    return np.asarray(array)


def _checked_image(image: np.ndarray, channels: list[str], where: str) -> tuple[np.ndarray, list[str]]:
    notes = []
    if image.ndim != 3:
        raise PlateError(f"Site {where}: expected a (C, Y, X) image, got shape {image.shape}.")
    if image.shape[0] != len(channels):
        raise PlateError(
            f"Site {where}: image has {image.shape[0]} channels, expected {len(channels)} "
            f"({', '.join(channels)})."
        )
    if np.issubdtype(image.dtype, np.floating):
        bad = ~np.isfinite(image)
        if bad.any():
            named = [c for c, plane in zip(channels, bad) if plane.any()]
            notes.append(
                f"{int(bad.sum())} NaN/infinite pixels in channel(s) {', '.join(named)} set to 0."
            )
            image = np.where(bad, 0, image)
    return image, notes


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
    nucleus_area = np.bincount(nuclei.ravel(), minlength=int(ids.max(initial=0)) + 1)[ids]
    cell_area = np.bincount(cells.ravel(), minlength=int(ids.max(initial=0)) + 1)[ids]
    n = len(ids)
    rows = pd.DataFrame(
        {
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
            "nucleus_area": nucleus_area.astype(np.int64),
            "cell_area": cell_area.astype(np.int64),
        }
    )
    return rows, centroids


def _measure(image, nuclei, cells, ids, channels, notes) -> pd.DataFrame:
    if len(ids) == 0:
        return pd.DataFrame({"label": np.zeros(0, dtype=np.int64)})
    table = measure_cells(image, nuclei, cells, channel_names=list(channels))
    table = table.set_index("label").reindex(ids)
    values = table.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        notes.append(f"{int(bad.sum())} feature values were NaN or infinite and were set to 0.")
        table = table.mask(pd.DataFrame(bad, index=table.index, columns=table.columns), 0.0)
    table.index.name = "label"
    return table.reset_index()


def process_site(
    source: Plate | PlateSource | str | os.PathLike | np.ndarray,
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
    source : Plate, PlateSource, path or ndarray
        A plate (or where to open it: a path with ``pattern``), or the
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
    params = _as_params(params)
    image, channels, site, plate_name, site_index = _load_site(source, site, channels, pattern)
    check_channels(params, channels, where=f"site {site.name}")
    image, notes = _checked_image(image, channels, site.name)
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
        table = _measure(image, nuclei, cells, rows["label"].to_numpy(), channels, notes) if features else None
    return SiteResult(
        site=site,
        rows=rows,
        crops=crops,
        nuclei=nuclei,
        cells=cells,
        features=table,
        warnings=_unique([str(w.message) for w in caught] + notes),
        seconds=time.perf_counter() - start,
        cpu_seconds=time.thread_time() - cpu_start,
    )


def _load_site(source, site: Site | None, channels, pattern):
    """Return ``(image, channel names, site, plate name, index of the site in its well)``."""
    if not isinstance(source, (Plate, PlateSource, str, os.PathLike)):
        if channels is None:
            raise ValueError("process_site on an image needs its channel names (channels=...).")
        return np.asarray(source), list(channels), site or Site("A01"), "image", 0
    if site is None:
        raise ValueError("process_site on a plate needs the site to process.")
    plate = _resolve_plate(source, pattern)
    well_sites = plate.sites.get(site.well, [])
    site_index = well_sites.index(site) if site in well_sites else 0
    return _read_pixels(plate, site), list(channels or plate.channels), site, plate.name, site_index


def _unique(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))


# -- labels -----------------------------------------------------------------------
def _project_labels_path(project: Project, site: Site, name: str) -> Path:
    return project.labels_dir / site_key(site.well, site.field, site.timepoint) / f"{name}.tif"


def _writable_ome_zarr(plate_path: str | None) -> bool:
    if not plate_path or not os.path.isdir(plate_path) or not os.access(plate_path, os.W_OK):
        return False
    from ..io.ome_zarr import is_ome_zarr_plate

    return is_ome_zarr_plate(plate_path)


def write_site_labels(
    project: Project | str | os.PathLike,
    site: Site,
    labels: dict[str, np.ndarray],
    *,
    plate_path: str | None = None,
) -> str:
    """Store the label images of a site; return where they went.

    Parameters
    ----------
    project : Project or path
        Project folder (receives the labels unless the plate can).
    site : Site
        The site.
    labels : dict of str to ndarray
        Name (``"nuclei"``, ``"cells"``) to ``(Y, X)`` instance labels.
    plate_path : str, optional
        The plate; a writable OME-Zarr plate receives the labels as NGFF
        image-labels.

    Returns
    -------
    str
        ``"plate"`` or ``"project"``.
    """
    project = project if isinstance(project, Project) else Project(project)
    if _writable_ome_zarr(plate_path):
        from ..io.ome_zarr import write_site_labels as write_ngff_labels

        try:
            for name, array in labels.items():
                write_ngff_labels(plate_path, site, name, array)
            return "plate"
        except (OSError, PermissionError, KeyError, ValueError):
            pass  # a plate we cannot write into: keep the labels in the project
    import tifffile

    for name, array in labels.items():
        path = _project_labels_path(project, site, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.asarray(array)
        dtype = np.uint32 if array.max(initial=0) > np.iinfo(np.uint16).max else np.uint16
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tifffile.imwrite(tmp, array.astype(dtype), compression="zlib")
        os.replace(tmp, path)
    return "project"


def read_site_labels(
    project: Project | str | os.PathLike, site: Site, *, plate: Plate | None = None
) -> dict[str, np.ndarray]:
    """Return the stored label images of a site, name -> ``(Y, X)`` int32 array.

    Looks in the project folder first, then in the plate (OME-Zarr labels).
    Empty when the site has no stored labels.
    """
    import tifffile

    project = project if isinstance(project, Project) else Project(project)
    found = {}
    for name in LABEL_NAMES:
        path = _project_labels_path(project, site, name)
        if path.exists():
            found[name] = tifffile.imread(path).astype(np.int32)
    if found or plate is None:
        return found
    return {name: np.asarray(array).astype(np.int32) for name, array in plate.site_labels(site).items()}


# -- whole plate ------------------------------------------------------------------
@dataclass(frozen=True)
class SiteTask:
    """One site to segment, crop and measure (pickles small: no pixels)."""

    source: Any
    site: Site
    params: dict
    crop_size: int
    features: bool


def run_site_task(task: SiteTask) -> SiteResult:
    """Worker entry point of :func:`run_plate` (top-level so processes can run it)."""
    return process_site(
        task.source, task.site, task.params, crop_size=task.crop_size, features=task.features
    )


@dataclass(frozen=True)
class FeatureTask:
    """One segmented site to measure from its image and stored labels."""

    source: Any
    site: Site
    project_dir: str


def run_feature_task(task: FeatureTask) -> tuple[pd.DataFrame, list[str]]:
    """Worker entry point of :func:`run_features`: ``(features, warnings)``."""
    plate = _resolve_plate(task.source, None)
    labels = read_site_labels(task.project_dir, task.site, plate=plate)
    if "nuclei" not in labels:
        raise FileNotFoundError(
            f"Site {task.site.name} has no stored nuclei labels in {task.project_dir}; "
            "segment it again (napari-hcs segment)."
        )
    image, notes = _checked_image(_read_pixels(plate, task.site), plate.channels, task.site.name)
    nuclei = labels["nuclei"]
    cells = labels.get("cells", nuclei)
    ids = np.unique(nuclei)
    ids = ids[ids > 0]
    return _measure(image, nuclei, cells, ids, plate.channels, notes), _unique(notes)


class _Summary:
    def __init__(self, project: Path, skipped_done: int):
        self.start = time.perf_counter()
        self.data = {
            "project": str(project),
            "sites": 0,
            "skipped_done": skipped_done,
            "cells": 0,
            "failures": [],
            "warnings": [],
            "site_cpu_seconds": 0.0,
        }

    def done(self, site: Site, n_cells: int, notes: list[str], cpu_seconds: float = 0.0) -> None:
        self.data["sites"] += 1
        self.data["site_cpu_seconds"] += cpu_seconds
        self.data["cells"] += int(n_cells)
        self.data["warnings"] += [f"{site.name}: {note}" for note in notes]

    def failed(self, site: Site, error: BaseException) -> None:
        self.data["failures"].append({"site": site.name, "error": f"{type(error).__name__}: {error}"})

    def finish(self, *, cancelled: bool, **extra) -> dict:
        self.data.update(extra, cancelled=bool(cancelled))
        self.data["seconds"] = round(time.perf_counter() - self.start, 3)
        self.data["site_cpu_seconds"] = round(self.data["site_cpu_seconds"], 3)
        return self.data


def _key(site: Site) -> str:
    return site_key(site.well, site.field, site.timepoint)


def _write_site(project: Project, store: CellStore, result: SiteResult, plate_path: str | None) -> None:
    key = _key(result.site)
    write_site_labels(
        project, result.site, {"nuclei": result.nuclei, "cells": result.cells}, plate_path=plate_path
    )
    written = store.append_site(key, result.rows, result.crops)
    if result.features is not None:
        _write_features(store, key, written[["label", CROP_INDEX]], result.features)


def _write_features(store: CellStore, key: str, index: pd.DataFrame, features: pd.DataFrame) -> None:
    table = index.merge(features, on="label", how="left").drop(columns="label")
    store.write_features(key, table.fillna(0.0))


def _is_cancelled(cancel: Callable[[], bool] | None) -> bool:
    return bool(cancel is not None and cancel())


def run_plate(
    plate: Plate,
    project_dir: str | os.PathLike,
    params: Any,
    *,
    crop_size: int = 32,
    wells: list[str] | None = None,
    workers: int = 1,
    scheduler: Any = None,
    pool: str = "process",
    features: bool = True,
    pattern: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Segment, crop and measure the sites of a plate into a project folder.

    Sites already in the project's cell store are skipped, so calling it again
    after an interruption resumes. Each site is written as soon as it is done;
    a site that fails is recorded and the others go on.

    Parameters
    ----------
    plate : Plate
        The plate (its ``channels`` become the store's channels).
    project_dir : path
        Project folder; created when missing.
    params : SegmentationParams or dict
        Segmentation parameters.
    crop_size : int, optional
        Crop side in pixels; must match an existing store.
    wells : list of str, optional
        Only these wells; all wells by default.
    workers : int, optional
        Local workers (see :func:`napari_hcs.pipeline.parallel.map_sites`).
    scheduler : str or distributed.Client, optional
        A dask cluster to run on instead.
    pool : {"process", "thread"}, optional
        Kind of local pool for ``workers > 1``.
    features : bool, optional
        Measure classical features (also of finished sites that lack them).
    pattern : str, optional
        Reader pattern of the plate, recorded in the project and used by
        worker processes to reopen the plate.
    progress : callable, optional
        ``progress(n_done, n_total)`` over the sites to process.
    cancel : callable, optional
        Checked between sites; True stops the run (finished sites are kept).

    Returns
    -------
    dict
        JSON-ready summary: ``sites`` (processed now), ``skipped_done``,
        ``cells`` (written now), ``failures`` (``[{"site", "error"}]``),
        ``warnings``, ``seconds`` (wall time), ``site_cpu_seconds`` (CPU time
        of the sites' segmentation, crops and features, summed over workers),
        ``cancelled``, ``features_sites`` (finished sites measured afterwards),
        ``total_cells`` (in the store) and ``project``.

    Raises
    ------
    PlateError
        If a segmentation channel is not on the plate, or a well is unknown.
    ValueError
        If the project holds a store with other channels or crop size.
    """
    params = _as_params(params)
    check_channels(params, plate.channels, where=f"plate {plate.name!r}")
    sites = list(plate.iter_sites(wells))
    project = Project(project_dir)
    store = CellStore.create(project.folder, channels=plate.channels, crop_size=crop_size)
    _record_run(project, plate, params, pattern=pattern, crop_size=crop_size)

    done = store.done_sites()
    todo = [s for s in sites if _key(s) not in done]
    summary = _Summary(project.folder, skipped_done=len(sites) - len(todo))
    in_process = scheduler is None and (int(workers) == 1 or pool == "thread")
    source = _worker_source(plate, pattern, in_process)
    tasks = [SiteTask(source, s, params.to_dict(), int(crop_size), bool(features)) for s in todo]
    plate_path = str(plate.source) if plate.source else None
    outcomes = map_sites(
        run_site_task, tasks, workers=workers, scheduler=scheduler, pool=pool,
        preload=WORKER_PRELOAD, progress=progress, cancel=cancel,
    )
    for task, outcome in outcomes:
        if isinstance(outcome, BaseException):
            summary.failed(task.site, outcome)
            continue
        try:
            _write_site(project, store, outcome, plate_path)
        except Exception as error:  # noqa: BLE001 - one bad site must not stop the plate
            summary.failed(task.site, error)
            continue
        summary.done(task.site, outcome.n_cells, outcome.warnings, outcome.cpu_seconds)

    features_sites = 0
    if features and not _is_cancelled(cancel):
        features_sites, _ = _feature_pass(
            project, store, sites, source=source, workers=workers, scheduler=scheduler,
            pool=pool, cancel=cancel, summary=summary,
        )
    unfinished = {_key(s) for s in sites} - store.done_sites()
    return summary.finish(
        cancelled=_is_cancelled(cancel) and bool(unfinished),
        features_sites=features_sites,
        total_cells=len(store),
    )


def _record_run(project: Project, plate: Plate, params, *, pattern, crop_size) -> None:
    values = {"channels": list(plate.channels), "segmentation": params.to_dict(), "crop_size": int(crop_size)}
    if plate.source is not None:
        values.update(plate=str(plate.source), pattern=pattern)
    project.update_meta(**values)
    if len(plate.annotations.columns) and not project.layout_path.exists():
        project.save_annotations(plate)


def _feature_pass(project, store, sites, *, source, workers, scheduler, pool, cancel, summary,
                  progress=None) -> tuple[int, int]:
    """Measure segmented sites that have no features yet; return (sites, cells) measured."""
    segmented = store.done_sites()
    measured = store.done_feature_sites()
    targets = [s for s in sites if _key(s) in segmented and _key(s) not in measured]
    if not targets:
        return 0, 0
    index = store.cells()
    index["site_key"] = [site_key(w, f, t) for w, f, t in zip(index.well, index.field, index.timepoint)]
    tasks = [FeatureTask(source, s, str(project.folder)) for s in targets]
    n_sites = n_cells = 0
    outcomes = map_sites(
        run_feature_task, tasks, workers=workers, scheduler=scheduler, pool=pool,
        preload=WORKER_PRELOAD, progress=progress, cancel=cancel,
    )
    for task, outcome in outcomes:
        if isinstance(outcome, BaseException):
            summary.failed(task.site, outcome)
            continue
        table, notes = outcome
        key = _key(task.site)
        try:
            _write_features(store, key, index.loc[index["site_key"] == key, ["label", CROP_INDEX]], table)
        except Exception as error:  # noqa: BLE001
            summary.failed(task.site, error)
            continue
        summary.data["warnings"] += [f"{task.site.name}: {note}" for note in notes]
        n_sites += 1
        n_cells += len(table)
    return n_sites, n_cells


def run_features(
    project_dir: str | os.PathLike,
    *,
    plate: Plate | None = None,
    wells: list[str] | None = None,
    workers: int = 1,
    scheduler: Any = None,
    pool: str = "process",
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Measure classical features of every segmented site that lacks them.

    Reads each site's image and its stored labels (see :func:`read_site_labels`).

    Parameters
    ----------
    project_dir : path
        Project folder holding a cell store.
    plate : Plate, optional
        The plate; reopened from ``project.json`` by default.
    wells, workers, scheduler, pool, progress, cancel
        As in :func:`run_plate`.

    Returns
    -------
    dict
        JSON-ready summary: ``sites`` (measured now), ``skipped_done`` (already
        measured), ``cells``, ``failures``, ``warnings``, ``seconds``, ``cancelled``.
    """
    project = Project(project_dir)
    store = project.cell_store()
    if plate is None:
        plate = project.open_plate()
    meta = project.read_meta()
    segmented = store.done_sites()
    sites = [s for s in plate.iter_sites(wells) if _key(s) in segmented]
    measured = store.done_feature_sites()
    todo = [s for s in sites if _key(s) not in measured]
    summary = _Summary(project.folder, skipped_done=len(sites) - len(todo))
    in_process = scheduler is None and (int(workers) == 1 or pool == "thread")
    source = _worker_source(plate, meta.get("pattern"), in_process)
    n_sites, n_cells = _feature_pass(
        project, store, todo, source=source, workers=workers, scheduler=scheduler,
        pool=pool, cancel=cancel, summary=summary, progress=progress,
    )
    summary.data.update(sites=n_sites, cells=n_cells)
    return summary.finish(cancelled=_is_cancelled(cancel) and n_sites < len(todo))
