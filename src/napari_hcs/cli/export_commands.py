"""``napari-hcs export``: a project's cells or well profiles as CSV, Parquet or AnnData (.h5ad)."""

from __future__ import annotations

import json
import sys

from ..vocabulary import EXPORT_FORMATS, EXPORT_LEVELS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export cells or well profiles to CSV, Parquet or AnnData (.h5ad) for scanpy, pandas or R",
        description="Write the project's cells (metadata, features, every stored embedding as obsm "
        "X_cnn, X_pca, X_umap, ...) or its well profiles (after 'napari-hcs profile') to OUT, block by "
        "block, so that a million cells fit in little memory. CSV and Parquet hold one flat table "
        "(embedding columns prefixed by their source: cnn_000, ...); .h5ad opens with "
        "anndata.read_h5ad. The last line printed is a JSON summary.",
    )
    parser.add_argument("--project", required=True, help="project folder")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="file format")
    parser.add_argument("--level", default="cell", choices=EXPORT_LEVELS,
                        help="one row per cell (default) or per well (the well profiles)")
    parser.add_argument("--embeddings", nargs="+", metavar="NAME",
                        help="embeddings to include (cell level), e.g. cnn cnn-umap; default every one stored")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it exists")
    parser.add_argument("--block-rows", type=int, default=None,
                        help="rows written per block (default: about 8 MiB of values per block)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")
    # "?" so that "--embeddings cnn pca OUT" works: the list then swallows OUT, taken back in run_export
    parser.add_argument("out", metavar="OUT", nargs="?", help="file to write (.csv, .parquet or .h5ad)")
    parser.set_defaults(func=run_export)


def _out_and_embeddings(args) -> tuple[str, tuple[str, ...] | None]:
    out, names = args.out, list(args.embeddings) if args.embeddings is not None else None
    if out is None and names:
        out = names.pop()
    if out is None:
        raise ValueError("Give the file to write (OUT) after the options.")
    if names is not None and not names:
        raise ValueError(f"--embeddings needs at least one NAME before OUT ({out}).")
    return out, None if names is None else tuple(names)


def run_export(args) -> int:
    from tqdm import tqdm

    from ..profiles.export import ExportOptions, export_project

    out, embeddings = _out_and_embeddings(args)
    options = ExportOptions(format=args.format, level=args.level, embeddings=embeddings,
                            overwrite=args.overwrite, block_rows=args.block_rows)
    with tqdm(desc=f"export {args.level}s", unit=args.level, file=sys.stderr, disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = export_project(args.project, out, options, progress=progress)
    for note in summary.warnings:
        print(f"warning: {note}", file=sys.stderr)
    if not args.json:
        obsm = ", ".join(f"{k} ({v})" for k, v in summary.obsm.items()) or "none"
        print(f"Wrote {summary.rows} {args.level}s to {summary.path} ({summary.format}, {summary.bytes} bytes, "
              f"X: {summary.x or 'none'} with {summary.variables} columns, obsm: {obsm}) in {summary.seconds} s")
    print(json.dumps(summary.to_dict()))
    return 0
