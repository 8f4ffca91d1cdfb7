"""Table 6.1 of the site embeddings of the real scPortrait plate (2 wells x 3 timepoints = 6 sites).

Embeds the six sites of ../shared/data/scportrait_timecourse (Row02_Well02:
Genotype1, unstimulated; Row02_Well04: Genotype2, stimulated) with each source
of :data:`napari_hcs.vocabulary.SITE_EMBEDDING_SOURCES` through the product's
:func:`napari_hcs.images.site_embeddings.embed_sites` (each channel downsampled to
64 x 64, default options), clusters the sites with k-means (k = 2) and scores the
clusters against the wells' genotype: the study's Table 6.1, one row per source.
The networks are trained again with each seed given (``--seeds``); the table is
that of the first seed, and the lines after it give each source's V-measure and
silhouette over the seeds, and its time.

The classifier is trained on the very labels it is scored against (every site is
a training site), so its row says how well its embedding keeps what it learnt,
not how well it finds the genotypes unsupervised.

Run: ``python benchmarks/site_embeddings.py [--seeds 0 1 2] [--size 64]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_hcs.images.site_clusters import cluster_site_embedding, site_table_6_1
from napari_hcs.images.site_embeddings import SiteEmbeddingOptions, embed_sites
from napari_hcs.io import open_plate
from napari_hcs.profiles.cluster_metrics import markdown_table
from napari_hcs.vocabulary import SITE_EMBEDDING_SOURCES

PLATE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scportrait_timecourse"
LABELS = "Genotype"


def run(sources, seeds, size: int, device: str):
    plate = open_plate(PLATE)
    first, scores, seconds = {}, {s: [] for s in sources}, {s: [] for s in sources}
    with tempfile.TemporaryDirectory() as project:
        for source in sources:
            for seed in seeds if source != "pca" else seeds[:1]:
                options = SiteEmbeddingOptions(source=source, size=size, labels_column=LABELS, device=device,
                                               seed=seed)
                start = time.perf_counter()
                embedding = embed_sites(plate, project_dir=project, options=options)
                seconds[source].append(time.perf_counter() - start)
                clusters = cluster_site_embedding(embedding, k=2, labels_column=LABELS)
                first.setdefault(source, clusters)
                scores[source].append(clusters.report.metrics)
    return first, scores, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sources", nargs="+", default=list(SITE_EMBEDDING_SOURCES))
    args = parser.parse_args(argv)
    if not PLATE.is_dir():
        print(f"The scPortrait plate is not at {PLATE}.", file=sys.stderr)
        return 1
    first, scores, seconds = run(args.sources, args.seeds, args.size, args.device)
    print(f"Table 6.1, k-means k=2 on the 6 sites ({args.size}x{args.size} per channel), truth: {LABELS}, "
          f"seed {args.seeds[0]}:")
    print(markdown_table(site_table_6_1({source: clusters for source, clusters in first.items()})))
    for source in args.sources:
        v = [m.get("v_measure") for m in scores[source]]
        s = [m.get("silhouette") for m in scores[source]]
        runs = len(v)
        print(f"{source}_v_measure_mean {np.mean(v):.3f} over_{runs}_seeds")
        print(f"{source}_v_measure_min {np.min(v):.3f} over_{runs}_seeds")
        print(f"{source}_silhouette_mean {np.mean(s):.3f} over_{runs}_seeds")
        print(f"{source}_seconds {np.mean(seconds[source]):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
