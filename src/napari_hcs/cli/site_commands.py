"""``napari-hcs embed-sites``: embeddings of whole sites, their k-means clusters and Table 6.1."""

from __future__ import annotations

import argparse
import json
import sys

from ..vocabulary import DEVICE_CHOICES, SITE_EMBEDDING_SOURCES
from ._project_options import add_lock_argument, project_lock
from ._types import positive_int

__all__ = ["register", "run_embed_sites"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``embed-sites`` command."""
    parser = subparsers.add_parser(
        "embed-sites",
        help="embed whole sites (PCA, per-channel autoencoders or a site classifier), cluster them",
        description=(
            "Embed every site of a plate, downsampled per channel (after the project's recorded "
            "preprocessing, if any): PCA of the downsampled sites, one convolutional autoencoder per "
            "channel (bottlenecks concatenated), or a CNN trained on a well annotation (its penultimate "
            "layer). Sites quality control excluded are left out. The embedding is stored in the project "
            "as embeddings/sites/site-<source>; the sites are clustered with k-means and the clusters scored "
            "against the well annotation --labels-column when the wells have it: the row of Table 6.1 "
            "(cluster sizes, homogeneity, completeness, V-measure, Davies-Bouldin, silhouette) is printed, "
            "then a JSON summary (with --json only the JSON)."
        ),
    )
    parser.add_argument("plate", help="plate: OME-Zarr store, folder of TIFFs or TIFF file")
    parser.add_argument(
        "--project",
        help="project folder (default: <plate>.napari-hcs beside the plate, or under "
        "~/.napari-hcs/projects when the plate's folder is read-only)",
    )
    parser.add_argument("--source", required=True, choices=SITE_EMBEDDING_SOURCES,
                        help="where the embedding comes from")
    parser.add_argument("--k", type=positive_int, default=2, help="k-means clusters (default 2)")
    parser.add_argument("--labels-column", default="class",
                        help="well annotation the classifier learns and the clusters are scored against "
                        "(default class; e.g. Genotype)")
    parser.add_argument("--size", type=positive_int, default=64,
                        help="side each channel is downsampled to (default 64)")
    parser.add_argument("--dimensions", type=positive_int, default=16,
                        help="PCA components, or each channel's autoencoder bottleneck (default 16)")
    parser.add_argument("--epochs", type=positive_int, default=30,
                        help="training epochs of the autoencoders or the classifier (default 30)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="device of the networks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the networks and of k-means")
    parser.add_argument("--pattern", help="file-name preset or regular expression of a TIFF folder")
    parser.add_argument("--export", metavar="FILE",
                        help="also write the sites (embedding, cluster, metadata): .csv, .parquet or .h5ad")
    parser.add_argument("--export-wells", metavar="FILE",
                        help="also write the wells (median of their sites): .csv, .parquet or .h5ad")
    parser.add_argument("--json", action="store_true", help="print only the JSON object on stdout")
    add_lock_argument(parser)
    parser.set_defaults(func=run_embed_sites)


class _Bar:
    """A tqdm bar on stderr, driven by ``progress(done, total)``; a new bar when the total changes."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is not None and self.bar.total != total:
            self.close()
        if self.bar is None:
            self.bar = tqdm(total=total, desc="embed-sites", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _options(args: argparse.Namespace):
    from ..images.site_embeddings import SiteEmbeddingOptions

    return SiteEmbeddingOptions(source=args.source, size=args.size, dimensions=args.dimensions, epochs=args.epochs,
                                labels_column=args.labels_column, device=args.device, seed=args.seed)


def _summary(embedding, clusters, project) -> dict:
    return {
        "embedding": embedding.name, "project": str(project), "plate": embedding.provenance.get("plate"),
        "sites": len(embedding.table), "wells": int(embedding.table["well"].nunique()),
        "dimensions": int(embedding.values.shape[1]), "excluded_sites": embedding.excluded,
        "n_excluded": len(embedding.excluded), "clusters": clusters.to_json(),
    }


def _check_exports(args: argparse.Namespace, plate) -> list[tuple[str, bool]]:
    """The export files asked for, refused before any work when they would land in or on the plate."""
    from ..images.site_export import export_format
    from ..io.outputs import check_outputs

    exports = [(out, wells) for out, wells in ((args.export, False), (args.export_wells, True)) if out]
    for out, _ in exports:
        export_format(out)
    check_outputs([out for out, _ in exports], [plate.source])
    return exports


def run_embed_sites(args: argparse.Namespace) -> int:
    """Run ``napari-hcs embed-sites``."""
    from ..images.site_clusters import cluster_site_embedding, site_table_6_1, write_site_clusters
    from ..images.site_embeddings import embed_sites
    from ..images.site_export import export_site_embedding
    from ..io import open_plate
    from ..profiles.cluster_metrics import markdown_table
    from ..profiles.clustering import ClusterOptions
    from ..project import default_project_dir

    plate = open_plate(args.plate, pattern=args.pattern)
    options = _options(args)
    project = args.project or default_project_dir(args.plate)
    exports = _check_exports(args, plate)
    print(f"Project: {project}", file=sys.stderr)
    bar = _Bar()
    try:
        with project_lock(project, args):
            embedding = embed_sites(plate, project_dir=project, options=options, progress=bar)
            clusters = cluster_site_embedding(embedding, labels_column=args.labels_column,
                                              options=ClusterOptions(method="kmeans", k=args.k, seed=args.seed))
            write_site_clusters(project, clusters)
    finally:
        bar.close()
    written = {str(out): export_site_embedding(embedding, out, clusters=clusters, wells=wells)
               for out, wells in exports}
    if embedding.excluded:
        print(f"Quality control: left out {len(embedding.excluded)} excluded site(s) "
              f"({', '.join(embedding.excluded[:10])}).", file=sys.stderr)
    if clusters.labels_column is None:
        print(f"The wells have no {args.labels_column!r} annotation: homogeneity, completeness and V-measure "
              "are left out (give --labels-column).", file=sys.stderr)
    out = sys.stderr if args.json else sys.stdout
    print(f"k-means, k={args.k}, on {len(embedding.table)} site(s) of {embedding.name}:", file=out)
    print(markdown_table(site_table_6_1({embedding.name: clusters})), file=out)
    print(json.dumps({**_summary(embedding, clusters, project), "exported": written}))
    return 0
