"""``napari-hcs info`` and ``napari-hcs convert``: look at a plate, write it as OME-Zarr."""

from __future__ import annotations

import json
import sys

from ..vocabulary import NGFF_VERSIONS
from ._types import positive_int


def _add_source_arguments(parser) -> None:
    parser.add_argument(
        "plate",
        nargs="+",
        help="OME-Zarr plate, folder of TIFFs, multichannel TIFF, or one TIFF per channel",
    )
    parser.add_argument(
        "--pattern",
        help="filename pattern of a TIFF folder: a preset (imagexpress, operetta, scportrait, "
        "nf1, cellomics) or a regular expression with named groups well (or row, column), "
        "field, channel, timepoint; detected when not given",
    )
    parser.add_argument(
        "--layout", help="CSV/TSV plate layout table (well + annotation columns); default: the "
        "plate_layout.tsv (or layout.csv, ...) inside the plate folder, if any",
    )
    parser.add_argument("--channel-names", help="comma-separated names replacing the channels' names")


def register(subparsers) -> None:
    info = subparsers.add_parser("info", help="print a plate's wells, sites, channels and annotations")
    _add_source_arguments(info)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run_info)

    convert = subparsers.add_parser("convert", help="write a plate as an OME-Zarr HCS plate")
    _add_source_arguments(convert)
    convert.add_argument(
        "out", help="output .zarr store; written beside it under a hidden name and moved into place when "
        "complete. An earlier plate written by napari-hcs is replaced; anything else is refused",
    )
    convert.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing output that is not a napari-hcs plate (once the new one is complete)",
    )
    convert.add_argument(
        "--ngff-version", choices=NGFF_VERSIONS, default="0.4",
        help="NGFF version: 0.4 (Zarr v2, widest reader support) or 0.5 (Zarr v3)",
    )
    convert.add_argument("--chunk-size", type=positive_int, default=1024, help="chunk edge in pixels")
    convert.set_defaults(func=run_convert)


def _open(args):
    from ..io import open_plate

    names = args.channel_names.split(",") if args.channel_names else None
    return open_plate(args.plate, pattern=args.pattern, layout=args.layout, channel_names=names)


def format_summary(summary: dict) -> str:
    """Return a plate summary as readable text."""
    wells = summary["wells"]
    lines = [
        f"Plate      {summary['name']}  ({summary['source']})",
        f"Layout     {summary['layout'][0]} x {summary['layout'][1]}",
        f"Wells      {len(wells)}: {', '.join(wells[:12])}{' ...' if len(wells) > 12 else ''}",
        f"Sites      {sum(summary['sites'].values())} in all; per well: "
        + ", ".join(sorted({str(n) for n in summary["sites"].values()})),
        f"Timepoints {', '.join(map(str, summary['timepoints']))}",
        f"Channels   {', '.join(summary['channels'])}",
        f"Image      {' x '.join(map(str, summary['shape']))} {summary['dtype']}"
        + (f", {summary['pixel_size_um']} um/pixel" if summary["pixel_size_um"] else ""),
    ]
    if summary["annotations"]:
        source = summary.get("layout_source")
        lines.append("Annotations" + (f" (from {source})" if source else ""))
        for well, values in summary["annotations"].items():
            lines.append(f"  {well}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    if summary["skipped"]:
        lines.append(f"Skipped    {len(summary['skipped'])}")
        lines += [f"  {item}" for item in summary["skipped"]]
    return "\n".join(lines)


def run_info(args) -> int:
    plate = _open(args)
    summary = plate.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(format_summary(summary))
    return 0


def run_convert(args) -> int:
    from tqdm import tqdm

    from ..io.ome_zarr_writer import check_plate_output, write_plate

    # Checked before the plate is read, then again by write_plate against the plate's own sources.
    check_plate_output(args.out, inputs=[*args.plate, args.layout], overwrite=args.overwrite, flag="--overwrite")
    plate = _open(args)
    for item in plate.skipped:
        print(f"skipped {item}", file=sys.stderr)
    try:
        with tqdm(total=plate.n_sites(), unit="site", desc=f"Writing {args.out}") as bar:
            write_plate(
                plate,
                args.out,
                version=args.ngff_version,
                chunk_size=args.chunk_size,
                overwrite=args.overwrite,
                progress=lambda done, total, site: bar.update(1),
            )
    except KeyboardInterrupt:
        print(f"Interrupted; {args.out} is left as it was.", file=sys.stderr)
        return 130
    print(json.dumps({"out": args.out, "wells": len(plate.wells), "sites": plate.n_sites(),
                      "channels": plate.channels, "skipped": [str(s) for s in plate.skipped]}))
    return 0
