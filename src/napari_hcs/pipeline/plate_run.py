"""A plate run: every site into a project's cell store, resumable.

:func:`run_plate` maps :func:`~napari_hcs.pipeline.site.process_site` over the
sites of a plate with :func:`~napari_hcs.pipeline.parallel.map_sites` and writes
each site as soon as it is done: first its labels (the project's
:class:`~napari_hcs.io.LabelStore`), then its crops and table part
(:meth:`napari_hcs.project.CellStore.append_site`, atomic), then its features.
Sites whose table part exists are skipped, so an interrupted run resumes where
it stopped. A failing site is recorded and the others go on.

:func:`run_features` measures the sites that were segmented without features,
from the image and the stored labels.

Examples
--------
>>> from napari_hcs.samples import make_synthetic_plate
>>> from napari_hcs.segmentation import SegmentationParams
>>> small = make_synthetic_plate(n_rows=1, n_columns=1, n_sites=1, shape=(96, 96), n_cells=6)
>>> params = SegmentationParams(nuclei_channel="DNA", cell_channel="cytoplasm")
>>> summary = run_plate(small, tmp_path / "project", params, features=False)
>>> summary["sites"], summary["failures"]
(1, [])
>>> sorted(LabelStore(tmp_path / "project").read(small.site("A01")))
['cells', 'nuclei']
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..cancel import CancelCheck, is_cancelled
from ..io import LabelStore, site_key
from ..plate import Plate, Site
from ..project import CROP_INDEX, CellStore, Project
from .parallel import Workers
from .site import SiteResult, check_channels, segmentation_params
from .tasks import WORKER_PRELOAD, FeatureTask, SiteTask, run_feature_task, run_site_task

__all__ = ["RunSummary", "run_features", "run_plate"]

Progress = Callable[[int, int], None]


class RunSummary:
    """What a run did, as the JSON-ready dict :func:`run_plate` returns."""

    def __init__(self, project: Path, skipped_done: int):
        self.start = time.perf_counter()
        self.data = {
            "project": str(project),
            "sites": 0,
            "skipped_done": skipped_done,
            "cells": 0,
            "failures": [],
            "skipped": [],
            "warnings": [],
            "site_cpu_seconds": 0.0,
        }

    def done(self, site: Site, n_cells: int, notes: list[str], cpu_seconds: float = 0.0) -> None:
        self.data["sites"] += 1
        self.data["site_cpu_seconds"] += cpu_seconds
        self.data["cells"] += int(n_cells)
        self.warn(site, notes)

    def warn(self, site: Site, notes: list[str]) -> None:
        self.data["warnings"] += [f"{site.name}: {note}" for note in notes]

    def failed(self, site: Site, error: BaseException) -> None:
        self.data["failures"].append({"site": site.name, "error": f"{type(error).__name__}: {error}"})

    def skip(self, items) -> None:
        """Record what the plate's reader left out (:attr:`napari_hcs.plate.Plate.skipped`)."""
        self.data["skipped"] += [{"where": item.where, "reason": item.reason} for item in items]

    def finish(self, *, cancelled: bool, **extra) -> dict:
        self.data.update(extra, cancelled=bool(cancelled))
        self.data["seconds"] = round(time.perf_counter() - self.start, 3)
        self.data["site_cpu_seconds"] = round(self.data["site_cpu_seconds"], 3)
        return self.data


def _key(site: Site) -> str:
    return site_key(site.well, site.field, site.timepoint)


def _write_site(project: Project, store: CellStore, result: SiteResult) -> None:
    key = _key(result.site)
    LabelStore(project.folder).write(result.site, {"nuclei": result.nuclei, "cells": result.cells})
    written = store.append_site(key, result.rows, result.crops)
    if result.features is not None:
        _write_features(store, key, written[["label", CROP_INDEX]], result.features)


def _write_features(store: CellStore, key: str, index: pd.DataFrame, features: pd.DataFrame) -> None:
    table = index.merge(features, on="label", how="left").drop(columns="label")
    store.write_features(key, table.fillna(0.0))


