"""The CNN against the best classical method on real data, with the old and the new defaults.

Every row trains the CNN and the classical methods (random forest, LDA, linear
SVM on the cells' features) on the same split of real cells and scores them on
the same held-out cells:

* ``bbbc021 27801->27821``: BBBC021 MCF7 cells, DMSO against cycloheximide
  ("Protein synthesis"); train on plate Week4_27801, test on Week4_27821;
* ``bbbc021 27821->27801``: the reverse;
* ``bbbc021 rare DMSO``: as the first row, but only 5 % of the training plate's
  DMSO cells are kept (the rest are unlabelled), to test rare-class recall;
* ``scportrait tp3``: the two-well scPortrait plate (segmented here), the cells
  of timepoint 3 held out.

The "old" column reproduces the defaults before per-plate normalisation:
validation by whole wells stratified by class alone (so a plate's only DMSO well
stays in training and validation has no DMSO cell), one global normalisation,
the best epoch by validation loss with early stopping after 5 epochs, no
test-time augmentation, classical methods on globally z-scored features fitted
on the training cells. The "new" column is ``TrainConfig()`` as it ships and
``build_split`` / ``run_baselines`` as they ship. The best classical method of a
run is the one with the highest balanced accuracy on the test cells (the
strictest comparison for the CNN); the random forest, the study's baseline, has
its own columns.

Two more columns put the targets in context: the balanced accuracy the CNN
needs for its target (a balanced error at most 0.6x the best classical
method's on the BBBC021 rows, not above it on scPortrait), and that of LDA
fitted on the test cells themselves (5-fold cross-validation over the test
cells, features normalised per plate): how well the features separate the test
cells when no plate or timepoint has to be bridged, an optimistic bound for a
model trained on other cells. With ``--cnn-on-test-cells`` the CNN is
cross-validated over the test cells the same way (five trainings per run): what
the network reaches with no plate to bridge.

Usage::

    python benchmarks/recipes.py                       # every row, seeds 0 1 2, both columns
    python benchmarks/recipes.py --rows bbbc021-a --seeds 0 --depth 1 --width 2
    python benchmarks/recipes.py --defaults new --set intensity=linear   # the new column before log intensities
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from napari_hcs.learn import Normalisation, build_split, run_baselines
from napari_hcs.learn.plates import within_columns
from napari_hcs.nn import TrainConfig, train_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: scPortrait cells are 50-60 pixels across: 64-pixel crops hold a whole cell (resized to 32 for the network).
SCPORTRAIT_CROP = 64
OLD_CONFIG = {"normalisation": "global", "early_stopping": 5, "monitor": "loss", "tta": False}


@dataclass
class Row:
    """One real set: how to get its table and crops, and how it is split."""

    name: str
    dataset: str
    label: str
    holdout: str
    input_size: int | None
    rare: str | None = None
    #: the CNN's target: a balanced error at most this times the best classical method's
    target_ratio: float = 0.6


ROWS = {
    "bbbc021-a": Row("bbbc021 27801->27821", "bbbc021", "moa", "plate=Week4_27821", 32),
    "bbbc021-b": Row("bbbc021 27821->27801", "bbbc021", "moa", "plate=Week4_27801", 32),
    "bbbc021-rare": Row("bbbc021 rare DMSO (5 %)", "bbbc021", "moa", "plate=Week4_27821", 32, rare="DMSO"),
    "scportrait": Row("scportrait tp3 held out", "scportrait", "Treatment", "timepoint=3", 32, target_ratio=1.0),
}


# -- data ----------------------------------------------------------------------------


def bbbc021_project(work: Path):
    from napari_hcs.project import Project
    from napari_hcs.project.crop_import import import_crops

    folder = work / "bbbc021"
    if not (folder / "crops.zarr").exists():
        source = SHARED / "bbbc021_crops"
        import_crops(source / "bbbc021_crops.npz", source / "bbbc021_crops.csv", folder,
                     channels=["DNA", "tubulin", "actin"])
    return Project(folder)


def scportrait_project(work: Path):
    from napari_hcs.io import open_plate
    from napari_hcs.pipeline import run_plate
    from napari_hcs.project import Project
    from napari_hcs.segmentation import SegmentationParams

    folder = work / f"scportrait{SCPORTRAIT_CROP}"
    if not (folder / "crops.zarr").exists():
        source = SHARED / "scportrait_timecourse"
        plate = open_plate(source / "input_images", pattern="scportrait", layout=source / "plate_layout.tsv")
        params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
        summary = run_plate(plate, folder, params, crop_size=SCPORTRAIT_CROP, features=True, pattern="scportrait",
                            workers=2)
        if summary["failures"]:
            raise RuntimeError(f"scPortrait sites failed: {summary['failures']}")
    return Project(folder)


def load(dataset: str, work: Path):
    project = bbbc021_project(work) if dataset == "bbbc021" else scportrait_project(work)
    return project.cell_table(), project.cell_store()


def rare_labels(table: pd.DataFrame, row: Row, seed: int) -> str:
    """Keep 5 % of the rare class's training cells labelled; return the label column used."""
    column, test_value = row.holdout.split("=")
    rng = np.random.default_rng(seed)
    rare = (table[row.label] == row.rare) & (table[column].astype(str) != test_value)
    dropped = rare & (rng.random(len(table)) >= 0.05)
    table["label_rare"] = table[row.label].where(~dropped)
    return "label_rare"


