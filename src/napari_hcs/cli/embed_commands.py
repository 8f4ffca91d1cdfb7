"""``napari-hcs embed`` and ``napari-hcs cluster``: cell embeddings, their reduction and clusters."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

from ..vocabulary import CLUSTER_LINKAGES, CLUSTER_METHODS, EMBEDDING_SOURCES, EXPORT_LEVELS, NORMALISATIONS, \
    REDUCTIONS
from ._project_options import locked_command
from ._types import positive_int
from .train_commands import DEVICES


def register(subparsers) -> None:
    _register_embed(subparsers)
    _register_cluster(subparsers)


def _register_embed(subparsers) -> None:
    parser = subparsers.add_parser(
        "embed", help="embed every cell: CNN layer, classical features, PCA of the crops or an autoencoder",
        description="Compute one vector per cell and store it in the project (embeddings/<source>): the "
        "penultimate layer of a trained CNN (cnn), the feat_* features z-scored per plate (features), a PCA "
        "of the raw crops (pca) or the bottleneck of an autoencoder trained on the crops (autoencoder). "
        "Cells of sites quality control excluded are left out. With --reduction the 2-D UMAP or PCA of it "
        "is stored too (embeddings/<source>-<reduction>). The last line printed is a JSON summary.")
    parser.add_argument("--project", required=True, help="project folder with cells")
    parser.add_argument("--source", required=True, choices=EMBEDDING_SOURCES, help="where the vectors come from")
    parser.add_argument("--model", help="cnn: a model of the project (napari-hcs train) or a checkpoint file "
                        "(default: the newest CNN)")
    parser.add_argument("--dimensions", type=positive_int, default=50,
                        help="pca: components; autoencoder: bottleneck size (default 50)")
    parser.add_argument("--epochs", type=positive_int,
                        help="autoencoder: training epochs (default 5 on a CPU, 30 on a GPU)")
    parser.add_argument("--input-size", type=positive_int,
                        help="pca and autoencoder: side the crops are shrunk to (default 32)")
    parser.add_argument("--normalisation", choices=NORMALISATIONS, default="plate",
                        help="features, pca, autoencoder: per-plate statistics or one set for all (default plate)")
    parser.add_argument("--controls", help="COLUMN=VALUE[,VALUE]: normalise each plate by its control cells")
    parser.add_argument("--reduction", choices=REDUCTIONS, help="also store the 2-D UMAP or PCA of the embedding")
    parser.add_argument("--device", choices=DEVICES, type=str.lower, default="auto",
                        help="cnn, autoencoder: device, or cuda:N (default auto)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training, sampling and UMAP (default 0)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")
    locked_command(parser, run_embed)


def _register_cluster(subparsers) -> None:
    parser = subparsers.add_parser(
        "cluster", help="cluster cells (on an embedding) or wells (on their profiles) and score the clusters",
        description="Cluster the cells of a project on a stored embedding (or its 2-D reduction, made when "
        "missing) with k-means, agglomerative clustering or HDBSCAN, and store each cell's cluster (column "
        "'cluster' of the cell table); or, with --level well, cluster the well profiles (napari-hcs profile) "
        "and store the clusters and the dendrogram with them. Prints the cluster sizes, homogeneity, "
        "completeness and V-measure (with --labels-column), Davies-Bouldin index and silhouette, then a JSON "
        "summary as the last line.")
    parser.add_argument("--project", required=True, help="project folder")
    parser.add_argument("--embedding", help="cells: the stored embedding to cluster, e.g. cnn, features, pca, "
                        "autoencoder (default cnn, else the first one stored)")
    parser.add_argument("--reduction", choices=REDUCTIONS, help="cells: cluster the 2-D reduction of the embedding")
    parser.add_argument("--method", choices=CLUSTER_METHODS, default="kmeans", help="algorithm (default kmeans)")
    parser.add_argument("--k", type=positive_int, default=2, help="clusters of kmeans and hierarchical (default 2)")
    parser.add_argument("--linkage", choices=CLUSTER_LINKAGES, default="ward",
                        help="hierarchical: ward (Euclidean) or average (cosine distance) (default ward)")
    parser.add_argument("--min-cluster-size", type=positive_int, default=15,
                        help="hdbscan: the smallest cluster (default 15)")
    parser.add_argument("--level", choices=EXPORT_LEVELS, default="cell", help="cluster cells or wells (default cell)")
    parser.add_argument("--labels-column", help="known classes (e.g. compound) to score the clusters against")
    parser.add_argument("--seed", type=int, default=0, help="seed of k-means and sampling (default 0)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary on stdout")
    locked_command(parser, run_cluster)


@contextmanager
def _bar(desc: str, unit: str):
    from tqdm import tqdm

    with tqdm(desc=desc, unit=unit, file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def _project(folder: str) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"Project folder {path} does not exist.")
    return path


def run_embed(args) -> int:
    from ..profiles.cell_embeddings import EmbedRequest, embed_cells
    from ..profiles.reduction import reduce_embedding

    folder = _project(args.project)
    request = EmbedRequest(source=args.source, model=args.model, dimensions=args.dimensions, epochs=args.epochs,
                           seed=args.seed, device=args.device, normalisation=args.normalisation,
                           controls=args.controls, input_size=args.input_size)
    unit = "cell"
    with _bar(f"embed ({args.source})", unit) as progress:
        embedding = embed_cells(folder, request, progress=progress)
    provenance = embedding.provenance
    summary = {"project": str(folder), "embedding": embedding.name, "cells": len(embedding),
               "dimensions": embedding.dimensions, "seconds": provenance.get("seconds"),
               "cells_dropped": provenance.get("cells_dropped_total", 0)}
    for key in ("model", "training_seconds", "epochs", "reconstruction_mse", "explained_variance",
                "nan_values_set_to_0"):
        if key in provenance:
            summary[key] = provenance[key]
    if args.reduction:
        with _bar(f"reduce ({args.reduction})", "stage") as progress:
            reduced = reduce_embedding(folder, embedding.name, method=args.reduction, seed=args.seed,
                                       progress=progress)
        summary["reduction"] = reduced.name
    if not args.json:
        print(f"Stored embedding {embedding.name!r}: {len(embedding)} cells x {embedding.dimensions} dimensions "
              f"in {summary['seconds']} s" + (f" (and {summary['reduction']!r})" if args.reduction else "") + ".")
    print(json.dumps(summary))
    return 0


def _default_embedding(folder: Path) -> str:
    from ..profiles.embedding_store import EmbeddingStore

    stored = [name for name in EMBEDDING_SOURCES if name in EmbeddingStore(folder)]
    if not stored or "cnn" in stored:
        return "cnn"  # a missing one gets the store's message, which says how to make it
    return stored[0]


def run_cluster(args) -> int:
    from ..profiles.cluster_metrics import markdown_table
    from ..profiles.clustering import ClusterOptions, cluster_cells, cluster_wells

    folder = _project(args.project)
    options = ClusterOptions(method=args.method, k=args.k, linkage=args.linkage,
                             min_cluster_size=args.min_cluster_size, seed=args.seed)
    if args.level == "well":
        if args.embedding or args.reduction:
            raise ValueError("--embedding and --reduction choose what cells are clustered on; wells are "
                             "clustered on their profiles (napari-hcs profile). Leave them out with --level well.")
        result = cluster_wells(folder, options=options, labels_column=args.labels_column)
        name = "well profiles"
    else:
        embedding = args.embedding or _default_embedding(folder)
        with _bar("cluster", "stage") as progress:
            result = cluster_cells(folder, embedding=embedding, reduction=args.reduction, options=options,
                                   labels_column=args.labels_column, progress=progress)
        name = embedding if args.reduction is None else f"{embedding}-{args.reduction}"
    report = result.report
    summary = {"project": str(folder), "level": args.level, "clustered": name, **options.to_dict(),
               "labels_column": args.labels_column, "n_clusters": result.n_clusters, "sizes": report.sizes_text(),
               "metrics": report.metrics}
    if not args.json:
        print(markdown_table(report.to_frame(name)))
    print(json.dumps(summary))
    return 0
