"""``napari-hcs segment-image``: nuclei (and cell) labels of one 2D image.

Reads a grey or multichannel TIFF (its channel axis by the rule of
:mod:`napari_hcs.io.tiff_axes`), segments the nuclei of one channel with the
default classical pipeline, and writes the instance labels as a compressed TIFF
(:func:`napari_hcs.io.write_label_image`: uint16, or uint32 beyond 65,535
objects). With ``--cells-channel`` it also grows the nuclei into cells on that
channel and writes the cell labels.

An output that resolves to the input image (or the two outputs to one file) is
refused before anything is read; each TIFF appears whole or not at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..vocabulary import AUTOMATIC_THRESHOLDS

__all__ = ["register", "read_image_planes", "run_segment_image"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``segment-image`` command."""
    parser = subparsers.add_parser(
        "segment-image",
        help="segment the nuclei of one 2D image into a label TIFF",
        description=(
            "Segment the nuclei of one 2D image (grey, or multichannel: the channel axis is the "
            "one the file names, else its smallest axis) and write their instance labels as a "
            "compressed TIFF. "
            "Prints the number of objects found."
        ),
    )
    parser.add_argument("image", help="input TIFF (2D grey or multichannel)")
    parser.add_argument("--out", required=True, help="output label TIFF of the nuclei (never the input image)")
    parser.add_argument(
        "--channel", type=int, default=0, help="nuclei channel index of a multichannel image (default 0)"
    )
    parser.add_argument("--diameter", type=float, help="nucleus diameter in pixels (default: estimated)")
    parser.add_argument(
        "--threshold", default="otsu", choices=AUTOMATIC_THRESHOLDS,
        help="automatic threshold method (default otsu)",
    )
    parser.add_argument("--smoothing", type=float, default=1.0, help="Gaussian sigma in pixels (default 1)")
    parser.add_argument("--exclude-border", action="store_true", help="drop nuclei touching the border")
    parser.add_argument(
        "--cells-channel", type=int,
        help="cytoplasm or membrane channel index: also segment cells on it",
    )
    parser.add_argument(
        "--cells-out", help="output label TIFF of the cells (default: <out>_cells.tif)"
    )
    parser.set_defaults(func=run_segment_image)


def read_image_planes(path: str | Path):
    """Read a 2D TIFF as ``(C, Y, X)`` planes (channel axis by :func:`napari_hcs.io.to_tcyx`).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming the file, when it cannot be read or is not 2D / multichannel 2D.
    """
    import tifffile

    from ..io import to_tcyx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Image file not found: {path}")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
    except Exception as error:  # tifffile raises many types for a bad file
        raise ValueError(f"Cannot read {path} as a TIFF image: {error}") from error
    planes = to_tcyx(array, axes)
    if planes.shape[0] != 1:
        raise ValueError(
            f"{path} has shape {array.shape} (axes {axes}); expected a 2D image or a 2D image "
            "with channels."
        )
    return planes[0]


def _plane(planes, index: int, option: str, path: str):
    if not 0 <= index < planes.shape[0]:
        raise ValueError(
            f"{option} {index} is out of range: {path} has {planes.shape[0]} channel(s) "
            f"(0 to {planes.shape[0] - 1})."
        )
    return planes[index]


def run_segment_image(args: argparse.Namespace) -> int:
    """Segment one image as the ``segment-image`` command does; return the exit code."""
    import numpy as np

    from ..io import write_label_image
    from ..io.outputs import check_outputs
    from ..segmentation import segment_cells, segment_nuclei

    out = Path(args.out)
    cells_out = None
    if args.cells_channel is not None:
        cells_out = Path(args.cells_out) if args.cells_out else out.with_name(f"{out.stem}_cells.tif")
    check_outputs([out, cells_out], [args.image])
    planes = read_image_planes(args.image)
    nuclei_image = _plane(planes, args.channel, "--channel", args.image)
    if args.cells_channel is not None:
        cell_image = _plane(planes, args.cells_channel, "--cells-channel", args.image)
    nuclei = segment_nuclei(
        nuclei_image,
        diameter=args.diameter,
        threshold=args.threshold,
        smoothing=args.smoothing,
        exclude_border=args.exclude_border,
    )
    count = write_label_image(nuclei, out)
    print(f"{count} nuclei -> {out}")
    if args.cells_channel is not None:
        cells = segment_cells(cell_image, nuclei, threshold=args.threshold, smoothing=args.smoothing)
        n_cells = int(np.count_nonzero(np.bincount(cells.ravel())[1:]))
        write_label_image(cells, cells_out)
        print(f"{n_cells} cells -> {cells_out}")
    return 0
