"""``napari-hcs illumination`` and ``napari-hcs preprocess``: the whole-image corrections.

``illumination`` estimates the illumination function of each channel from all sites
of a plate, saves it in the project (``illumination/<method>/``) and records with
``--apply`` that the project's plate is read corrected from then on (segmentation,
crops, training and the viewer), or with ``--no-apply`` that it is not.
``preprocess`` runs the preprocessing steps on one site, shows what they did
(``--preview OUT.png``: each channel before and after) and with ``--save`` records
the options in the project (project.json ``preprocessing``). Both print a JSON
summary last (only that on stdout with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..vocabulary import ILLUMINATION_METHODS, PREPROCESS_STEPS
from ._project_options import add_lock_argument, project_lock

__all__ = ["register"]

_PROJECT_HELP = ("project folder (default: <plate>.napari-hcs beside the plate, or under "
                 "~/.napari-hcs/projects when the plate's folder is read-only)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``illumination`` and ``preprocess`` commands."""
    ill = subparsers.add_parser(
        "illumination",
        help="estimate each channel's illumination function from all sites; optionally apply it",
        description="Estimate the illumination function of each channel from all sites of a plate "
        "(CellProfiler-style: background of every site, median over sites, smoothed, mean 1; or BaSiC "
        "flat and dark field with basicpy), save it in the project under illumination/<method>/, and "
        "record whether the project's plate is read corrected (divided by it) from then on.",
    )
    ill.add_argument("plate", help="plate: OME-Zarr store, folder of TIFFs or TIFF file")
    ill.add_argument("--project", help=_PROJECT_HELP)
    ill.add_argument("--pattern", help="file-name preset or regular expression of a TIFF folder")
    ill.add_argument("--illumination-method", default=ILLUMINATION_METHODS[0], choices=ILLUMINATION_METHODS,
                     help="cellprofiler (default) or basic (needs basicpy)")
    ill.add_argument("--channels", nargs="+", metavar="CHANNEL", help="channels to estimate (default: all)")
    ill.add_argument("--apply", action=argparse.BooleanOptionalAction, default=None,
                     help="read the project's plate corrected from now on (--no-apply: raw; default: "
                     "as recorded, off in a new project)")
    ill.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")
    add_lock_argument(ill)
    ill.set_defaults(func=run_illumination)

    pre = subparsers.add_parser(
        "preprocess",
        help="preview preprocessing steps on one site; --save records them in the project",
        description="Run preprocessing steps (in the order outliers, rolling_ball, median, tv_denoise, "
        "centre_crop) on one site of a plate, report what they did, draw the site before and after "
        "(--preview) and with --save record the options in the project. Options not given come from "
        "the project's saved ones, else the defaults. Per-channel values: one value for all channels, "
        "one per channel, or CHANNEL=VALUE pairs.",
    )
    pre.add_argument("plate", help="plate: OME-Zarr store, folder of TIFFs or TIFF file")
    pre.add_argument("--project", help=_PROJECT_HELP)
    pre.add_argument("--pattern", help="file-name preset or regular expression of a TIFF folder")
    pre.add_argument("--steps", nargs="+", choices=PREPROCESS_STEPS, help="steps to run (default: saved, else all)")
    pre.add_argument("--outlier-radius", nargs="+", metavar="R", help="outlier median radius (pixels), per channel")
    pre.add_argument("--outlier-threshold", nargs="+", metavar="T",
                     help="deviation from the local median that makes an outlier (intensity units), per "
                     "channel; 'auto': 5 robust standard deviations")
    pre.add_argument("--rolling-ball-radius", type=float, help="rolling-ball radius in pixels")
    pre.add_argument("--median-radius", type=int, help="median filter radius in pixels")
    pre.add_argument("--tv-weight", type=float, help="total-variation weight (relative to the intensity scale)")
    pre.add_argument("--crop-size", type=int, help="centre crop side in pixels")
    pre.add_argument("--site", help="site: WELL/FIELD/TIMEPOINT (e.g. B02/0/1) or a site key (B02_f000_t001); "
                     "default the plate's first site")
    pre.add_argument("--save", action="store_true", help="record the options in the project")
    pre.add_argument("--preview", metavar="OUT.png", help="write a before / after figure of the site")
    pre.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")
    add_lock_argument(pre)
    pre.set_defaults(func=run_preprocess)


def _open(args):
    """The plate (raw) and the project folder of a command; the plate recorded in a new project."""
    from ..io import open_plate
    from ..project import Project, default_project_dir

    plate = open_plate(args.plate, pattern=args.pattern)
    project = Project(args.project or default_project_dir(args.plate))
    print(f"Project: {project.folder}", file=sys.stderr)
    return plate, project


def _ensure_recorded(project, plate, pattern) -> None:
    if "plate" in project.read_meta():
        project.check_plate(plate)
    else:
        project.record_plate(plate, **({"pattern": pattern} if pattern else {}))


def _emit(summary: dict, args, lines: list[str]) -> int:
    out = sys.stderr if args.json else sys.stdout
    for line in lines:
        print(line, file=out)
    print(json.dumps(summary, default=str))
    return 0