def run_plate(
    plate: Plate,
    project_dir: str | os.PathLike,
    params: Any,
    *,
    crop_size: int = 32,
    wells: list[str] | None = None,
    workers: int | Workers = 1,
    features: bool = True,
    pattern: str | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck = None,
    wait: bool = False,
) -> dict:
    """Segment, crop and measure the sites of a plate into a project folder.

    Sites already in the project's cell store are skipped, so calling it again
    after an interruption resumes. Each site is written as soon as it is done;
    a site that fails is recorded and the others go on. The run holds the
    project's lock (:class:`~napari_hcs.project.ProjectLock`) throughout, and a
    project that holds cells of another plate, or made with other settings, is
    refused before anything is written.

    Parameters
    ----------
    plate : Plate
        The plate (its ``channels`` become the store's channels). Worker
        processes receive it pickled.
    project_dir : path
        Project folder; created when missing.
    params : SegmentationParams or dict
        Segmentation parameters.
    crop_size : int, optional
        Crop side in pixels; must match an existing store.
    wells : list of str, optional
        Only these wells; all wells by default.
    workers : int or Workers, optional
        Local worker processes, or a :class:`~napari_hcs.pipeline.Workers`
        (thread pool, dask cluster).
    features : bool, optional
        Measure classical features (also of finished sites that lack them).
    pattern : str, optional
        Reader pattern of the plate, recorded in the project so that it reopens.
    progress : callable, optional
        ``progress(n_done, n_total)`` over the sites to process.
    cancel : callable or threading.Event, optional
        Checked between sites; stops the run (finished sites are kept).
    wait : bool, optional
        When another run holds the project's lock: wait for it (True) or raise
        :class:`~napari_hcs.project.ProjectLockedError` at once (False, default).

    Returns
    -------
    dict
        JSON-ready summary: ``sites`` (processed now), ``skipped_done``,
        ``cells`` (written now), ``failures`` (``[{"site", "error"}]``),
        ``skipped`` (files and sites the plate's reader left out, unreadable
        or of another image size: ``[{"where", "reason"}]``), ``warnings``, ``seconds`` (wall time), ``site_cpu_seconds`` (CPU time
        of the sites' segmentation, crops and features, summed over workers),
        ``cancelled``, ``features_sites`` (finished sites measured afterwards),
        ``total_cells`` (in the store) and ``project``.

    Raises
    ------
    PlateError
        If a segmentation channel is not on the plate, or a well is unknown.
    ProjectMismatchError
        If the project holds cells of another plate or made with other settings
        (a ValueError saying what differs and how to start a new project).
    ProjectLockedError
        If another run holds the project's lock and ``wait`` is False.
    """
    params = segmentation_params(params)
    check_channels(params, plate.channels, where=f"plate {plate.name!r}")
    workers = Workers.of(workers)
    sites = list(plate.iter_sites(wells))
    project = Project(project_dir)
    with project.lock(wait=wait, cancel=cancel):
        project.check_run(plate, {**params.to_dict(), "crop_size": int(crop_size)})
        store = CellStore.create(project.folder, channels=plate.channels, crop_size=crop_size)
        moved = _record_run(project, plate, params, pattern=pattern, crop_size=crop_size)
        return _run_sites(project, store, plate, sites, params, crop_size=crop_size, workers=workers,
                          features=features, progress=progress, cancel=cancel, notes=moved)


def _run_sites(project: Project, store: CellStore, plate: Plate, sites: list[Site], params, *, crop_size,
               workers: Workers, features, progress, cancel, notes: list[str]) -> dict:
    """The body of :func:`run_plate`, under the project's lock."""
    done = store.done_sites()
    todo = [s for s in sites if _key(s) not in done]
    summary = RunSummary(project.folder, skipped_done=len(sites) - len(todo))
    summary.data["warnings"] += notes
    summary.skip(plate.skipped)
    tasks = [SiteTask(plate, s, params.to_dict(), int(crop_size), bool(features)) for s in todo]
    outcomes = workers.map(run_site_task, tasks, preload=WORKER_PRELOAD, progress=progress, cancel=cancel)
    for task, outcome in outcomes:
        if isinstance(outcome, BaseException):
            summary.failed(task.site, outcome)
            continue
        try:
            _write_site(project, store, outcome)
        except Exception as error:  # noqa: BLE001 - one bad site must not stop the plate
            summary.failed(task.site, error)
            continue
        summary.done(task.site, outcome.n_cells, outcome.warnings, outcome.cpu_seconds)

    features_sites = 0
    if features and not is_cancelled(cancel):
        features_sites, _ = _feature_pass(project, store, plate, sites, workers=workers, cancel=cancel,
                                          summary=summary)
    unfinished = {_key(s) for s in sites} - store.done_sites()
    return summary.finish(
        cancelled=is_cancelled(cancel) and bool(unfinished),
        features_sites=features_sites,
        total_cells=len(store),
    )


