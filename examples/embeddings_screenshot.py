"""The Embeddings tab on the real scPortrait plate: docs/images/embeddings_dock.png and embeddings_panel.png.

Segments the plate (with features) into a project in a temporary folder,
stores the classical features as an embedding, reduces it with UMAP and
clusters the cells with k-means (k=2) through :mod:`napari_hcs.profiles`, opens
the plate in napari with the dock and the Embeddings tab, draws a lasso around
one cluster of the scatter, colours the cells on the image by cluster and
saves the window and the tab.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" python examples/embeddings_screenshot.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import napari
import numpy as np

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_plate
from napari_hcs.profiles.clustering import ClusterOptions, cluster_cells
from napari_hcs.profiles.embedding_store import EmbeddingStore
from napari_hcs.profiles.reduction import reduce_embedding
from napari_hcs.project import Project
from napari_hcs.segmentation import SegmentationParams
from napari_hcs.widgets.embedding_panel import EmbeddingPanel
from napari_hcs.widgets.main_dock import MainDock, _scrolling
from screenshots import save, wait_until  # examples/ is on the path when this script runs

ROOT = Path(__file__).resolve().parents[1]
PLATE = ROOT.parent / "shared" / "data" / "scportrait_timecourse"
IMAGES = ROOT / "docs" / "images"


def make_project(folder: Path) -> None:
    """Segment the plate, store its standardised features as an embedding, UMAP it and cluster it."""
    if not (folder / "cells.json").exists():
        plate = open_plate(PLATE)
        run_plate(plate, folder, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"), crop_size=32)
    table = Project(folder).cell_table()
    features = [c for c in table.columns if c.startswith("feat_") and table[c].notna().all() and table[c].std() > 0]
    values = table[features].to_numpy(float)
    values = (values - values.mean(axis=0)) / values.std(axis=0)
    EmbeddingStore(folder).write("features", table["crop_index"].to_numpy(), values,
                                 provenance={"source": "features", "features": features})
    reduce_embedding(folder, "features", method="umap")
    cluster_cells(folder, embedding="features", reduction="umap", options=ClusterOptions(method="kmeans", k=2))


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "project"
    make_project(folder)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    dock = MainDock(viewer)
    panel = EmbeddingPanel(dock.session, viewer)
    dock.tabs.addTab(_scrolling(panel), "Embeddings")
    viewer.window.add_dock_widget(dock, name="napari HCS", area="right")
    dock.plate.open_plate(PLATE, project_dir=folder)
    wait_until(lambda: dock.session.shown_site is not None and dock.overlay.cells is not None)
    dock.tabs.setCurrentIndex(dock.tabs.count() - 1)
    session = dock.session
    session.request_well("B04", 1)
    wait_until(lambda: session.shown_site is not None and session.shown_site.well == "B04"
               and dock.overlay.cells is not None and dock.overlay.cells["well"].eq("B04").all())
    dock.overlay_panel.clusters_box.setChecked(True)
    lasso_one_cluster(panel)
    wait_until(lambda: len(session.selected_cells) > 0)
    for _ in range(20):
        napari.qt.get_qapp().processEvents()
    IMAGES.mkdir(parents=True, exist_ok=True)
    save(viewer, IMAGES / "embeddings_dock.png", width=1400)
    panel.grab().save(str(IMAGES / "embeddings_panel.png"))
    print(f"selected {len(session.selected_cells)} cells; scatter of {len(session.scatter)}")


def lasso_one_cluster(panel: EmbeddingPanel) -> None:
    """A free-hand-like outline (a padded convex hull on screen) around the points of cluster 1."""
    from scipy.spatial import ConvexHull

    session = panel.session
    colours = session.scatter_colours
    rows = np.flatnonzero(np.asarray(colours.names, dtype=object)[colours.codes] == "cluster 1")
    screen = panel.canvas.to_canvas(session.scatter.xy[rows])
    hull = screen[ConvexHull(screen).vertices]
    centre = hull.mean(axis=0)
    outline = centre + (hull - centre) * 1.08
    lasso = next(b for b in panel.mode_buttons.buttons() if b.text() == "Lasso")
    lasso.click()
    panel.canvas.select_polygon(outline, "replace")


if __name__ == "__main__":
    main()
