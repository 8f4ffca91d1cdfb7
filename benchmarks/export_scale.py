"""Export of a million cells x 128 embedding dimensions to CSV, Parquet and .h5ad: time and memory.

A synthetic project is made with the project's own stores (a cell store of 200 sites of
5,000 cells, 8 classical features per cell, a 128-dimensional ``cnn`` embedding), then
each format is exported in a fresh process, twice: once for the time and the growth of
the peak resident memory (``ru_maxrss``) over a warmed-up process, once under
``tracemalloc`` for the peak of live Python and numpy memory. One copy of the embedding
alone is 488 MiB; a streaming export needs a small, fixed fraction of it.

Run: ``nice -n 10 .venv/bin/python benchmarks/export_scale.py [--cells N] [--dimensions D]``.
Prints ``name value unit`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("csv", "parquet", "h5ad")
SITES = 200

_MEASURE = r"""
import json, resource, sys, time, tracemalloc
from napari_hcs.profiles.export import ExportOptions, export_project
project, small, out, fmt, traced = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
export_project(small, out + ".warm", ExportOptions(format=fmt, overwrite=True))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if traced:
    tracemalloc.start()
started = time.perf_counter()
summary = export_project(project, out, ExportOptions(format=fmt, overwrite=True))
seconds = time.perf_counter() - started
peak = tracemalloc.get_traced_memory()[1] if traced else 0
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"seconds": seconds, "peak": peak, "rss_kib": before, "grown_kib": grown,
                  "bytes": summary.bytes, "blocks": summary.blocks, "rows": summary.rows}))
"""


def make_project(folder: Path, *, cells: int, dimensions: int, sites: int = SITES) -> None:
    """A cell store of ``cells`` cells in ``sites`` sites, 8 features, a ``cnn`` embedding."""
    from napari_hcs.profiles.embedding_store import EmbeddingStore
    from napari_hcs.project import CellStore

    store = CellStore.create(folder, channels=["DNA"], crop_size=1)
    per_site = cells // sites
    rng = np.random.default_rng(0)
    with EmbeddingStore(folder).writer("cnn", dimensions=dimensions, provenance={"source": "cnn", "model": "synthetic"},
                                       expected_rows=cells) as out:
        for site in range(sites):
            well = f"{'BCDEFG'[site % 6]}{site // 6 % 10 + 2:02d}"
            rows = pd.DataFrame({"plate": f"P{site % 2 + 1}", "well": well, "site": site, "field": site, "timepoint": 0,
                                 "label": np.arange(1, per_site + 1), "centroid_y": rng.random(per_site) * 1000,
                                 "centroid_x": rng.random(per_site) * 1000})
            key = f"{well}_f{site:03d}_t000"
            rows = store.append_site(key, rows, np.zeros((per_site, 1, 1, 1), np.float32))
            features = pd.DataFrame(rng.normal(size=(per_site, 8)), columns=[f"feat_{i}" for i in range(8)])
            features.insert(0, "crop_index", rows.crop_index.to_numpy())
            store.write_features(key, features)
            out.append(rows.crop_index.to_numpy(), rng.normal(size=(per_site, dimensions)).astype(np.float32))


def measure(project: Path, small: Path, out: Path, fmt: str, *, traced: bool) -> dict:
    command = [sys.executable, "-c", _MEASURE, str(project), str(small), str(out), fmt, "1" if traced else "0"]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="napari-hcs-export-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        make_project(scratch / "project", cells=args.cells, dimensions=args.dimensions)
        make_project(scratch / "small", cells=2000, dimensions=args.dimensions, sites=2)
        print(f"make_project_seconds {time.perf_counter() - started:.1f} s")
        print(f"cells {args.cells} cells")
        print(f"one_copy_of_embedding {args.cells * args.dimensions * 4 / 2**20:.0f} MiB")
        for fmt in args.formats:
            out = scratch / f"cells.{fmt}"
            timed = measure(scratch / "project", scratch / "small", out, fmt, traced=False)
            print(f"{fmt}_seconds {timed['seconds']:.1f} s")
            print(f"{fmt}_cells_per_second {timed['rows'] / timed['seconds']:.0f} cells/s")
            print(f"{fmt}_file_size {timed['bytes'] / 2**20:.0f} MiB")
            print(f"{fmt}_blocks {timed['blocks']} blocks")
            print(f"{fmt}_maxrss_before {timed['rss_kib'] / 1024:.0f} MiB")
            print(f"{fmt}_maxrss_growth {timed['grown_kib'] / 1024:.0f} MiB")
            traced = measure(scratch / "project", scratch / "small", out, fmt, traced=True)
            print(f"{fmt}_tracemalloc_peak {traced['peak'] / 2**20:.1f} MiB")
            out.unlink(missing_ok=True)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
