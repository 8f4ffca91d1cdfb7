"""``napari-hcs baseline``: classical baselines (random forest, LDA, linear SVM) on a project."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

METHOD_NAMES = ("random_forest", "lda", "svm")
RESULT_FILE = "baseline.json"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train and score random forest, LDA and linear SVM on the cells' features",
        description="Train the classical baselines on the feat_* columns of a project's cell "
        "table, with the well-held-out split the CNNs use, and print their scores. The last "
        "line printed is a JSON object {method: test metrics}; everything is saved to "
        f"{RESULT_FILE} in the project.",
    )
    parser.add_argument("--project", required=True, help="project folder (with features computed)")
    parser.add_argument("--label-column", required=True, help="cell-table column holding the class")
    parser.add_argument(
        "--split-column",
        help="column holding a predefined split (train/val/test); without val, val wells are "
        "carved from train",
    )
    parser.add_argument(
        "--holdout",
        metavar="COLUMN=VALUE[,VALUE]",
        help="test on the cells whose COLUMN is one of the values (e.g. plate=Week4_27821), "
        "train on the others",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHOD_NAMES),
        help=f"comma-separated methods among {', '.join(METHOD_NAMES)} (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the models")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="fraction of wells for val")
    parser.add_argument(
        "--test-fraction", type=float, default=0.0,
        help="fraction of wells for test when no split is given (default 0: evaluate on val)",
    )
    parser.add_argument(
        "--group-column", default="well",
        help="what is held out whole: well (default) or plate, or another column",
    )
    parser.add_argument(
        "--corr-threshold", type=float, default=0.95,
        help="drop a feature whose |correlation| with an earlier one exceeds this (default 0.95)",
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel jobs of the random forest")
    parser.set_defaults(func=run_baseline)


def _parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHOD_NAMES]
    if unknown or not methods:
        raise ValueError(
            f"--methods {text!r}: unknown method(s) {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(METHOD_NAMES)}."
        )
    return methods


def _parse_holdout(text: str) -> tuple[str, list[str]]:
    column, sep, values = text.partition("=")
    if not sep or not column.strip() or not values.strip():
        raise ValueError(
            f"--holdout {text!r}: expected COLUMN=VALUE[,VALUE], e.g. plate=Week4_27821."
        )
    return column.strip(), [v.strip() for v in values.split(",") if v.strip()]


def _split(table, args):
    from ..learn.splits import holdout_split, split_by_well

    split_column = args.split_column
    if args.holdout:
        if split_column:
            raise ValueError("Give either --split-column or --holdout, not both.")
        column, values = _parse_holdout(args.holdout)
        split_column = "_holdout_split"
        table = table.assign(**{split_column: holdout_split(table, column, values)})
    return split_by_well(
        table,
        args.label_column,
        split_column=split_column,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        group_column=args.group_column,
        seed=args.seed,
    )


def run_baseline(args) -> int:
    from tqdm import tqdm

    from ..learn.baselines import run_baselines
    from ..learn.metrics import format_table, metrics_table, save_confusion_matrix_png, save_metrics
    from ..project.folder import Project
    from ..learn.splits import split_summary

    folder = Path(args.project)
    if not folder.is_dir():
        raise FileNotFoundError(f"Project folder {folder} does not exist.")
    methods = _parse_methods(args.methods)
    table = Project(folder).cell_table()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        split = _split(table, args)
        summary = split_summary(table, split, args.label_column, group_column=args.group_column)
        print("Split (cells / wells held out whole):", file=sys.stderr)
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
                progress=lambda done, total: bar.update(done - bar.n),
            )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)

    evaluated_on = next(iter(results.values()))["evaluated_on"]
    print(f"Scores on the {evaluated_on} cells:")
    print(format_table(metrics_table(results)))
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
            "evaluated_on": evaluated_on,
            "split": {
                f"{side}/{cls}": {"cells": int(row.cells), "groups": int(row.groups)}
                for (side, cls), row in summary.iterrows()
            },
            "methods": results,
        },
        folder / RESULT_FILE,
    )
    print(f"Saved {folder / RESULT_FILE} and baseline_confusion_*.png", file=sys.stderr)
    print(json.dumps({method: result["test"] for method, result in results.items()}))
    return 0
