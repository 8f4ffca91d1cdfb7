"""``napari-hcs qc``: image quality control of every site of a plate, into its project.

Writes the QC table (``qc/sites.parquet`` and ``qc/sites.csv``, one row per site
and channel), lists the flagged sites with their reasons (on stdout; on stderr
with ``--json``) and prints a JSON object last: each flagged site's well, field,
timepoint, flags and reasons, the sites excluded from training and profiles and
those kept. ``--keep`` / ``--exclude`` choose flagged sites to keep in (or leave
out of) training and profiles anyway. :func:`leave_out_excluded` is what
``train``, ``compare`` and ``baseline`` call to drop the cells of excluded sites.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._project_options import add_lock_argument, project_lock
from ._types import positive_int

__all__ = ["leave_out_excluded", "register", "run_qc_command"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``qc`` command."""
    parser = subparsers.add_parser(
        "qc",
        help="image quality control of every site: focus, saturation, blank, NaN, missing channels",
        description=(
            "Measure the image quality of every site and channel of a plate (CellProfiler's "
            "PowerLogLogSlope and FocusScore, PercentMaximal / PercentMinimal, saturated pixels, "
            "intensity quantiles, cell counts when segmented), flag outliers against the plate "
            "(median and MAD per channel) and absolute limits, write qc/sites.parquet and qc/sites.csv "
            "in the project and record the flagged sites, which training and profiles then leave "
            "out unless kept. A site that cannot be read is flagged missing_channel; the run goes on."
        ),
    )
    parser.add_argument("plate", help="plate: OME-Zarr store, folder of TIFFs or TIFF file (raw images)")
    parser.add_argument(
        "--project",
        help="project folder (default: <plate>.napari-hcs beside the plate, or under "
        "~/.napari-hcs/projects when the plate's folder is read-only)",
    )
    parser.add_argument("--pattern", help="file-name preset or regular expression of a TIFF folder")
    parser.add_argument("--workers", type=positive_int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--json", action="store_true",
                        help="print only the JSON object on stdout (the flagged sites in words go to stderr)")
    parser.add_argument("--keep", nargs="+", metavar="SITE_KEY", default=[],
                        help="keep these flagged sites (e.g. B04_f000_t002) in training and profiles")
    parser.add_argument("--exclude", nargs="+", metavar="SITE_KEY", default=[],
                        help="leave these sites out again (undo an earlier --keep)")
    add_lock_argument(parser)
    parser.set_defaults(func=run_qc_command)


def leave_out_excluded(table, project_dir) -> tuple:
    """Drop the cells of QC-excluded sites; say on stderr how many cells of how many sites.

    Returns
    -------
    table : DataFrame
        The cells of the other sites.
    excluded : dict or None
        ``{"cells", "sites", "site_keys"}`` when cells were left out, else None.
    """
    from ..images.site_exclusions import drop_excluded_cells

    table, dropped = drop_excluded_cells(table, project_dir)
    if not dropped:
        return table, None
    excluded = {"cells": int(sum(dropped.values())), "sites": len(dropped), "site_keys": sorted(dropped)}
    print(f"Quality control: left out {excluded['cells']} cell(s) of {excluded['sites']} excluded site(s) "
          f"({', '.join(excluded['site_keys'][:10])}{', ...' if len(dropped) > 10 else ''}); keep a site with "
          "'napari-hcs qc PLATE --keep SITE_KEY'.", file=sys.stderr)
    return table, excluded


def _check_keys(keys: list[str], known: set[str], option: str) -> None:
    unknown = [k for k in keys if k not in known]
    if unknown:
        examples = ", ".join(sorted(known)[:3])
        raise KeyError(f"{option}: site(s) {', '.join(unknown)} are not on the plate; site keys look like "
                       f"{examples} (well_fFIELD_tTIMEPOINT, as in qc/sites.csv).")


class _Bar:
    """A tqdm bar over sites on stderr, driven by ``progress(done, total)``."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc="qc", unit="site", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _describe(summary: dict, out) -> None:
    flagged = summary["flagged"]
    print(f"Quality control of plate {summary['plate']}: {summary['sites']} site(s), {len(flagged)} flagged; "
          f"table {summary['table']}", file=out)
    for key, site in flagged.items():
        print(f"  {key} (well {site['well']}, field {site['field']}, timepoint {site['timepoint']}): "
              f"{', '.join(site['flags'])}", file=out)
        for reason in site["reasons"]:
            print(f"      {reason}", file=out)
    print(f"Left out of training and profiles: {len(summary['excluded'])} site(s)"
          f"{'; kept although flagged: ' + ', '.join(summary['kept']) if summary['kept'] else ''}.", file=out)


def run_qc_command(args: argparse.Namespace) -> int:
    """Run ``napari-hcs qc``."""
    from ..images.qc_run import plate_site_keys, run_qc
    from ..images.site_exclusions import SiteExclusions
    from ..io import open_plate
    from ..project import default_project_dir

    plate = open_plate(args.plate, pattern=args.pattern)
    known = plate_site_keys(plate)
    _check_keys(args.keep, known, "--keep")
    _check_keys(args.exclude, known, "--exclude")
    both = sorted(set(args.keep) & set(args.exclude))
    if both:
        raise ValueError(f"Site(s) {', '.join(both)} given to both --keep and --exclude; give each to one.")
    project = args.project or default_project_dir(args.plate)
    print(f"Project: {project}", file=sys.stderr)
    bar = _Bar()
    try:
        with project_lock(project, args):
            result = run_qc(plate, project_dir=project, workers=args.workers, progress=bar, pattern=args.pattern)
            exclusions = SiteExclusions(project)
            if args.keep:
                exclusions.keep(args.keep)
            if args.exclude:
                exclusions.exclude(args.exclude)
    finally:
        bar.close()
    summary = {**result.summary, "excluded": sorted(exclusions.excluded()),
               "kept": sorted(exclusions.kept() & set(exclusions.flagged()))}
    _describe(summary, sys.stderr if args.json else sys.stdout)
    print(json.dumps(summary, indent=2))
    return 0