def run_illumination(args: argparse.Namespace) -> int:
    """Run ``napari-hcs illumination``."""
    from tqdm import tqdm

    from ..images.corrected_loader import illumination_setting, record_illumination
    from ..images.illumination import estimate_illumination
    from ..images.vignette import corner_centre_ratio

    from ..images.basic_illumination import require_basicpy

    method = args.illumination_method
    if method == "basic":
        try:
            require_basicpy()
        except ImportError as error:
            raise RuntimeError(str(error)) from None
    plate, project = _open(args)
    with project_lock(project.folder, args):
        _ensure_recorded(project, plate, args.pattern)
        with tqdm(total=plate.n_sites(), desc="illumination", unit="site", file=sys.stderr) as bar:
            functions = estimate_illumination(plate, channels=args.channels, method=method,
                                              progress=lambda done, total: bar.update(done - bar.n))
        folder = functions.save(project.folder)
        if args.apply is None:
            previous = illumination_setting(project.read_meta())
            applied = previous["applied"] and previous["method"] == method
        else:
            applied = args.apply
            record_illumination(project.folder, method=method, applied=applied)
    flat = functions.flatfield
    summary = {
        "plate": plate.name, "project": str(project.folder), "method": method, "folder": str(folder),
        "channels": list(functions.channels), "applied": bool(applied),
        "n_sites": functions.provenance["n_sites"], "skipped": functions.provenance["skipped"],
        "cpu_seconds": functions.provenance["cpu_seconds"],
        "function": {c: {"min": round(float(flat[i].min()), 4), "max": round(float(flat[i].max()), 4),
                         "corner_centre": round(corner_centre_ratio(flat[i], percentile=50), 4)}
                     for i, c in enumerate(functions.channels)},
    }
    lines = [f"{method} illumination functions of {len(functions.channels)} channel(s) from "
             f"{summary['n_sites']} site(s) saved in {folder}; plate read "
             f"{'corrected' if applied else 'raw'} in this project."]
    lines += [f"  {c}: {v['min']:.3f} .. {v['max']:.3f} (corner / centre {v['corner_centre']:.3f})"
              for c, v in summary["function"].items()]
    lines += [f"  skipped {s}" for s in summary["skipped"]]
    return _emit(summary, args, lines)


def _per_channel(values: list[str] | None, option: str, channels: list[str]):
    """``--outlier-*`` values: one for all, one per channel, or CHANNEL=VALUE pairs."""
    if values is None:
        return None

    def number(text: str):
        if text.lower() in ("auto", "none"):
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{option}: {text!r} is not a number (or 'auto').") from None

    if all("=" in v for v in values):
        pairs = dict(v.split("=", 1) for v in values)
        unknown = [c for c in pairs if c not in channels and c != "*"]
        if unknown:
            raise KeyError(f"{option}: unknown channel(s) {', '.join(unknown)}; channels are {', '.join(channels)}.")
        return {c: number(v) for c, v in pairs.items()}
    if len(values) == 1:
        return number(values[0])
    if len(values) != len(channels):
        raise ValueError(f"{option}: {len(values)} values for {len(channels)} channels ({', '.join(channels)}); "
                         "give one value, one per channel, or CHANNEL=VALUE pairs.")
    return tuple(number(v) for v in values)


def _options(args, project, channels):
    from ..images.preprocess import PreprocessOptions, read_preprocessing

    options = read_preprocessing(project.folder) or PreprocessOptions()
    values = options.to_dict()
    if args.steps is not None:
        values["steps"] = args.steps
    for name in ("outlier_radius", "outlier_threshold"):
        given = _per_channel(getattr(args, name), "--" + name.replace("_", "-"), channels)
        if getattr(args, name) is not None:
            values[name] = given
    for name in ("rolling_ball_radius", "median_radius", "tv_weight", "crop_size"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return PreprocessOptions.from_dict(values)


def _site(plate, text: str | None):
    from ..io.labels import site_key
    from ..plate import Site, normalize_well_name

    sites = list(plate.iter_sites())
    if text is None:
        return sites[0]
    keys = {site_key(s.well, s.field, s.timepoint): s for s in sites}
    if text in keys:
        return keys[text]
    parts = text.split("/")
    try:
        wanted = Site(normalize_well_name(parts[0]), *(int(p) for p in parts[1:]))
    except (ValueError, TypeError):
        wanted = None
    if wanted in sites:
        return wanted
    raise KeyError(f"--site {text!r} is not on plate {plate.name!r}; give WELL/FIELD/TIMEPOINT "
                   f"(e.g. {sites[0].well}/{sites[0].field}/{sites[0].timepoint}) or a site key (e.g. {next(iter(keys))}).")


def run_preprocess(args: argparse.Namespace) -> int:
    """Run ``napari-hcs preprocess``."""
    from ..images.preprocess import preprocess_site, save_preprocessing, save_preview

    plate, project = _open(args)
    if "plate" in project.read_meta():
        plate = project.open_plate(args.plate, pattern=args.pattern)
    options = _options(args, project, plate.channels)
    site = _site(plate, args.site)
    raw = plate.read_site(site)
    started = time.perf_counter()
    processed = preprocess_site(raw, options, channels=plate.channels)
    seconds = time.perf_counter() - started
    if args.preview:
        save_preview(raw, processed, args.preview, channels=plate.channels, title=f"{site.name}: {', '.join(options.steps)}")
    if args.save:
        with project_lock(project.folder, args):
            _ensure_recorded(project, plate, args.pattern)
            save_preprocessing(project.folder, options)
    summary = {
        "plate": plate.name, "project": str(project.folder), "site": site.name, "options": options.to_dict(),
        "shape_in": list(raw.shape), "shape_out": list(processed.shape), "seconds": round(seconds, 3),
        "saved": bool(args.save), "preview": args.preview,
        "channels": {c: {"before_mean": round(float(raw[i].mean()), 2), "after_mean": round(float(processed[i].mean()), 2)}
                     for i, c in enumerate(plate.channels)},
    }
    lines = [f"Preprocessed {site.name} ({', '.join(options.steps) or 'no step'}) in {seconds:.2f} s: "
             f"{raw.shape} -> {processed.shape}" + ("; options saved in the project." if args.save else ".")]
    return _emit(summary, args, lines)
