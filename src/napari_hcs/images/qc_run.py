"""Quality control of a whole plate into its project: ``qc/sites.parquet``, ``qc/sites.csv``, exclusions.

:func:`run_qc` measures every site of a plate with
:func:`~napari_hcs.images.quality.site_quality` through the one parallel map
(:class:`~napari_hcs.pipeline.Workers`), flags them with
:func:`~napari_hcs.images.qc_flags.flag_sites`, writes the table (one row per site
and channel: ``plate``, ``well``, ``field``, ``timepoint``, ``site_key``,
``channel``, the metrics, ``error``, ``flags``, ``reasons``) atomically, and
records the flagged sites in :class:`~napari_hcs.images.site_exclusions.SiteExclusions`
(the sites the user chose to keep stay kept).

A channel that cannot be read (a missing or unreadable file, a plane of another
shape) and a site the plate's reader left out for a missing channel are rows
flagged ``missing_channel`` with the error's text; the run goes on. Quality
control is meant for raw images: give it the plate as acquired.

Examples
--------
>>> from napari_hcs.samples import make_synthetic_plate
>>> small = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=2, shape=(96, 96), n_cells=6)
>>> result = run_qc(small, project_dir=tmp_path)
>>> len(result.table) == small.n_sites() * len(small.channels)   # one row per site and channel
True
>>> sorted(p.name for p in (tmp_path / "qc").iterdir())
['exclusions.json', 'sites.csv', 'sites.json', 'sites.parquet']
>>> read_qc_table(tmp_path)["channel"].unique().tolist() == small.channels
True
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..atomic import write_json_atomic, write_parquet_atomic, write_text_atomic
from ..cancel import CancelCheck, check_cancel
from ..io import LabelStore, site_key
from ..plate import Plate, Site
from ..project import Project
from .qc_flags import QcThresholds, flag_sites, site_flags
from .quality import QUALITY_METRICS, site_quality
from .site_exclusions import SiteExclusions

__all__ = ["QC_TABLE", "QcResult", "QcTask", "plate_site_keys", "read_qc_table", "run_qc", "run_qc_task"]

#: The QC table in a project folder (a CSV copy sits beside it).
QC_TABLE = Path("qc") / "sites.parquet"
IDENTITY_COLUMNS = ("plate", "well", "field", "timepoint", "site_key", "channel")
#: Modules worker processes import before their first site.
QC_PRELOAD = ("napari_hcs.images.qc_run", "imagecodecs", "scipy.fft")
_SKIPPED_SITE = re.compile(r"(?:^|/)(?P<well>[A-Z]{1,2}\d{2,3}) f(?P<field>\d+) t(?P<timepoint>\d+)$")


@dataclass(frozen=True)
class QcTask:
    """One site to measure; ``project_dir`` gives its cell count from the label store."""

    plate: Plate
    site: Site
    project_dir: str | None = None


@dataclass
class QcResult:
    """What :func:`run_qc` found.

    Attributes
    ----------
    table : DataFrame
        One row per site and channel (as written to ``qc/sites.parquet``).
    flags : dict of str to list of str
        Site key -> its flags, for every site (empty list when clean).
    summary : dict
        JSON-ready: ``plate``, ``project``, ``sites``, ``flagged`` (site key ->
        ``{"well", "field", "timepoint", "flags", "reasons"}``), ``failures``,
        ``thresholds``, ``seconds``.
    """

    table: pd.DataFrame
    flags: dict[str, list[str]]
    summary: dict = field(default_factory=dict)


def _identity(plate: Plate, site: Site) -> dict:
    return {"plate": plate.name, "well": site.well, "field": int(site.field), "timepoint": int(site.timepoint),
            "site_key": site_key(site.well, site.field, site.timepoint)}


def _failed_rows(plate: Plate, site: Site, error: str, channels=None) -> pd.DataFrame:
    rows = [{**_identity(plate, site), "channel": c, **dict.fromkeys(QUALITY_METRICS, np.nan), "error": error}
            for c in (channels if channels is not None else plate.channels)]
    return pd.DataFrame(rows)


def _read_channel(array, index: int, shape: tuple[int, int], where: str) -> np.ndarray:
    plane = array[index]
    if hasattr(plane, "compute"):
        plane = plane.compute(scheduler="synchronous")
    plane = np.asarray(plane)
    if plane.shape != tuple(shape):
        raise ValueError(f"{where} has shape {plane.shape}; expected {tuple(shape)} like the plate.")
    return plane


def _cell_count(project_dir: str | None, site: Site) -> int | None:
    if project_dir is None:
        return None
    nuclei = LabelStore(project_dir).read(site, ["nuclei"]).get("nuclei")
    if nuclei is None:
        return None
    return int(np.count_nonzero(np.bincount(nuclei.ravel())[1:]))


def run_qc_task(task: QcTask) -> pd.DataFrame:
    """Measure one site channel by channel; a channel that cannot be read is a row with its error."""
    plate, site = task.plate, task.site
    try:
        array = plate.site_array(site)
    except Exception as error:  # noqa: BLE001 - a site that cannot be opened is a row, not a crash
        return _failed_rows(plate, site, f"{type(error).__name__}: {error}")
    n_cells = _cell_count(task.project_dir, site)
    frames = []
    for index, channel in enumerate(plate.channels):
        where = f"Site {site.name}, channel {channel}"
        try:
            plane = _read_channel(array, index, plate.shape, where)
        except Exception as error:  # noqa: BLE001 - one unreadable channel must not stop the site
            frames.append(_failed_rows(plate, site, f"{type(error).__name__}: {error}", [channel]))
            continue
        row = site_quality(plane[np.newaxis], channels=[channel], n_cells=n_cells)
        frames.append(row.assign(**_identity(plate, site), error=""))
    return pd.concat(frames, ignore_index=True)


def _skipped_sites(plate: Plate) -> list[tuple[Site, str]]:
    """The sites the plate's reader left out (a channel missing, an unreadable file), with the reason."""
    found = []
    for item in plate.skipped:
        match = _SKIPPED_SITE.search(str(item.where))
        if match is not None:
            found.append((Site(match["well"], int(match["field"]), int(match["timepoint"])), item.reason))
    return found