def _record_run(project: Project, plate: Plate, params, *, pattern, crop_size) -> list[str]:
    """Record the plate (absolute location, identity) and the settings; note a plate that moved."""
    values = {"channels": list(plate.channels), "segmentation": params.to_dict(), "crop_size": int(crop_size)}
    if plate.source is not None:
        values["pattern"] = pattern
    notes = _moved_note(project, plate)
    project.record_plate(plate, **values)
    if len(plate.annotations.columns) and not project.layout_path.exists():
        project.save_annotations(plate)
    return notes


def _moved_note(project: Project, plate: Plate) -> list[str]:
    recorded = project.read_meta().get("plate")
    if plate.source is None or not recorded or os.path.abspath(plate.source) == os.path.abspath(recorded):
        return []
    return [f"plate location updated from {recorded} to {os.path.abspath(plate.source)} (same wells, "
            "sites, channels and image shape)"]


def _feature_pass(project, store, plate, sites, *, workers: Workers, cancel, summary: RunSummary,
                  progress: Progress | None = None) -> tuple[int, int]:
    """Measure segmented sites that have no features yet; return (sites, cells) measured."""
    segmented = store.done_sites()
    measured = store.done_feature_sites()
    targets = [s for s in sites if _key(s) in segmented and _key(s) not in measured]
    if not targets:
        return 0, 0
    index = store.cells()
    index["site_key"] = [site_key(w, f, t) for w, f, t in zip(index.well, index.field, index.timepoint)]
    tasks = [FeatureTask(plate, s, str(project.folder)) for s in targets]
    n_sites = n_cells = 0
    outcomes = workers.map(run_feature_task, tasks, preload=WORKER_PRELOAD, progress=progress, cancel=cancel)
    for task, outcome in outcomes:
        if isinstance(outcome, BaseException):
            summary.failed(task.site, outcome)
            continue
        table, notes = outcome
        key = _key(task.site)
        try:
            _write_features(store, key, index.loc[index["site_key"] == key, ["label", CROP_INDEX]], table)
        except Exception as error:  # noqa: BLE001 - one bad site must not stop the plate
            summary.failed(task.site, error)
            continue
        summary.warn(task.site, notes)
        n_sites += 1
        n_cells += len(table)
    return n_sites, n_cells


def run_features(
    project_dir: str | os.PathLike,
    *,
    plate: Plate | None = None,
    wells: list[str] | None = None,
    workers: int | Workers = 1,
    progress: Progress | None = None,
    cancel: CancelCheck = None,
    wait: bool = False,
    pattern: str | None = None,
) -> dict:
    """Measure classical features of every segmented site that lacks them.

    Reads each site's image and its labels from the project's label store,
    holding the project's lock.

    Parameters
    ----------
    project_dir : path
        Project folder holding a cell store.
    plate : Plate, optional
        The plate; reopened from its recorded location by default. A plate given
        must be the project's (same wells, sites, channels, shape); when it is at
        another location (the plate moved), that location is recorded.
    wells, workers, progress, cancel, wait
        As in :func:`run_plate`.
    pattern : str, optional
        Reader pattern of ``plate``, recorded with its new location.

    Returns
    -------
    dict
        JSON-ready summary: ``sites`` (measured now), ``skipped_done`` (already
        measured), ``cells``, ``failures``, ``skipped`` (as in :func:`run_plate`),
        ``warnings``, ``seconds``, ``cancelled``.
    """
    project = Project(project_dir)
    with project.lock(wait=wait, cancel=cancel):
        store = project.cell_store()
        if plate is None:
            plate = project.open_plate()
        else:
            project.check_plate(plate)
            if _moved_note(project, plate):
                project.record_plate(plate, **({"pattern": pattern} if pattern is not None else {}))
        return _measure(project, store, plate, wells=wells, workers=workers, progress=progress, cancel=cancel)


def _measure(project: Project, store: CellStore, plate: Plate, *, wells, workers, progress, cancel) -> dict:
    """The body of :func:`run_features`, under the project's lock."""
    segmented = store.done_sites()
    sites = [s for s in plate.iter_sites(wells) if _key(s) in segmented]
    measured = store.done_feature_sites()
    todo = [s for s in sites if _key(s) not in measured]
    summary = RunSummary(project.folder, skipped_done=len(sites) - len(todo))
    summary.skip(plate.skipped)
    n_sites, n_cells = _feature_pass(project, store, plate, todo, workers=Workers.of(workers), cancel=cancel,
                                     summary=summary, progress=progress)
    summary.data.update(sites=n_sites, cells=n_cells)
    return summary.finish(cancelled=is_cancelled(cancel) and n_sites < len(todo))
