"""Units of work of a plate run, as worker processes and dask clusters receive them.

A task carries the :class:`~napari_hcs.plate.Plate` itself: its loaders hold
paths and plain values, so it pickles small (no pixels, no dask graph) and the
worker reads the site's pixels where it runs. The entry points are top-level
functions of this module, which :data:`WORKER_PRELOAD` names first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..io import LabelStore
from ..plate import Plate, Site
from ..vocabulary import LABEL_NAMES
from .site import SiteResult, measure_site, process_site, read_pixels, site_image, unique_notes

__all__ = ["WORKER_PRELOAD", "FeatureTask", "SiteTask", "run_feature_task", "run_site_task"]

#: Modules worker processes import before their first site: the task entry
#: points and the libraries their building blocks import on first use.
WORKER_PRELOAD = (
    "napari_hcs.pipeline.tasks",
    "imagecodecs",
    "scipy.spatial",
    "skimage.feature",
    "skimage.filters",
    "skimage.measure",
    "skimage.morphology",
    "skimage.segmentation",
)


@dataclass(frozen=True)
class SiteTask:
    """One site to segment, crop and measure."""

    plate: Plate
    site: Site
    params: dict
    crop_size: int
    features: bool


def run_site_task(task: SiteTask) -> SiteResult:
    """Segment, crop and measure the task's site."""
    return process_site(task.plate, task.site, task.params, crop_size=task.crop_size, features=task.features)


@dataclass(frozen=True)
class FeatureTask:
    """One segmented site to measure from its image and its labels in the project."""

    plate: Plate
    site: Site
    project_dir: str


def run_feature_task(task: FeatureTask) -> tuple[pd.DataFrame, list[str]]:
    """Measure the task's site from its stored labels: ``(features, warnings)``.

    Raises
    ------
    FileNotFoundError
        If the project holds no nuclei labels for the site.
    """
    labels = LabelStore(task.project_dir).read(task.site, LABEL_NAMES)
    if "nuclei" not in labels:
        raise FileNotFoundError(
            f"Site {task.site.name} has no stored nuclei labels in {task.project_dir}; "
            "segment it again (napari-hcs segment)."
        )
    plate = task.plate
    image, notes = site_image(read_pixels(plate, task.site), plate.channels, task.site.name)
    nuclei = labels["nuclei"]
    cells = labels.get("cells", nuclei)
    ids = np.unique(nuclei)
    table, feature_notes = measure_site(image, nuclei, cells, ids[ids > 0], plate.channels)
    return table, unique_notes(notes + feature_notes)