def _skipped_rows(plate: Plate) -> list[pd.DataFrame]:
    return [_failed_rows(plate, site, f"left out when the plate was opened: {reason}")
            for site, reason in _skipped_sites(plate)]


def plate_site_keys(plate: Plate) -> set[str]:
    """The site keys quality control gives rows to: the plate's sites and those its reader left out.

    Examples
    --------
    >>> sorted(plate_site_keys(plate))[:2]
    ['B02_f000_t001', 'B02_f000_t002']
    """
    sites = [*plate.iter_sites(), *(site for site, _ in _skipped_sites(plate))]
    return {site_key(s.well, s.field, s.timepoint) for s in sites}


def _order(table: pd.DataFrame) -> pd.DataFrame:
    columns = [*IDENTITY_COLUMNS, *QUALITY_METRICS, "error", "flags", "reasons"]
    table = table.reindex(columns=columns)
    table["error"] = table["error"].fillna("").astype(str)
    return table.sort_values(["well", "timepoint", "field"], kind="stable").reset_index(drop=True)


def _write(folder: Path, table: pd.DataFrame, provenance: dict) -> None:
    write_parquet_atomic(table, folder / QC_TABLE)
    write_text_atomic(table.to_csv(index=False), folder / QC_TABLE.with_suffix(".csv"))
    write_json_atomic(provenance, folder / QC_TABLE.with_suffix(".json"))


def _flagged_summary(table: pd.DataFrame, flags: dict[str, list[str]]) -> dict:
    flagged = {}
    for key, rows in table.groupby("site_key", sort=False):
        if not flags.get(key):
            continue
        first = rows.iloc[0]
        reasons = [f"{c}: {r}" for c, r in zip(rows["channel"], rows["reasons"]) if r]
        flagged[key] = {"well": first["well"], "field": int(first["field"]), "timepoint": int(first["timepoint"]),
                        "flags": flags[key], "reasons": reasons}
    return flagged


