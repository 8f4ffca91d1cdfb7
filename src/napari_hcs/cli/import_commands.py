"""``napari-hcs import-crops``: bring single-cell crops cut elsewhere into a project."""

from __future__ import annotations

import argparse
import json

from ._project_options import locked_command
from ._types import positive_int


def register(subparsers) -> None:
    """Add the ``import-crops`` command."""
    parser = subparsers.add_parser(
        "import-crops",
        help="import single-cell crops (.npz) and their metadata (.csv) into a project",
        description=(
            "Write crops (an .npz holding 'crops' of shape N x C x H x W) and a CSV with one "
            "row per crop into a project's cell store, and measure classical features of every "
            "crop. Re-running the same command resumes an interrupted import."
        ),
    )
    parser.add_argument("crops", help="crops file: .npz with key 'crops' (N, C, H, W), or .npy")
    parser.add_argument("meta", help="CSV with one row per crop, in the same order (plate, well, ...)")
    parser.add_argument("--project", required=True, help="project folder to create or resume")
    parser.add_argument(
        "--channels", help="comma-separated channel names, one per crop channel (default ch0,ch1,...)"
    )
    parser.add_argument(
        "--crop-size", type=positive_int, help="side of the stored crops (default: the crops' own size)"
    )
    parser.add_argument(
        "--nucleus-channel", default="0", help="nuclear-stain channel, by index or name (default 0)"
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=None, help="crops per table part (default 2048)"
    )
    locked_command(parser, run, create=True)


def _feature_count(store) -> int:
    """Number of feature columns, read from the schema of one features part."""
    import pandas as pd
    import pyarrow.parquet as pq

    from ..project import feature_columns

    parts = sorted((store.folder / "features").glob("*.parquet"))
    if not parts:
        return 0
    return len(feature_columns(pd.DataFrame(columns=pq.read_schema(parts[0]).names)))


def run(args: argparse.Namespace) -> int:
    """Import the crops with a progress bar and print a JSON summary."""
    from tqdm import tqdm

    from ..project import DEFAULT_CHUNK_SIZE, import_crops

    channels = None
    if args.channels:
        channels = [name.strip() for name in args.channels.split(",")]
    with tqdm(desc="import-crops", unit="cell") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        store = import_crops(
            args.crops,
            args.meta,
            args.project,
            channels=channels,
            crop_size=args.crop_size,
            nucleus_channel=args.nucleus_channel,
            chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE,
            progress=progress,
        )
    summary = {
        "project": str(store.folder),
        "cells": len(store),
        "channels": store.channels,
        "crop_size": store.crop_size,
        "features": _feature_count(store),
    }
    print(json.dumps(summary, indent=2))
    return 0
