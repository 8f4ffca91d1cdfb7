"""Table 6.1 on the BBBC021 crops: k-means (k=2) on four embeddings, scored against the compound.

The 3,598 BBBC021 crops (DMSO against cycloheximide, two plates) are imported
into a temporary project (``napari-hcs import-crops``' code, which measures the
classical features), then embedded four ways:

* ``cnn``: the penultimate layer of a small CNN (cnn1, depth 1, width 2, input
  32 pixels, linear intensities as the PCA and the autoencoder see them) trained
  on the compound of the cells (wells held out for validation);
* ``features``: the classical features, z-scored per plate;
* ``pca``: 50 components of the raw crops, normalised per plate, shrunk to 32 pixels;
* ``autoencoder``: the 50-number bottleneck of the convolutional autoencoder
  trained on the crops (no labels).

Each is clustered by k-means with k=2, and the clusters are scored against the
compound (homogeneity, completeness, V-measure) and on their own (Davies-Bouldin,
silhouette), printed in the layout of the embedding study's Table 6.1, then each
figure on a line of its own (``name value unit``). A UMAP of each embedding,
coloured by compound, is saved as a picture (docs/images/embeddings_umap.png).

Usage::

    python benchmarks/embedding_table.py [--cnn-epochs 5] [--ae-epochs 10] [--image PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from napari_hcs.profiles.cell_embeddings import EmbedRequest, embed_cells
from napari_hcs.profiles.cluster_metrics import markdown_table, table_6_1
from napari_hcs.profiles.clustering import ClusterOptions, cluster_cells
from napari_hcs.profiles.reduction import reduce_embedding
from napari_hcs.project import Project
from napari_hcs.project.crop_import import import_crops

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bbbc021_crops"
CHANNELS = ["DNA", "tubulin", "actin"]
SOURCES = ("cnn", "features", "pca", "autoencoder")


def train_cnn(project: Path, *, epochs: int, device: str) -> float:
    """Train the small CNN on the compound; return the seconds it took."""
    from napari_hcs.nn import TrainConfig, train_model

    folder = Project(project)
    store = folder.cell_store()
    config = TrainConfig(model="cnn1", depth=1, width=2, epochs=epochs, input_size=32, intensity="linear",
                         device=device, seed=0)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # two DMSO wells: validation takes sites, not wells
        train_model(folder.cell_table(), store.crops, config, label_column="compound", channels=store.channels,
                    checkpoint_path=folder.models_dir / "compound_cnn.pt")
    return time.perf_counter() - started


def save_umaps(project: Path, path: Path) -> None:
    """One UMAP panel per embedding, cells coloured by compound (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = Project(project).cell_table().set_index("crop_index")
    figure, axes = plt.subplots(1, len(SOURCES), figsize=(12, 3.3), dpi=80)
    colours = {"DMSO": "#1f77b4", "cyclohexamide": "#d62728"}
    for axis, source in zip(axes, SOURCES):
        reduced = reduce_embedding(project, source, method="umap", seed=0)
        xy = reduced.values[:]
        compound = table.loc[reduced.crop_index, "compound"].to_numpy()
        for name, colour in colours.items():
            chosen = compound == name
            axis.scatter(xy[chosen, 0], xy[chosen, 1], s=2, c=colour, alpha=0.5, linewidths=0,
                         label="cycloheximide" if name != "DMSO" else name)
        axis.set_title(source)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0].legend(loc="best", markerscale=5, fontsize=8, frameon=False)
    figure.suptitle("UMAP of BBBC021 cell embeddings, coloured by compound", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def run(args) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "bbbc021.napari-hcs"
        started = time.perf_counter()
        import_crops(args.data / "bbbc021_crops.npz", args.data / "bbbc021_crops.csv", project, channels=CHANNELS)
        print(f"import_seconds {time.perf_counter() - started:.1f} s")
        print(f"cnn_training_seconds {train_cnn(project, epochs=args.cnn_epochs, device=args.device):.1f} s")
        reports = {}
        for source in SOURCES:
            request = EmbedRequest(source=source, epochs=args.ae_epochs, device=args.device, dimensions=50)
            embedding = embed_cells(project, request)
            print(f"{source}_embed_seconds {embedding.provenance['seconds']:.1f} s")
            result = cluster_cells(project, embedding=source, options=ClusterOptions(method="kmeans", k=2),
                                   labels_column="compound")
            reports[source] = result.report
        table = table_6_1(reports)
        print()
        print(f"k-means, k=2, on {len(Project(project).cell_store())} BBBC021 cells; truth: compound")
        print(markdown_table(table))
        print()
        for source, report in reports.items():
            for key in ("homogeneity", "completeness", "v_measure", "davies_bouldin", "silhouette"):
                print(f"{source}_{key} {report.metrics[key]:.3f} -")
        if args.image:
            started = time.perf_counter()
            save_umaps(project, args.image)
            print(f"umap_picture_seconds {time.perf_counter() - started:.1f} s")
            print(f"# saved {args.image}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of bbbc021_crops.npz and .csv")
    parser.add_argument("--cnn-epochs", type=int, default=5)
    parser.add_argument("--ae-epochs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image", type=Path, default=ROOT / "docs" / "images" / "embeddings_umap.png",
                        help="where the UMAP picture goes ('' for none)")
    args = parser.parse_args()
    args.image = args.image if str(args.image) else None
    np.random.seed(0)
    run(args)


if __name__ == "__main__":
    main()