def run_qc(
    plate: Plate,
    *,
    project_dir: str | os.PathLike,
    workers=1,
    thresholds: QcThresholds | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelCheck = None,
    wait: bool = False,
    pattern: str | None = None,
) -> QcResult:
    """Measure, flag and record the quality of every site of a plate.

    Parameters
    ----------
    plate : Plate
        The plate, raw (before illumination correction).
    project_dir : path
        Project folder; the table goes to ``qc/sites.parquet`` and ``qc/sites.csv``,
        the limits used to ``qc/sites.json``, the flags to ``qc/exclusions.json``.
    workers : int or Workers, optional
        Local worker processes, or a :class:`~napari_hcs.pipeline.Workers`.
    thresholds : QcThresholds, optional
        Limits of the flags (the documented defaults).
    progress : callable, optional
        ``progress(n_done, n_total)`` over the sites.
    cancel : callable or threading.Event, optional
        Checked between sites; a cancelled run raises
        :class:`~napari_hcs.cancel.Cancelled` and writes nothing (an earlier
        table stays as it was).
    wait : bool, optional
        Wait for another run holding the project's lock (else raise at once).
    pattern : str, optional
        Reader pattern of the plate, recorded with it when the project records no
        plate yet (so that the project reopens its plate).

    Returns
    -------
    QcResult

    Raises
    ------
    ProjectMismatchError
        If the project records another plate.
    """
    from ..pipeline import Workers

    start = time.perf_counter()
    limits = thresholds or QcThresholds()
    project = Project(project_dir)
    with project.lock(wait=wait, cancel=cancel):
        recorded = bool(project.read_meta().get("plate_identity"))
        if recorded:
            project.check_plate(plate)
        project_labels = str(project.folder) if (project.folder / "labels").is_dir() else None
        tasks = [QcTask(plate, s, project_labels) for s in plate.iter_sites()]
        frames, measured = _skipped_rows(plate), 0
        outcomes = Workers.of(workers).map(run_qc_task, tasks, preload=QC_PRELOAD, progress=progress, cancel=cancel)
        for task, outcome in outcomes:
            if isinstance(outcome, BaseException):
                outcome = _failed_rows(plate, task.site, f"{type(outcome).__name__}: {outcome}")
            frames.append(outcome)
            measured += 1
        if measured < len(tasks):
            check_cancel(cancel, "Quality control was cancelled; nothing was written (an earlier QC table is kept).")
        if not frames:
            raise ValueError(f"Plate {plate.name!r} has no site to check.")
        table = _order(flag_sites(pd.concat(frames, ignore_index=True), limits))
        flags = site_flags(table)
        failures = [{"site": k, "error": e} for k, e in table.loc[table["error"] != "", ["site_key", "error"]]
                    .drop_duplicates().itertuples(index=False)]
        source = os.path.abspath(plate.source) if plate.source else None
        provenance = {"plate": plate.name, "source": source, "thresholds": limits.to_dict(),
                      "sites": len(flags), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if not recorded and plate.source is not None:
            project.record_plate(plate, **({"pattern": pattern} if pattern else {}))
        _write(project.folder, table, provenance)
        SiteExclusions(project.folder).record_flags(flags)
    summary = {
        "plate": plate.name, "project": str(project.folder), "table": str(project.folder / QC_TABLE),
        "sites": len(flags), "flagged": _flagged_summary(table, flags), "failures": failures,
        "thresholds": limits.to_dict(), "seconds": round(time.perf_counter() - start, 3),
    }
    return QcResult(table=table, flags=flags, summary=summary)


def read_qc_table(project_dir: str | os.PathLike) -> pd.DataFrame | None:
    """The project's QC table (one row per site and channel), or None when quality control has not run.

    Examples
    --------
    >>> read_qc_table(tmp_path) is None
    True
    """
    path = Path(project_dir) / QC_TABLE
    if not path.is_file():
        return None
    table = pd.read_parquet(path)
    for column in ("error", "flags", "reasons"):
        if column in table:
            table[column] = table[column].fillna("").astype(str)
    return table
