"""``napari-hcs profile``: well profiles of a project (aggregate, normalise, select), and their evaluation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..vocabulary import AGGREGATIONS, FEATURE_SELECTIONS, NORMALISATIONS, PROFILE_NORMALISATIONS
from ._project_options import locked_command
from ._types import positive_int


#: The defaults of :class:`~napari_hcs.profiles.well_profiles.ProfileOptions`, as the help shows them
#: (the options module is imported only when the command runs; a test checks these agree).
HELP_DEFAULTS = {"aggregation": "median", "normalisation": "standardize", "scope": "global",
                 "correlation_threshold": 0.9}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="make the well profiles of a project (median per well, normalised against controls)",
        description="Aggregate the cells of each well (median by default), normalise the features against "
        "the control wells (--controls), select features and sphere them on the controls, as pycytominer "
        "does, and store them in profiles/wells.parquet of the project. With --evaluate, also score them: "
        "not-same-compound (NSC) and not-same-compound-or-batch (NSCB) 1-nearest-neighbour MoA accuracy "
        "and mean average precision (copairs) of replicate and MoA retrieval. The last thing printed is a "
        "JSON summary.",
    )
    parser.add_argument("--project", required=True, help="project folder (with cells, and features or embeddings)")
    parser.add_argument("--source", default="features",
                        help="what to profile: 'features' (the classical feat_* columns, the default) or the "
                        "name of a stored embedding (napari-hcs embed), e.g. cnn or pca")
    group = parser.add_argument_group("profiles")
    group.add_argument("--aggregate", choices=AGGREGATIONS,
                       help=f"how a well's cells are summarised (default {HELP_DEFAULTS['aggregation']})")
    group.add_argument("--controls", metavar="COLUMN=VALUE[,VALUE]",
                       help="the control wells, e.g. compound=DMSO: the normalisation and the sphering are "
                       "fitted on them (default: on all wells)")
    group.add_argument("--profile-normalisation", choices=PROFILE_NORMALISATIONS,
                       help=f"pycytominer normalisation method (default {HELP_DEFAULTS['normalisation']})")
    group.add_argument("--normalisation", choices=NORMALISATIONS,
                       help="plate: each plate by its own controls; global: one fit on the controls of all "
                       f"plates (default {HELP_DEFAULTS['scope']}, which measured best on BBBC021)")
    group.add_argument("--feature-select", choices=FEATURE_SELECTIONS, nargs="*", metavar="OP",
                       help=f"pycytominer feature selection operations, among {', '.join(FEATURE_SELECTIONS)} "
                       "(default: all four; give the option alone to keep every feature)")
    group.add_argument("--correlation-threshold", type=float,
                       help=f"of correlation_threshold (default {HELP_DEFAULTS['correlation_threshold']})")
    group.add_argument("--spherize", action=argparse.BooleanOptionalAction,
                       help="whiten the profiles with ZCA fitted on the controls (default: on)")
    _add_evaluation_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")
    locked_command(parser, run_profile)


def _add_evaluation_arguments(parser) -> None:
    group = parser.add_argument_group("evaluation")
    group.add_argument("--evaluate", action="store_true",
                       help="score the profiles: NSC / NSCB MoA accuracy and replicate / MoA mAP")
    group.add_argument("--moa-column", default="moa", help="well annotation with the mechanism of action (moa)")
    group.add_argument("--compound-column", default="compound", help="well annotation with the compound (compound)")
    group.add_argument("--concentration-column", default="concentration",
                       help="well annotation with the concentration (concentration; a treatment is a compound "
                       "at one concentration, or the compound alone when the column is absent)")
    group.add_argument("--batch-column", help="well annotation with the batch, for NSCB (e.g. the week)")
    group.add_argument("--null-size", type=positive_int, default=1000,
                       help="permutations for the mAP p-values (default 1000)")


def _options(args):
    """The ProfileOptions of the parsed arguments; options not given keep the core's defaults."""
    from ..learn.plates import controls_text, parse_controls
    from ..profiles.well_profiles import ProfileOptions

    given = {"aggregation": args.aggregate, "normalisation": args.profile_normalisation,
             "scope": args.normalisation, "spherize": args.spherize,
             "correlation_threshold": args.correlation_threshold,
             "feature_selection": None if args.feature_select is None else tuple(args.feature_select)}
    return ProfileOptions(controls=controls_text(parse_controls(args.controls)),
                          **{key: value for key, value in given.items() if value is not None})


def _build(folder: Path, args):
    from tqdm import tqdm

    from ..profiles.well_profiles import build_well_profiles

    with tqdm(desc="profile", unit="step", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return build_well_profiles(folder, source=args.source, options=_options(args), progress=progress)


def _evaluate(profiles, args) -> dict:
    from ..profiles.profile_evaluation import evaluate_profiles

    try:
        return evaluate_profiles(profiles, moa=args.moa_column, compound=args.compound_column,
                                 concentration=args.concentration_column, batch=args.batch_column,
                                 null_size=args.null_size)
    except KeyError as error:
        raise KeyError(f"The well profiles are saved, but cannot be evaluated: {error.args[0]}") from None


def _print_evaluation(evaluation: dict, file) -> None:
    def shown(value):
        return "n/a" if value is None else f"{value:.3f}"

    print(f"NSC {shown(evaluation['nsc'])}  NSCB {shown(evaluation['nscb'])}  "
          f"mAP replicates {shown(evaluation['map_replicates'])}  mAP MoA {shown(evaluation['map_moa'])}", file=file)
    for name, reason in evaluation["skipped"].items():
        print(f"{name} not scored: {reason}", file=file)


def _summary(folder: Path, profiles) -> dict:
    from ..profiles.profile_store import well_profiles_path

    provenance = profiles.provenance
    keys = ("source", "aggregation", "normalisation", "scope", "controls", "feature_selection", "spherize",
            "plates", "wells", "cells", "excluded_cells", "excluded_sites", "features_in")
    summary = {"project": str(folder), "profiles": str(well_profiles_path(folder))}
    summary.update({key: provenance.get(key) for key in keys})
    summary["features"] = len(profiles.features)
    return summary


def run_profile(args) -> int:
    folder = Path(args.project)
    if not folder.is_dir():
        raise FileNotFoundError(f"Project folder {folder} does not exist.")
    profiles = _build(folder, args)
    summary = _summary(folder, profiles)
    if args.evaluate:
        summary["evaluation"] = _evaluate(profiles, args)
    text = sys.stderr if args.json else sys.stdout
    print(f"{summary['wells']} well profiles of {summary['features']} features (of {summary['features_in']}) "
          f"from {summary['cells']} cells; {summary['excluded_cells']} cells of excluded sites left out.", file=text)
    if args.evaluate:
        _print_evaluation(summary["evaluation"], text)
    print(f"Saved {summary['profiles']}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
