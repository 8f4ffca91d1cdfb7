"""Opening a large OME-Zarr plate and moving between wells in the viewer.

Generates a 384-well x 4-site x 4-channel plate of 2160 x 2160 uint16 images with
full metadata and pixels written for a few wells only (unwritten chunks read as
zeros), then prints:

* the time to open it with :func:`napari_hcs.io.open_plate`, and how many pixel
  chunks that read (must be none);
* the time to show another well in a napari viewer (layer data swapped and the
  canvas redrawn), median over several wells.

Run under a display (``xvfb-run -a python benchmarks/open_plate.py``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from napari_hcs.io import create_plate_store, open_plate, write_site
from napari_hcs.plate import Site, well_name

WELLS_384 = [well_name(r, c) for r in range(16) for c in range(24)]
CHANNELS = ["DAPI", "GFP", "RFP", "Cy5"]


def make_plate(path: Path, *, written_wells: int, size: int) -> float:
    start = time.perf_counter()
    root = create_plate_store(
        path, wells=WELLS_384, n_fields=4, channels=CHANNELS, shape=(size, size), dtype="uint16",
        layout=(16, 24), pixel_size=0.65,
    )
    rng = np.random.default_rng(0)
    for well in WELLS_384[:written_wells]:
        for field in range(4):
            data = rng.integers(0, 4000, (4, size, size), dtype=np.uint16)
            write_site(root, Site(well, field, 0), data)
    return time.perf_counter() - start


class ReadCounter:
    """Counts chunk reads by wrapping zarr.Array.__getitem__."""

    def __init__(self):
        self.calls = 0
        self._original = zarr.Array.__getitem__

    def __enter__(self):
        counter = self

        def counting(array, selection):
            counter.calls += 1
            return counter._original(array, selection)

        zarr.Array.__getitem__ = counting
        return self

    def __exit__(self, *exc):
        zarr.Array.__getitem__ = self._original


def time_open(path: Path, repeats: int) -> tuple[float, int]:
    times, reads = [], 0
    for _ in range(repeats):
        with ReadCounter() as counter:
            start = time.perf_counter()
            plate = open_plate(path)
            times.append(time.perf_counter() - start)
        reads += counter.calls
        assert plate.n_sites() == 384 * 4
    return statistics.median(times), reads


def time_well_switch(path: Path, wells: list[str]) -> list[float]:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_hcs.viewer.layers import apply_layer_data, site_layer_data

    plate = open_plate(path)
    viewer = napari.Viewer(show=True)
    apply_layer_data(viewer, site_layer_data(plate, plate.site(wells[0])))
    QApplication.processEvents()
    times = []
    for well in wells[1:]:
        start = time.perf_counter()
        apply_layer_data(viewer, site_layer_data(plate, plate.site(well)))
        viewer.window._qt_viewer.canvas.native.repaint()
        QApplication.processEvents()
        times.append(time.perf_counter() - start)
    viewer.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2160)
    parser.add_argument("--written-wells", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-viewer", action="store_true", help="skip the viewer timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plate384.zarr"
        created = make_plate(path, written_wells=args.written_wells, size=args.size)
        opened, reads = time_open(path, args.repeats)
        print(f"plate: 384 wells x 4 sites x 4 channels, {args.size}x{args.size} uint16, "
              f"pixels in {args.written_wells} wells (created in {created:.1f} s)")
        print(f"open_plate: {opened * 1000:.0f} ms (median of {args.repeats}); "
              f"pixel reads during open: {reads}  [target < 2000 ms, 0 reads]")
        if not args.no_viewer:
            wells = ["A01", "A02", "A03", "B07", "P24", "A01", "H12", "A02", "C03"]
            switches = time_well_switch(path, wells)
            print(f"show another well in the viewer: median {statistics.median(switches) * 1000:.0f} ms, "
                  f"max {max(switches) * 1000:.0f} ms over {len(switches)} switches  [target < 300 ms]")


if __name__ == "__main__":
    main()
