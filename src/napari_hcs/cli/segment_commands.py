"""``napari-hcs segment`` and ``napari-hcs features``: whole plates into a project.

``segment`` segments, crops and measures every site of a plate (resumable,
parallel); ``features`` measures the segmented sites that lack features. Both
show a progress bar over sites on stderr and print a JSON summary as their last
output; the sites that failed and the files and sites the plate's reader left
out are also listed on stderr. Exit codes (:data:`EXIT_CODES`): 0 every site
done, nothing skipped; 3 some sites failed or were skipped while the others
finished; 1 an error before anything ran, or every attempted site failed; 130
interrupted (Ctrl-C); 143 terminated (SIGTERM; worker processes end with the
command, finished sites are kept). Both hold the
project's lock for their whole run: a second run waits for the first, or with
``--no-wait`` stops at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..vocabulary import AUTOMATIC_THRESHOLDS, POOLS
from ._project_options import add_lock_argument, project_lock
from ._types import positive_int

__all__ = ["EXIT_CODES", "register"]

#: Exit codes of ``segment`` and ``features``.
EXIT_CODES = {
    0: "every site done (or already done), nothing skipped",
    1: "error before anything ran, or every attempted site failed",
    3: "some sites failed or were skipped (listed on stderr and in the summary); the others finished",
    130: "interrupted (Ctrl-C); finished sites are kept and a re-run resumes",
    143: "terminated (SIGTERM); finished sites are kept and a re-run resumes",
}
EXIT_PARTIAL = 3
EXIT_TERMINATED = 143

_EPILOG = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
#: Most failed or skipped entries listed one per line on stderr (all are in the JSON summary).
_LISTED = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``segment`` and ``features`` commands."""
    segment = subparsers.add_parser(
        "segment",
        help="segment, crop and measure every site of a plate into a project (resumable)",
        description=(
            "Segment nuclei and cells on every site of a plate, cut one crop per cell and "
            "measure classical features, into a project folder. Sites already done are "
            "skipped, so re-running after an interruption resumes. A project that holds "
            "cells of another plate, or made with other settings, is refused."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    segment.add_argument("plate", help="plate: OME-Zarr store, folder of TIFFs or TIFF file")
    segment.add_argument(
        "--project",
        help="project folder (default: <plate>.napari-hcs beside the plate, or under "
        "~/.napari-hcs/projects when the plate's folder is read-only)",
    )
    segment.add_argument("--nuclei-channel", required=True, help="name of the nuclear stain channel")
    segment.add_argument(
        "--cell-channel", help="cytoplasm or membrane channel for cell outlines "
        "(default: nuclei grown by --cell-expansion)"
    )
    segment.add_argument("--crop-size", type=positive_int, default=32, help="crop side in pixels (default 32)")
    segment.add_argument("--diameter", type=float, help="nucleus diameter in pixels (default: estimated)")
    segment.add_argument(
        "--threshold", default="otsu", choices=AUTOMATIC_THRESHOLDS,
        help="automatic threshold method (default otsu)",
    )
    segment.add_argument("--smoothing", type=float, help="Gaussian smoothing sigma in pixels")
    segment.add_argument("--cell-expansion", type=float, help="pixels to grow nuclei without a cell channel")
    segment.add_argument(
        "--exclude-border", action="store_true", help="drop cells touching the image border"
    )
    _add_run_options(segment, wells_help="wells to process, e.g. A01,B02 (default: all)")
    segment.add_argument("--pattern", help="file-name preset or regular expression of a TIFF folder")
    segment.add_argument(
        "--layout", help="plate layout table (CSV/TSV with a well column) saved with the project"
    )
    segment.add_argument("--no-features", action="store_true", help="skip classical features")
    segment.set_defaults(func=run_segment)

    features = subparsers.add_parser(
        "features",
        help="measure classical features of segmented sites that lack them",
        description=(
            "Measure classical per-cell features for every segmented site of a project "
            "that has none yet, from the images and the stored labels."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    features.add_argument("--project", required=True, help="project folder")
    features.add_argument(
        "--plate", help="where the project's plate is now, when it moved (default: its recorded location)"
    )
    features.add_argument("--pattern", help="file-name preset or regular expression of a TIFF folder "
                          "(with --plate; default: the recorded one)")
    _add_run_options(features, wells_help="wells to measure (default: all)")
    features.set_defaults(func=run_features_command)


def _add_run_options(parser: argparse.ArgumentParser, *, wells_help: str) -> None:
    parser.add_argument("--wells", nargs="+", help=wells_help)
    parser.add_argument("--workers", type=positive_int, default=1, help="local worker processes (default 1)")
    parser.add_argument(
        "--pool", choices=POOLS, default="process",
        help="kind of local pool with --workers > 1 (default process)",
    )
    parser.add_argument("--scheduler", help="dask distributed scheduler address, e.g. tcp://host:8786")
    add_lock_argument(parser)


def _wells(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [w.strip() for value in values for w in value.split(",") if w.strip()]


def _workers(args: argparse.Namespace):
    from ..pipeline import Workers

    return Workers(args.workers, pool=args.pool, scheduler=args.scheduler)


def _segmentation_params(args: argparse.Namespace):
    from ..segmentation import SegmentationParams

    options = {
        "nuclei_channel": args.nuclei_channel,
        "cell_channel": args.cell_channel,
        "diameter": args.diameter,
        "threshold": args.threshold,
        "exclude_border": args.exclude_border,
    }
    if args.smoothing is not None:
        options["smoothing"] = args.smoothing
    if args.cell_expansion is not None:
        options["cell_expansion"] = args.cell_expansion
    return SegmentationParams(**options)


class _ProgressBar:
    """A tqdm bar over sites, driven by the ``progress(done, total)`` callback."""

    def __init__(self, description: str):
        self.description = description
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.description, unit="site", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _report(summary: dict) -> int:
    print(json.dumps(summary, indent=2))
    problems = [f"failed: {f['site']}: {f['error']}" for f in summary["failures"]]
    problems += [f"skipped: {s['where']}: {s['reason']}" for s in summary.get("skipped", [])]
    for line in problems[:_LISTED]:
        print(line, file=sys.stderr)
    if len(problems) > _LISTED:
        print(f"... and {len(problems) - _LISTED} more (see the summary)", file=sys.stderr)
    attempted = summary["sites"] + len(summary["failures"])
    if attempted and summary["sites"] == 0:
        return 1
    return EXIT_PARTIAL if problems else 0


def _terminated() -> int:
    print("Terminated; finished sites are kept and a re-run resumes from there.", file=sys.stderr)
    return EXIT_TERMINATED


def _with_recorded_illumination(plate, project):
    """The plate corrected for illumination when its project records the correction as applied."""
    from ..images.corrected_loader import with_project_illumination
    from ..project import Project

    if not (Path(project) / "project.json").exists():
        return plate
    corrected = with_project_illumination(plate, project, Project(project).read_meta())
    if corrected is not plate:
        print("Illumination correction recorded in the project is applied.", file=sys.stderr)
    return corrected


def run_segment(args: argparse.Namespace) -> int:
    """Run ``napari-hcs segment``."""
    from ..io import open_plate
    from ..pipeline import check_channels, run_plate
    from ..pipeline.lifetime import Terminated, terminate_on_sigterm
    from ..project import default_project_dir

    plate = open_plate(args.plate, pattern=args.pattern, layout=args.layout)
    params = _segmentation_params(args)
    check_channels(params, plate.channels, where=f"plate {args.plate}")
    project = args.project or default_project_dir(args.plate)
    plate = _with_recorded_illumination(plate, project)
    print(f"Project: {project}", file=sys.stderr)
    bar = _ProgressBar("segment")
    try:
        with terminate_on_sigterm(), project_lock(project, args):
            summary = run_plate(
                plate, project, params, crop_size=args.crop_size, wells=_wells(args.wells),
                workers=_workers(args), features=not args.no_features, pattern=args.pattern, progress=bar,
            )
    except Terminated:
        return _terminated()
    finally:
        bar.close()
    return _report(summary)


def run_features_command(args: argparse.Namespace) -> int:
    """Run ``napari-hcs features``."""
    from ..pipeline import run_features
    from ..pipeline.lifetime import Terminated, terminate_on_sigterm
    from ..project import Project

    bar = _ProgressBar("features")
    try:
        with terminate_on_sigterm(), project_lock(args.project, args, create=False):
            project = Project(args.project)
            plate = project.open_plate(args.plate, pattern=args.pattern) if args.plate else None
            summary = run_features(project.folder, plate=plate, wells=_wells(args.wells), workers=_workers(args),
                                   progress=bar, pattern=args.pattern if args.plate else None)
    except Terminated:
        return _terminated()
    finally:
        bar.close()
    return _report(summary)
