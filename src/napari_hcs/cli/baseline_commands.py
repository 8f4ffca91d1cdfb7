"""``napari-hcs baseline``: classical baselines (random forest, LDA, linear SVM) on a project."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..vocabulary import BASELINE_METHODS
from ._normalisation_options import add_normalisation_arguments, normalisation_from_arguments
from ._project_options import locked_command
from .qc_commands import leave_out_excluded
from ._split_options import add_split_arguments, split_from_arguments

if TYPE_CHECKING:
    from ..learn.plates import Normalisation

RESULT_FILE = "baseline.json"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train and score random forest, LDA and linear SVM on the cells' features",
        description="Train the classical baselines on the feat_* columns of a project's cell "
        "table, normalised per plate, with the well-held-out split the CNNs use, and print their "
        "scores (on the test cells, fitted on train and val; without test cells on val, fitted on "
        "train). The last line printed is a JSON object {method: test metrics} (and qc_excluded when "
        "cells of sites quality control excluded were left out); everything is "
        f"saved to {RESULT_FILE} in the project.",
    )
    parser.add_argument("--project", required=True, help="project folder (with features computed)")
    parser.add_argument("--label-column", required=True, help="cell-table column holding the class")
    parser.add_argument(
        "--methods",
        default=",".join(BASELINE_METHODS),
        help=f"comma-separated methods among {', '.join(BASELINE_METHODS)} (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the models")
    parser.add_argument(
        "--corr-threshold", type=float, default=0.95,
        help="drop a feature whose |correlation| with an earlier one exceeds this (default 0.95)",
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel jobs of the random forest")
    add_split_arguments(parser, test_fraction=0.0)
    add_normalisation_arguments(parser)
    locked_command(parser, run_baseline)


def _parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in BASELINE_METHODS]
    if unknown or not methods:
        raise ValueError(
            f"--methods {text!r}: unknown method(s) {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(BASELINE_METHODS)}."
        )
    return methods


def _split_and_score(table, args, methods, normalisation: Normalisation):
    """Split the table, print the split summary, run the baselines; return both."""
    from tqdm import tqdm

    from ..learn import run_baselines, split_summary

    split = split_from_arguments(table, args, args.label_column)
    summary = split_summary(table, split, args.label_column, group_column=args.group_column)
    print("Split (cells and wells of each class on each side):", file=sys.stderr)
    print(summary.to_string(), file=sys.stderr)
    with tqdm(total=len(methods), desc="baselines", unit="method", file=sys.stderr) as bar:
        results = run_baselines(
            table,
            args.label_column,
            split,
            methods=methods,
            seed=args.seed,
            n_jobs=args.n_jobs,
            group_column=args.group_column,
            corr_threshold=args.corr_threshold,
            normalisation=normalisation,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    return summary, results


def _save(folder: Path, args, summary, results: dict, normalisation: Normalisation) -> None:
    from ..learn import save_confusion_matrix_png, save_metrics

    evaluated_on = next(iter(results.values()))["evaluated_on"]
    for method, result in results.items():
        png = folder / f"baseline_confusion_{method}.png"
        save_confusion_matrix_png(result["test"], png, title=f"{method} ({evaluated_on})")
    save_metrics(
        {
            "label_column": args.label_column,
            "split_column": args.split_column,
            "holdout": args.holdout,
            "group_column": args.group_column,
            "seed": args.seed,
            **normalisation.as_record(),
            "evaluated_on": evaluated_on,
            "split": {
                f"{side}/{cls}": {"cells": int(row.cells), "groups": int(row.groups)}
                for (side, cls), row in summary.iterrows()
            },
            "methods": results,
        },
        folder / RESULT_FILE,
    )


def run_baseline(args) -> int:
    from ..learn import format_table, metrics_table
    from ..project import Project

    folder = Path(args.project)
    if not folder.is_dir():
        raise FileNotFoundError(f"Project folder {folder} does not exist.")
    methods = _parse_methods(args.methods)
    normalisation = normalisation_from_arguments(args)
    table, excluded = leave_out_excluded(Project(folder).cell_table(), folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        summary, results = _split_and_score(table, args, methods, normalisation)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)

    evaluated_on = next(iter(results.values()))["evaluated_on"]
    print(f"Scores on the {evaluated_on} cells:")
    print(format_table(metrics_table(results)))
    _save(folder, args, summary, results, normalisation)
    print(f"Saved {folder / RESULT_FILE} and baseline_confusion_*.png", file=sys.stderr)
    scores = {method: result["test"] for method, result in results.items()}
    print(json.dumps({**scores, "qc_excluded": excluded} if excluded else scores))
    return 0