# -- splits ----------------------------------------------------------------------------


def old_split(table: pd.DataFrame, label: str, holdout: str, seed: int) -> pd.Series:
    """Validation as before: 20 % of each class's wells (by dominant class), plates ignored."""
    column, test_value = holdout.split("=")
    split = pd.Series(np.where(table[column].astype(str) == test_value, "test", "train"), index=table.index)
    wells = table["plate"].astype(str) + "/" + table["well"].astype(str)
    train = (split == "train") & table[label].notna()
    dominant = pd.crosstab(wells[train], table.loc[train, label]).idxmax(axis=1)
    rng = np.random.default_rng(seed)
    for cls in sorted(dominant.unique()):
        members = sorted(dominant.index[dominant == cls])
        members = [members[i] for i in rng.permutation(len(members))]
        n_val = min(max(1, round(0.2 * len(members))), len(members) - 1) if len(members) >= 2 else 0
        split[wells.isin(members[:n_val]) & train] = "val"
    return split.where(table[label].notna(), "")


def new_split(table: pd.DataFrame, label: str, holdout: str, seed: int) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_split(table, label_column=label, holdout=holdout, seed=seed)


# -- one run ---------------------------------------------------------------------------


def run_cnn(table, store, label, split, config: TrainConfig) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train_model(table, store.crops, config, label_column=label, split=split, channels=store.channels)
    test = result.metrics["test"]
    return {"balanced_accuracy": test["balanced_accuracy"], "accuracy": test["accuracy"],
            "per_class_recall": {c: v["recall"] for c, v in test["per_class"].items()},
            "epochs_run": len(result.history), "best_epoch": result.meta["best_epoch"], "tta": result.meta["tta"],
            "seconds": time.perf_counter() - started,
            "self_training_added": [r["added_cells"] for r in (result.meta.get("self_training") or {}).get("rounds", [])]}


def run_classical(table, label, split, *, old: bool, seed: int, within=()) -> dict:
    if old:  # fitted on the training cells alone, globally z-scored
        split = split.where(split != "val", "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_baselines(table, label, split, seed=seed, n_jobs=2,
                                normalisation=Normalisation("global") if old else Normalisation(within=within))
    best = max(results, key=lambda m: results[m]["test"]["balanced_accuracy"])
    test = results[best]["test"]
    return {"method": best, "balanced_accuracy": test["balanced_accuracy"], "accuracy": test["accuracy"],
            "all": {m: r["test"]["balanced_accuracy"] for m, r in results.items()}}


def ceiling_on_test_cells(table, label, split, *, seed: int, folds: int = 5, within=()) -> float:
    """Mean balanced accuracy of LDA cross-validated over the test cells alone."""
    from sklearn.model_selection import StratifiedKFold

    test = table[(split == "test") & table[label].notna()]
    labels = test[label].astype(str).to_numpy()
    scores = []
    for _, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(test, labels):
        fold_split = pd.Series("train", index=test.index)
        fold_split.iloc[held] = "test"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run_baselines(test, label, fold_split, methods=["lda"], seed=seed,
                                   normalisation=Normalisation(within=within))
        scores.append(result["lda"]["test"]["balanced_accuracy"])
    return float(np.mean(scores))


