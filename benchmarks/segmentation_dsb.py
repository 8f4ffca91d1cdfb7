"""Accuracy of the default nuclei segmentation on real images with ground truth.

Runs :func:`napari_hcs.segmentation.segment_nuclei` with its DEFAULT settings and prints

* Data Science Bowl 2018 (80 fluorescence images): F1 at IoU 0.5 (pooled over all
  nuclei, and the mean of per-image F1) and the DSB score (mean over images of the
  precision TP / (TP + FP + FN) averaged over IoU 0.5, 0.55, ..., 0.95);
* stardist's demo image: F1 at IoU 0.5 and the DSB score;
* NF1 Cell Painting: IoU of the nuclei foreground against CellProfiler's nuclei
  mask (DAPI), and, for information, of the cells grown on the RFP channel
  against CellProfiler's cell mask;
* scPortrait time course (6 sites, 1080 x 1080): nuclei per site, and CPU seconds
  per site for nuclei + cells (DAPI, mCherry) + 48 x 48 crops of every cell;
* the time per image.

Usage::

    python benchmarks/segmentation_dsb.py [--data ../shared/data] [--per-image]
        [--set NAME=VALUE ...]

``--set`` changes a :func:`segment_nuclei` option (e.g. ``--set threshold=li``)
to compare settings; the targets apply to the defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import tifffile

from napari_hcs.crops import cell_centroids, extract_crops
from napari_hcs.segmentation import (
    SegmentationParams,
    average_precision,
    foreground_iou,
    instance_f1,
    match_instances,
    segment_cells,
    segment_nuclei,
    segment_site,
)

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"dsb_f1": 0.80, "stardist_f1": 0.85, "nf1_iou": 0.80}


def grey(image: np.ndarray) -> np.ndarray:
    """Return a 2D grey image; an RGB(A) image is averaged over its colour channels."""
    image = np.squeeze(image)
    if image.ndim == 3:
        channels = np.moveaxis(image, int(np.argmin(image.shape)), -1)[..., :3]
        image = channels.astype(np.float32).mean(axis=-1)
    return image


def dsb(folder: Path, per_image: bool, options: dict) -> dict:
    images = sorted(folder.glob("*_image.tif"))
    if not images:
        raise FileNotFoundError(f"No *_image.tif in {folder}")
    totals = np.zeros(3, dtype=np.int64)
    f1s, scores, seconds, rows = [], [], 0.0, []
    for path in images:
        image = grey(tifffile.imread(path))
        truth = tifffile.imread(str(path).replace("_image.tif", "_labels.tif"))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = segment_nuclei(image, **options)
        seconds += time.perf_counter() - start
        tp, fp, fn = match_instances(truth, labels, 0.5)
        totals += (tp, fp, fn)
        f1s.append(2 * tp / max(2 * tp + fp + fn, 1))
        scores.append(average_precision(truth, labels))
        rows.append((path.name.split("_")[0], image.shape, tp, fp, fn, f1s[-1], scores[-1]))
    if per_image:
        print("image         shape        TP   FP   FN   F1@0.5  DSB score")
        for name, shape, tp, fp, fn, f1, score in sorted(rows, key=lambda r: r[5]):
            print(f"{name}  {str(shape):11s} {tp:4d} {fp:4d} {fn:4d}   {f1:.3f}   {score:.3f}")
    tp, fp, fn = totals
    return {
        "images": len(images),
        "nuclei": int(tp + fn),
        "f1_pooled": 2 * tp / (2 * tp + fp + fn),
        "f1_mean": float(np.mean(f1s)),
        "dsb_score": float(np.mean(scores)),
        "seconds_per_image": seconds / len(images),
    }


def stardist(folder: Path, options: dict) -> dict:
    image = tifffile.imread(folder / "img2d.tif")
    truth = tifffile.imread(folder / "mask2d.tif")
    labels = segment_nuclei(image, **options)
    return {
        "nuclei": int(len(np.unique(truth)) - 1),
        "found": int(labels.max()),
        "f1": instance_f1(truth, labels, 0.5),
        "dsb_score": average_precision(truth, labels),
    }


def nf1(folder: Path, options: dict) -> dict:
    images, masks = folder / "Plate_2_images", folder / "Plate_2_masks"
    dapi_paths = sorted(images.glob("*_DAPI_*.tif"))
    if not dapi_paths:
        raise FileNotFoundError(f"No *_DAPI_*.tif in {images}")
    nuclei_iou, cell_iou, start = [], [], time.perf_counter()
    for dapi_path in dapi_paths:
        prefix = dapi_path.name.split("_")[0]
        nuclei = segment_nuclei(tifffile.imread(dapi_path), **options)
        nuclei_mask = tifffile.imread(masks / dapi_path.name.replace(".tif", "_MaskNuclei.tiff"))
        nuclei_iou.append(foreground_iou(nuclei_mask, nuclei))
        rfp = sorted(images.glob(f"{prefix}_*_RFP_*.tif"))
        cell_masks = sorted(masks.glob(f"{prefix}_*_MaskCells.tiff"))
        if rfp and cell_masks:
            cells = segment_cells(tifffile.imread(rfp[0]), nuclei)
            cell_iou.append(foreground_iou(tifffile.imread(cell_masks[0]), cells))
    return {
        "sites": len(dapi_paths),
        "nuclei_iou": float(np.mean(nuclei_iou)),
        "cells_iou": float(np.mean(cell_iou)) if cell_iou else float("nan"),
        "seconds_per_site": (time.perf_counter() - start) / len(dapi_paths),
    }


def scportrait(folder: Path) -> dict:
    channels = ["Alexa488", "DAPI", "mCherry"]
    params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
    counts, seconds = {}, []
    for site_folder in sorted((folder / "input_images").iterdir()):
        for timepoint in (1, 2, 3):
            paths = [next(site_folder.glob(f"Timepoint{timepoint:03d}_*_{c}_*.tif")) for c in channels]
            image = np.stack([tifffile.imread(p) for p in paths])
            start = time.process_time()
            nuclei, cells = segment_site(image, params, channels)
            ids, centroids = cell_centroids(nuclei)
            extract_crops(image, centroids, size=48)
            seconds.append(time.process_time() - start)
            counts[f"{site_folder.name.split('_r')[0]} t{timepoint}"] = int(nuclei.max())
    return {"nuclei": counts, "cpu_seconds": seconds}


def _option(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set needs NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder of the real data sets (default ../shared/data)")
    parser.add_argument("--per-image", action="store_true", help="print every DSB image's scores")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="segment_nuclei option to change, e.g. threshold=li (repeatable)")
    args = parser.parse_args(argv)
    options = dict(_option(text) for text in args.set)
    if options:
        print(f"settings changed from the defaults: {options}")

    results = {
        "dsb": dsb(args.data / "dsb2018_nuclei", args.per_image, options),
        "stardist": stardist(args.data / "stardist_nuclei", options),
        "nf1": nf1(args.data / "nf1_cellpainting", options),
        "scportrait": scportrait(args.data / "scportrait_timecourse"),
    }
    d, s, n = results["dsb"], results["stardist"], results["nf1"]
    print(f"DSB 2018 ({d['images']} images, {d['nuclei']} nuclei): F1@0.5 pooled {d['f1_pooled']:.3f}, "
          f"mean per image {d['f1_mean']:.3f}; DSB score (mAP 0.5:0.95) {d['dsb_score']:.3f}; "
          f"{d['seconds_per_image']:.2f} s/image")
    print(f"stardist demo ({s['nuclei']} nuclei, {s['found']} found): F1@0.5 {s['f1']:.3f}; "
          f"DSB score {s['dsb_score']:.3f}")
    print(f"NF1 Cell Painting ({n['sites']} site(s)): nuclei foreground IoU vs CellProfiler "
          f"{n['nuclei_iou']:.3f}; cells (RFP) {n['cells_iou']:.3f}; {n['seconds_per_site']:.2f} s/site")
    sc = results["scportrait"]
    print("scPortrait nuclei per site: " + ", ".join(f"{k} {v}" for k, v in sc["nuclei"].items())
          + f"; nuclei + cells + crops {min(sc['cpu_seconds']):.2f} to {max(sc['cpu_seconds']):.2f} "
          "CPU s/site (default settings)")
    checks = {
        "dsb_f1": min(d["f1_pooled"], d["f1_mean"]),
        "stardist_f1": s["f1"],
        "nf1_iou": n["nuclei_iou"],
    }
    failed = [f"{k} {checks[k]:.3f} < {v}" for k, v in TARGETS.items() if checks[k] < v]
    print("targets met" if not failed else "targets missed: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
