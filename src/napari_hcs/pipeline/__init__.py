"""Plate-scale runs: one site, a resumable plate run, and the one parallel map.

:func:`process_site` segments, crops and measures one site and writes nothing;
:func:`run_plate` does it for every site of a plate into a project folder
(labels in the project's :class:`~napari_hcs.io.LabelStore`, cells in its cell
store), resumably; :func:`run_features` measures segmented sites later.
:func:`map_sites` spreads the sites over local workers or a dask cluster
(:class:`Workers`); the tasks carry the plate itself, which pickles small.
"""

from .parallel import POOLS, Workers, map_sites
from .plate_run import RunSummary, run_features, run_plate
from .site import ROW_COLUMNS, SiteResult, check_channels, process_site
from .tasks import WORKER_PRELOAD

__all__ = [
    "POOLS",
    "ROW_COLUMNS",
    "RunSummary",
    "SiteResult",
    "WORKER_PRELOAD",
    "Workers",
    "check_channels",
    "map_sites",
    "process_site",
    "run_features",
    "run_plate",
]