def cnn_on_test_cells(table, store, label, split, config: TrainConfig, *, folds: int = 5) -> float:
    """Mean balanced accuracy of the CNN cross-validated over the test cells alone.

    Each fold trains on the other four fifths of the test cells (a fifth of
    them, drawn at random, for validation) and scores the held-out fifth.
    """
    from sklearn.model_selection import StratifiedKFold

    test = table[(split == "test") & table[label].notna()]
    labels = test[label].astype(str).to_numpy()
    scores = []
    for fold, (rest, held) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=config.seed)
                                        .split(test, labels)):
        fold_split = pd.Series("", index=table.index)
        fold_split.loc[test.index[held]] = "test"
        validation = np.random.default_rng(config.seed + fold).random(len(rest)) < 0.2
        fold_split.loc[test.index[rest[validation]]] = "val"
        fold_split.loc[test.index[rest[~validation]]] = "train"
        scores.append(run_cnn(table, store, label, fold_split, config)["balanced_accuracy"])
    return float(np.mean(scores))


def run_one(row: Row, defaults: str, seed: int, args, cache: dict) -> dict:
    table, store = cache[row.dataset]
    table = table.copy()
    label = rare_labels(table, row, seed) if row.rare else row.label
    old = defaults == "old"
    split = (old_split if old else new_split)(table, label, row.holdout, seed)
    options = {**(OLD_CONFIG if old else {}), "input_size": row.input_size, "seed": seed, "device": args.device,
               "depth": args.depth, "width": args.width,
               **({} if old else {"normalise_within": args.normalise_within, **args.set})}
    cnn = run_cnn(table, store, label, split, TrainConfig(**options))
    cnn["test_cells_ceiling"] = (cnn_on_test_cells(table, store, label, split, TrainConfig(**options))
                                 if args.cnn_on_test_cells and not old else None)
    within = args.normalise_within
    classical = run_classical(table, label, split, old=old, seed=seed, within=within)
    classical["test_cells_ceiling"] = None if old else ceiling_on_test_cells(table, label, split, seed=seed,
                                                                             within=within)
    return {"row": row.name, "defaults": defaults, "seed": seed, "target_ratio": row.target_ratio,
            "cnn": cnn, "classical": classical,
            "val_cells": int((split == "val").sum()), "train_cells": int((split == "train").sum())}


# -- report ----------------------------------------------------------------------------


def print_run(record: dict) -> None:
    name = f"{record['row']} | {record['defaults']} | seed {record['seed']}"
    cnn, classical = record["cnn"], record["classical"]
    print(f"{name} | cnn balanced accuracy | {cnn['balanced_accuracy']:.4f}")
    print(f"{name} | cnn accuracy | {cnn['accuracy']:.4f}")
    print(f"{name} | cnn recall per class | " + ", ".join(f"{c} {v:.3f}" for c, v in cnn["per_class_recall"].items()))
    print(f"{name} | cnn epochs run / best epoch / tta | {cnn['epochs_run']} / {cnn['best_epoch']} / {cnn['tta']}")
    print(f"{name} | cnn training seconds | {cnn['seconds']:.0f} s")
    if cnn.get("self_training_added"):
        print(f"{name} | cnn self-training cells added per round | "
              + ", ".join(str(n) for n in cnn["self_training_added"]))
    print(f"{name} | best classical ({classical['method']}) balanced accuracy | {classical['balanced_accuracy']:.4f}")
    print(f"{name} | best classical accuracy | {classical['accuracy']:.4f}")
    if classical["test_cells_ceiling"] is not None:
        print(f"{name} | lda cross-validated on the test cells, balanced accuracy | "
              f"{classical['test_cells_ceiling']:.4f}")
    if cnn.get("test_cells_ceiling") is not None:
        print(f"{name} | cnn cross-validated on the test cells, balanced accuracy | "
              f"{cnn['test_cells_ceiling']:.4f}")
    sys.stdout.flush()


def _spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}"


