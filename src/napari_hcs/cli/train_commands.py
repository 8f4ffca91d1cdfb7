"""``napari-hcs train``, ``predict`` and ``compare``: CNNs on a project's cell crops.

Run ``train`` under ``torchrun`` (``torchrun --nproc-per-node N $(which napari-hcs) train ...``)
to train with DistributedDataParallel; only rank 0 prints and writes files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..vocabulary import (BASELINE_METHODS, DEVICE_CHOICES, INTENSITY_SCALES, MODEL_NAMES, MONITORS, RESIZE_MODES,
                          SCHEDULES)
from ._normalisation_options import add_normalisation_arguments, normalisation_from_arguments
from ._project_options import locked_command
from .qc_commands import leave_out_excluded
from ._split_options import add_split_arguments, split_from_arguments
from ._types import non_negative_int, positive_int

COMPARE_JSON = "compare.json"
COMPARE_CSV = "compare.csv"
#: Training options recorded in compare.json beside the scores.
CNN_SETTINGS = ("model", "depth", "width", "epochs", "batch_size", "input_size", "normalisation", "controls",
                "normalise_within", "intensity", "ensemble", "self_training")


# -- arguments -----------------------------------------------------------------


class _DeviceNames(tuple):
    """The device names, which also take a GPU number: cuda:1."""

    def __contains__(self, name) -> bool:
        kind, colon, index = str(name).partition(":")
        return tuple.__contains__(self, kind) and (not colon or (kind != "auto" and index.isdigit()))


DEVICES = _DeviceNames(DEVICE_CHOICES)


def _add_model_arguments(parser) -> None:
    group = parser.add_argument_group("model and training")
    group.add_argument("--model", choices=MODEL_NAMES, default="wrn", help="network (default wrn)")
    group.add_argument("--depth", type=positive_int, default=1, help="blocks (convolutions) per stage (default 1)")
    group.add_argument("--width", type=positive_int, default=2, help="widening factor k: 16k/32k/64k channels (default 2)")
    group.add_argument("--dropout", type=float, default=0.0, help="dropout rate (default 0)")
    group.add_argument("--epochs", type=positive_int, default=60, help="maximum epochs (default 60)")
    group.add_argument("--batch-size", type=positive_int, default=128, help="cells per batch, per process (default 128)")
    group.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    group.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (default 5e-4)")
    group.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                       help="learning-rate schedule (default cosine)")
    group.add_argument("--early-stopping", type=int, default=15,
                       help="stop after this many epochs without a better validation balanced accuracy "
                       "(loss breaking ties; 0: never; default 15)")
    group.add_argument("--monitor", choices=MONITORS, default="balanced_accuracy",
                       help="validation score that picks the epoch kept (default balanced_accuracy, the loss "
                       "breaking ties)")
    group.add_argument("--no-balance", action="store_true", help="sample cells uniformly, not class-balanced")
    group.add_argument("--no-augment", action="store_true", help="no flips, rotations and random crops")
    group.add_argument("--intensity-jitter", type=float, default=0.0, help="random per-channel gain/offset s.d.")
    group.add_argument("--intensity", choices=INTENSITY_SCALES,
                       help="scale of the crops before each plate's statistics: log(1 + x), or as stored "
                       "(default log with --normalisation plate, linear with global)")
    group.add_argument("--input-size", type=positive_int, help="resize (or centre-crop) crops to this side first")
    group.add_argument("--resize-mode", choices=RESIZE_MODES, default="resize",
                       help="how crops reach --input-size (default resize)")
    group.add_argument("--device", choices=DEVICES, type=str.lower, default="auto",
                       help="device to train on, or cuda:N (default auto)")
    group.add_argument("--no-amp", action="store_true", help="compute in float32 (no bfloat16 / float16 mixed precision on CUDA or bfloat16 CPUs)")
    group.add_argument("--seed", type=int, default=0, help="seed of split, weights, sampling (default 0)")
    group.add_argument("--ensemble", type=positive_int, default=1,
                       help="train this many networks (seeds seed, seed+1, ...) and average them (default 1)")
    group.add_argument("--self-training", type=non_negative_int, default=0, metavar="ROUNDS",
                       help="rounds of self-training: test and unlabelled cells classified with at least "
                       "--self-training-confidence join training with their predicted class, and the network "
                       "is trained again (default 0)")
    group.add_argument("--self-training-confidence", type=float, default=0.95, metavar="P",
                       help="lowest class probability that gives a cell a class in self-training (default 0.95)")
    tta = group.add_mutually_exclusive_group()
    tta.add_argument("--tta", dest="tta", action="store_const", const=True, default=None,
                     help="always predict with test-time augmentation (mean over the 8 flips and rotations); "
                     "default: when it scores better on the validation cells")
    tta.add_argument("--no-tta", dest="tta", action="store_const", const=False, help="never")


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a CNN on the project's cell crops",
        description="Train a network on the crops of a project's cells, split by whole wells; "
        "print the metrics as JSON (last output) and save the model, with its confusion "
        "matrix as JSON and PNG beside it.",
    )
    train.add_argument("--project", required=True, help="project folder with a cell store")
    train.add_argument("--label-column", help="cell-table column holding the class (not for --model ae)")
    train.add_argument("--out", help="model file to write (default <project>/models/<model>_<label>.pt, "
                       "the label column's name kept to letters, digits, '.', '_' and '-')")
    train.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    add_split_arguments(train, test_fraction=0.0)
    add_normalisation_arguments(train)
    _add_model_arguments(train)
    locked_command(train, run_train)

    predict = subparsers.add_parser(
        "predict",
        help="classify and embed the project's cells with a trained model",
        description="Add the columns pred_class, pred_confidence (top probability), pred_margin "
        "(top minus second probability), pred_model (the model file's name), prob_<class> (column "
        "group 'predictions') and emb_000... ('embeddings') to the project's cell table.",
    )
    predict.add_argument("--project", required=True, help="project folder with a cell store")
    predict.add_argument("--model", required=True, help="model file from 'napari-hcs train'")
    predict.add_argument("--batch-size", type=positive_int, default=512, help="cells per batch (default 512)")
    predict.add_argument("--device", choices=DEVICES, type=str.lower, default="auto",
                         help="device to predict on, or cuda:N (default auto)")
    predict.add_argument("--no-embeddings", action="store_true", help="store predictions only")
    locked_command(predict, run_predict)

    compare = subparsers.add_parser(
        "compare",
        help="CNN against random forest, LDA and linear SVM on one split",
        description="Train the CNN and the classical baselines (on the feat_* columns) on the same "
        f"split and print their test scores as a table; saves {COMPARE_JSON} and {COMPARE_CSV} in "
        "the project. The last output is a JSON object {cnn, random_forest, lda, svm: metrics} (and "
        "qc_excluded: the cells of the sites quality control excluded, when some were left out).",
    )
    compare.add_argument("--project", required=True, help="project folder with crops and features")
    compare.add_argument("--label-column", required=True, help="cell-table column holding the class")
    compare.add_argument("--json", action="store_true", help="print only the JSON object on stdout")
    compare.add_argument("--n-jobs", type=int, default=1, help="parallel jobs of the random forest")
    add_split_arguments(compare, test_fraction=0.2)
    add_normalisation_arguments(compare)
    _add_model_arguments(compare)
    locked_command(compare, run_compare)


# -- shared steps --------------------------------------------------------------


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _project_table(folder: str):
    from ..project import Project

    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"Project folder {path} does not exist.")
    project = Project(path)
    table, excluded = leave_out_excluded(project.cell_table(), path)
    return project, table, project.cell_store(), excluded


def _make_split(table, args, label_column):
    """The split of the table that the split options ask for, and the table."""
    return split_from_arguments(table, args, label_column), table


def _train(args, table, store, split, out, *, desc: str):
    from tqdm import tqdm

    from ..nn import TrainConfig, train_model

    normalisation = normalisation_from_arguments(args)
    config = TrainConfig(
        model=args.model, depth=args.depth, width=args.width, dropout=args.dropout, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, schedule=args.schedule,
        balanced=not args.no_balance, early_stopping=args.early_stopping, monitor=args.monitor,
        augment=not args.no_augment,
        intensity_jitter=args.intensity_jitter, input_size=args.input_size, resize_mode=args.resize_mode,
        normalisation=normalisation.method, controls=normalisation.controls,
        normalise_within=",".join(normalisation.within), intensity=args.intensity, tta=args.tta,
        ensemble=args.ensemble,
        self_training=args.self_training, self_training_confidence=args.self_training_confidence,
        device=args.device, amp=not args.no_amp, seed=args.seed,
    )
    show = _is_main_process()
    total = args.epochs * args.ensemble * (1 + args.self_training)
    with tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, disable=not show) as bar:

        def progress(epoch: int, epochs: int, row: dict) -> None:
            shown = {"loss": row["train_loss"]}
            if row.get("val_loss") is not None:
                shown["val_loss"] = row["val_loss"]
            if row.get("val_balanced_accuracy") is not None:
                shown["val_bal_acc"] = row["val_balanced_accuracy"]
            bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
            bar.update(epoch - bar.n)

        return train_model(table, store.crops, config, label_column=args.label_column, split=split,
                           channels=store.channels, checkpoint_path=out, progress=progress,
                           notice=lambda text: bar.write(text, file=sys.stderr))


def _model_path(project, out: str | None, stem: str, *, overwrite: bool) -> Path:
    """The model file: ``out``, or ``stem`` (names from data made safe) in the project's models folder.

    Refused before training: an existing file without ``overwrite``, and a path over the cell store.
    """
    from ..io.outputs import check_new_file, check_outputs, file_inside, safe_name
    from ..project import CellStore

    path = Path(out) if out else file_inside(project.models_dir, f"{safe_name(stem)}.pt")
    store_files = (CellStore.META, "crops.zarr", "cells", "features", "columns", "project.json")
    check_outputs([path], [project.folder / name for name in store_files])
    check_new_file(path, overwrite=overwrite, what="Model file")
    return path


def _evaluated(metrics: dict) -> tuple[str, dict | None]:
    for name in ("test", "val"):
        if name in metrics:
            return name, metrics[name]
    return "", None


# -- commands ------------------------------------------------------------------


def run_train(args) -> int:
    from ..learn import save_confusion_matrix_png

    if args.model != "ae" and not args.label_column:
        raise ValueError(f"--label-column is needed to train the classifier {args.model!r}.")
    project, table, store, excluded = _project_table(args.project)
    out = _model_path(project, args.out, f"{args.model}_{args.label_column or 'embedding'}", overwrite=args.overwrite)
    split, table = _make_split(table, args, args.label_column)
    result = _train(args, table, store, split, out, desc=f"train {args.model}")
    if not _is_main_process():
        return 0
    summary = {
        "model": str(out),
        "best_epoch": result.meta["best_epoch"],
        "epochs_run": len(result.history),
        "tta": result.meta["tta"],
        "normalisation": result.meta["normalisation"]["method"],
        **({"normalise_within": within} if (within := result.meta["normalisation"].get("within")) else {}),
        **({"intensity": scale} if (scale := result.meta["normalisation"].get("intensity")) else {}),
        "seconds": round(sum(row["seconds"] for row in result.history), 2),
        "split": result.meta["split"]["counts"],
        **result.metrics,
    }
    if "self_training" in result.meta:
        summary["self_training"] = result.meta["self_training"]
    if excluded:
        summary["qc_excluded"] = excluded
    _, metrics = _evaluated(result.metrics)
    if metrics is not None and "confusion_matrix" in metrics:  # classifiers only
        confusion = out.with_name(f"{out.stem}_confusion.json")
        confusion.write_text(json.dumps(result.metrics, indent=2))
        figure = save_confusion_matrix_png(metrics, out.with_name(f"{out.stem}_confusion.png"))
        summary["confusion_files"] = [str(confusion), str(figure)]
    print(json.dumps(summary, indent=2))
    return 0


def run_predict(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from ..nn import predict_project

    if not Path(args.project).is_dir():
        raise FileNotFoundError(f"Project folder {args.project} does not exist.")
    with tqdm(desc="predict", unit="cell", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = predict_project(args.project, args.model, batch_size=args.batch_size, device=args.device,
                                 embeddings=not args.no_embeddings, model_name=Path(args.model).stem,
                                 progress=progress)
    summary = {"project": str(args.project), "model": str(args.model), "cells": int(len(result.crop_index))}
    if result.classes is not None:
        values, counts = np.unique(result.classes.astype(str), return_counts=True)
        summary["predicted"] = {str(v): int(c) for v, c in zip(values, counts)}
        summary["mean_confidence"] = float(result.confidence.mean()) if len(result.confidence) else None
        summary["mean_margin"] = float(result.margin.mean()) if len(result.margin) else None
    if result.embeddings is not None:
        summary["embedding_dim"] = int(result.embeddings.shape[1])
    print(json.dumps(summary, indent=2))
    return 0


def run_compare(args) -> int:
    from ..learn import format_table, metrics_table, run_baselines
    from ..nn.models import model_task

    if model_task(args.model) != "classification":
        raise ValueError(f"--model {args.model!r} does not classify; compare needs wrn, cnn1, cnn2 or cnn3.")
    project, table, store, excluded = _project_table(args.project)
    split, table = _make_split(table, args, args.label_column)
    # compare rewrites its own model each run, as it rewrites compare.json.
    out = _model_path(project, None, f"compare_{args.model}_{args.label_column}", overwrite=True)
    cnn = _train(args, table, store, split, out, desc=f"compare: {args.model}")
    if not _is_main_process():
        return 0
    print("compare: baselines (random forest, LDA, linear SVM) ...", file=sys.stderr)
    normalisation = normalisation_from_arguments(args)
    baselines = run_baselines(table, args.label_column, split, methods=BASELINE_METHODS, seed=args.seed,
                              n_jobs=args.n_jobs, group_column=args.group_column, normalisation=normalisation)
    evaluated_on, cnn_metrics = _evaluated(cnn.metrics)
    results = {"cnn": cnn_metrics}
    results.update({name: baselines[name][baselines[name].get("evaluated_on", "test")] for name in BASELINE_METHODS})
    frame = metrics_table(results)
    text = format_table(frame)
    record = {
        "label_column": args.label_column,
        "evaluated_on": evaluated_on,
        "split": cnn.meta["split"]["counts"],
        "cnn_model": str(out),
        "cnn_settings": {**{k: cnn.meta["hyperparameters"][k] for k in CNN_SETTINGS}, "tta": cnn.meta["tta"]},
        "seconds": {"cnn": round(sum(r["seconds"] for r in cnn.history), 2),
                    **{name: baselines[name].get("seconds") for name in BASELINE_METHODS}},
        "results": results,
    }
    if excluded:
        record["qc_excluded"] = excluded
    (project.folder / COMPARE_JSON).write_text(json.dumps(record, indent=2))
    frame.to_csv(project.folder / COMPARE_CSV)
    print(f"Scores on the {evaluated_on} cells (whole wells held out):", file=sys.stderr if args.json else sys.stdout)
    print(text, file=sys.stderr if args.json else sys.stdout)
    print(json.dumps({**results, "qc_excluded": excluded} if excluded else results, indent=2))
    return 0
