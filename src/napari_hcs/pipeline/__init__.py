"""Plate-scale runs: one site, a resumable plate run, and the one parallel map."""

from .parallel import POOLS, map_sites
from .site import (
    PlateSource,
    SiteResult,
    check_channels,
    process_site,
    read_site_labels,
    run_features,
    run_plate,
    write_site_labels,
)

__all__ = [
    "POOLS",
    "PlateSource",
    "SiteResult",
    "check_channels",
    "map_sites",
    "process_site",
    "read_site_labels",
    "run_features",
    "run_plate",
    "write_site_labels",
]
