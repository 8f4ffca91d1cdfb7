"""Segmentation of nuclei and cells, its parameters, backends and instance metrics.

The classical pipeline needs no training and no model weights:
:func:`segment_nuclei` finds the nuclei of a nuclear-stain image (the nucleus
diameter from :func:`estimate_diameter` when not given), :func:`segment_cells`
grows them into cells on a cytoplasm or membrane channel, and
:func:`expand_nuclei` grows them by a distance where there is no such channel.
:func:`segment_site` runs both on a ``(C, Y, X)`` site, choosing channels by name
from a :class:`SegmentationParams` (its nuclei options are a
:class:`NucleiOptions`), with the classical pipeline or a local
cellpose model. :func:`match_instances`, :func:`instance_f1`,
:func:`average_precision` and :func:`foreground_iou` score a segmentation against
ground truth (the metric of the 2018 Data Science Bowl).
"""

from .cells import expand_nuclei, segment_cells
from .metrics import average_precision, foreground_iou, instance_f1, match_instances
from .nuclei import NucleiOptions, estimate_diameter, segment_nuclei
from .params import SegmentationParams, segment_site

__all__ = [
    "NucleiOptions",
    "SegmentationParams",
    "average_precision",
    "estimate_diameter",
    "expand_nuclei",
    "foreground_iou",
    "instance_f1",
    "match_instances",
    "segment_cells",
    "segment_nuclei",
    "segment_site",
]
