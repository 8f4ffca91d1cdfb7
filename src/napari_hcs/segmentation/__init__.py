"""Segmentation of nuclei and cells, its parameters, backends and instance metrics."""

from .segment import (
    SegmentationParams,
    average_precision,
    estimate_diameter,
    expand_nuclei,
    foreground_iou,
    instance_f1,
    match_instances,
    segment_cells,
    segment_nuclei,
    segment_site,
)

__all__ = [
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
