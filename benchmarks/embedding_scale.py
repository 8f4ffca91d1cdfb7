"""Scale: UMAP and k-means of 200,000 cells x 128 dimensions on 2 cores.

The cells are synthetic embeddings: ten Gaussian groups in 128 dimensions
(float32, as the embedding store holds them). The script times
:func:`napari_hcs.profiles.reduction.reduce_values` (UMAP, with its nearest
neighbours timed apart) and :func:`napari_hcs.profiles.clustering.cluster_values`
(k-means, which runs in mini-batches at this size) and prints, one per line,
``umap_neighbours_seconds``, ``umap_seconds``, ``kmeans_seconds``,
``total_seconds``, and the V-measure of the clusters against the groups as a check.
Progress goes to stderr. The first UMAP of a process includes numba's compilation
(tens of seconds); ``--warm`` runs a small UMAP first so that the figures leave it out.

Usage::

    python benchmarks/embedding_scale.py [--cells 200000] [--dimensions 128] [--threads 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _threads(argv: list[str]) -> str:
    if "--threads" in argv:
        return argv[argv.index("--threads") + 1]
    return "2"


# The thread pools are sized when numpy, numba and scikit-learn load: before the imports.
for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, _threads(sys.argv))

import numpy as np  # noqa: E402


def synthetic_embeddings(n: int, dimensions: int, groups: int = 10, seed: int = 0):
    """``n`` float32 vectors around ``groups`` centres, and the group of each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (groups, dimensions)).astype(np.float32)
    truth = rng.integers(0, groups, n)
    values = centres[truth] + rng.normal(0, 1, (n, dimensions)).astype(np.float32)
    return values, truth


def main() -> None:
    from tqdm import tqdm

    from napari_hcs.profiles.cluster_metrics import cluster_report
    from napari_hcs.profiles.clustering import ClusterOptions, cluster_values
    from napari_hcs.profiles.reduction import reduce_values

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="numba / BLAS threads (default 2)")
    parser.add_argument("--seed", type=int, default=None,
                        help="UMAP seed (reproducible, but one thread); default none: every thread")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--warm", action="store_true", help="compile numba on a small UMAP first")
    args = parser.parse_args()

    values, truth = synthetic_embeddings(args.cells, args.dimensions)
    print(f"cells {args.cells} -", flush=True)
    print(f"dimensions {args.dimensions} -", flush=True)
    print(f"threads {os.environ['NUMBA_NUM_THREADS']} -", flush=True)
    if args.warm:
        started = time.perf_counter()
        reduce_values(values[:5000], method="umap", seed=args.seed)
        print(f"umap_warm_up_seconds {time.perf_counter() - started:.1f} s", flush=True)

    marks = {}
    started = time.perf_counter()
    with tqdm(total=2, desc="UMAP (neighbours, layout)", unit="stage", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            marks.setdefault(done, time.perf_counter())
            bar.update(done - bar.n)

        reduced = reduce_values(values, method="umap", seed=args.seed, progress=progress)
    umap_seconds = time.perf_counter() - started
    print(f"umap_neighbours_seconds {marks[1] - started:.1f} s", flush=True)
    print(f"umap_seconds {umap_seconds:.1f} s", flush=True)

    started = time.perf_counter()
    with tqdm(total=1, desc="k-means", unit="run", file=sys.stderr) as bar:
        result = cluster_values(values, ClusterOptions(method="kmeans", k=args.k), what="cells")
        bar.update(1)
    kmeans_seconds = time.perf_counter() - started
    print(f"kmeans_seconds {kmeans_seconds:.1f} s", flush=True)
    print(f"total_seconds {umap_seconds + kmeans_seconds:.1f} s", flush=True)

    report = cluster_report(values, result.labels, truth=truth, sample=5000)
    print(f"kmeans_v_measure {report.metrics['v_measure']:.3f} -")
    print(f"umap_shape {reduced.shape[0]}x{reduced.shape[1]} -")


if __name__ == "__main__":
    main()