def summary_table(records: list[dict]) -> str:
    lines = ["| set | defaults | CNN balanced acc | CNN acc | best classical | its balanced acc | its acc "
             "| balanced error CNN / classical | random forest balanced acc | balanced error CNN / forest "
             "| CNN balanced acc the target asks | LDA on the test cells (5-fold CV) | CNN on the test cells (5-fold CV) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["row"], r["defaults"]) for r in records}, key=lambda k: (k[0], k[1] != "old"))
    for row, defaults in keys:
        runs = [r for r in records if r["row"] == row and r["defaults"] == defaults]
        cnn_error = statistics.mean(1 - r["cnn"]["balanced_accuracy"] for r in runs)
        classical_error = statistics.mean(1 - r["classical"]["balanced_accuracy"] for r in runs)
        methods = ", ".join(sorted({r["classical"]["method"] for r in runs}))
        forest = [r["classical"]["all"]["random_forest"] for r in runs]
        ratio = cnn_error / classical_error if classical_error > 0 else float("inf")
        forest_ratio = cnn_error / statistics.mean(1 - f for f in forest)
        ceilings = [r["classical"]["test_cells_ceiling"] for r in runs
                    if r["classical"].get("test_cells_ceiling") is not None]
        ceiling = _spread(ceilings) if ceilings else "-"
        cnn_ceilings = [r["cnn"]["test_cells_ceiling"] for r in runs if r["cnn"].get("test_cells_ceiling") is not None]
        cnn_ceiling = _spread(cnn_ceilings) if cnn_ceilings else "-"
        asked = runs[0]["target_ratio"]
        target = "-" if defaults == "old" else f"{1 - asked * classical_error:.3f} ({asked:.1f}x)"
        lines.append(
            f"| {row} | {defaults} | {_spread([r['cnn']['balanced_accuracy'] for r in runs])} "
            f"| {_spread([r['cnn']['accuracy'] for r in runs])} | {methods} "
            f"| {_spread([r['classical']['balanced_accuracy'] for r in runs])} "
            f"| {_spread([r['classical']['accuracy'] for r in runs])} | {ratio:.2f}x "
            f"| {_spread(forest)} | {forest_ratio:.2f}x | {target} | {ceiling} | {cnn_ceiling} |")
    return "\n".join(lines)


def _option(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv=None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated among {', '.join(ROWS)}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--defaults", default="old,new", help="old, new or both (default old,new)")
    parser.add_argument("--depth", type=int, default=defaults.depth)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", help="folder for the projects (kept; default a temporary one)")
    parser.add_argument("--json", help="write every run's figures there")
    parser.add_argument("--normalise-within", default="", metavar="COLUMN[,COLUMN]",
                        help="new column: normalise each plate's groups on their own, CNN and features alike")
    parser.add_argument("--cnn-on-test-cells", action="store_true",
                        help="also cross-validate the CNN over the test cells (new column; five more trainings a run)")
    parser.add_argument("--set", nargs="*", default=[], metavar="OPTION=VALUE",
                        help="override TrainConfig options of the new column (e.g. epochs=40 ensemble=3)")
    args = parser.parse_args(argv)
    args.set = dict(_option(text) for text in args.set)
    args.normalise_within = within_columns(args.normalise_within)
    torch.set_num_threads(args.threads)
    rows = [ROWS[name.strip()] for name in args.rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="napari-hcs-recipes-") as temporary:
        work = Path(args.work or temporary)
        work.mkdir(parents=True, exist_ok=True)
        cache = {dataset: load(dataset, work) for dataset in sorted({r.dataset for r in rows})}
        records = []
        for row in rows:
            for seed in args.seeds:
                for which in args.defaults.split(","):
                    records.append(run_one(row, which.strip(), seed, args, cache))
                    print_run(records[-1])
                    if args.json:
                        Path(args.json).write_text(json.dumps(records, indent=2))
    print(f"network: wrn depth {args.depth} width {args.width}; seeds {' '.join(map(str, args.seeds))}; "
          f"device {args.device} ({args.threads} threads); new column overrides: {args.set or 'none'}; "
          f"normalised within plates by: {', '.join(args.normalise_within) or 'nothing (whole plates)'}")
    print(summary_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
