"""The Embeddings tab on the real sample: scatter and image share the selection, clusters on the image,
reducing and clustering from the panel, cancel, export, the dendrogram of wells, the dock's width."""

from __future__ import annotations

import shutil
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from embedded_sample import embedded_sample, sample_plate

from napari_hcs.viewer.cluster_overlays import SELECTED_NAME
from napari_hcs.viewer.overlays import OPACITY_LEVELS, OVERLAY_NAME
from napari_hcs.vocabulary import META_NAME

pytestmark = [pytest.mark.gui, pytest.mark.slow]

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return embedded_sample(tmp_path_factory.mktemp("embedded") / "project")


@pytest.fixture
def dock(embedded, tmp_path, make_napari_viewer, qtbot):
    from napari_hcs.widgets.embedding_panel import EmbeddingPanel
    from napari_hcs.widgets.main_dock import MainDock, _scrolling

    folder = tmp_path / "project"
    shutil.copytree(embedded, folder)
    viewer = make_napari_viewer(show=True)
    dock = MainDock(viewer)
    dock.embeddings = EmbeddingPanel(dock.session, viewer)
    dock.tabs.addTab(_scrolling(dock.embeddings), "Embeddings")
    viewer.window.add_dock_widget(dock, name="napari HCS", area="right")
    dock.session.set_plate(sample_plate(), project_dir=folder)
    qtbot.waitUntil(lambda: dock.overlay.cells is not None and dock.overlay.cell_layer() is not None,
                    timeout=TIMEOUT_MS)
    yield dock
    dock.embeddings.cancel()
    qtbot.waitUntil(lambda: not dock.embeddings.is_busy, timeout=TIMEOUT_MS)


def _layer(viewer, name):
    return next((layer for layer in viewer.layers if layer.metadata.get(META_NAME) == name), None)


def test_a_lasso_in_the_scatter_frames_those_cells_on_the_image_and_shift_click_selects_back(dock, qtbot):
    panel, session, viewer = dock.embeddings, dock.session, dock.viewer
    assert panel.source.currentData() == "pca-pca" and panel.colour.currentData() == "cluster"
    assert "218 cells, by cluster" in panel.legend.text().replace("\n", "")
    site_ids = dock.overlay.cells["crop_index"].to_numpy()
    rows = np.flatnonzero(np.isin(session.scatter.crop_index, site_ids[:6]))
    screen = panel.canvas.to_canvas(session.scatter.xy)
    outline = np.array([[-2, -2], [2, -2], [2, 2], [-2, 2]])
    panel.canvas.set_mode("lasso")
    for row in rows:  # small squares around six cells of the shown site, added one by one
        panel.canvas.select_polygon(screen[row] + outline, "add")
    assert set(site_ids[:6]) <= session.selected_cells
    framed = _layer(viewer, SELECTED_NAME)
    assert set(framed.features["crop_index"]) == session.selected_cells & set(site_ids)
    assert "on the site shown" in panel.selection_label.text()
    session.clear_cell_selection()
    assert len(framed.data) == 0 and not len(panel.canvas.selected_rows)
    cell = dock.overlay.cells.iloc[3]
    event = SimpleNamespace(type="mouse_press", button=1, modifiers={"Shift"},
                            position=(cell["centroid_y"], cell["centroid_x"]))
    clicks = dock.overlay._on_mouse(viewer, event)
    next(clicks)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(clicks)
    assert session.selected_cells == {int(cell["crop_index"])}
    assert panel.canvas.selected_rows.tolist() == np.flatnonzero(session.scatter.crop_index == cell["crop_index"]).tolist()
    session.request_cell(int(cell["crop_index"]))
    assert panel.canvas.current.count == 1


def test_the_cells_are_coloured_by_cluster_on_the_image_with_a_legend_of_counts(dock, qtbot):
    overlay_panel = dock.overlay_panel
    overlay_panel.clusters_box.setChecked(True)
    layer = _layer(dock.viewer, OVERLAY_NAME)
    cells = dock.overlay.cells
    labels = np.asarray(dock.overlay.cell_layer().data)
    for row in cells.iloc[:20].itertuples():
        values = np.asarray(layer.data)[labels == row.label]
        assert set(values) == {1 + int(row.cluster) * OPACITY_LEVELS + OPACITY_LEVELS - 1}
    counts = cells["cluster"].value_counts()
    legend = overlay_panel.legend.text()
    assert "Clusters on this site" in legend and f"cluster 0: {counts.get(0, 0)}" in legend
    overlay_panel.clusters_box.setChecked(False)
    assert "Predicted on this site" in overlay_panel.legend.text()


def test_reducing_and_clustering_from_the_panel_update_the_scatter_and_cancel_stores_nothing(dock, qtbot, monkeypatch):
    panel, session = dock.embeddings, dock.session
    panel.reduction.setCurrentIndex(panel.reduction.findData("pca"))
    with qtbot.waitSignal(panel.work_finished, timeout=TIMEOUT_MS) as finished:
        assert panel.reduce("pca")
    assert not isinstance(finished.args[1], Exception), panel.status.text()
    assert session.scatter.source["embedding"] == "pca-pca" and "Stored and shown" in panel.status.text()
    panel.k.setValue(3)
    with qtbot.waitSignal(panel.work_finished, timeout=TIMEOUT_MS) as finished:
        assert panel.cluster_cells("pca")
    assert not isinstance(finished.args[1], Exception), panel.status.text()
    assert set(session.cells["cluster"]) == {0, 1, 2} and len(session.scatter_colours.names) == 3

    def slow(project_dir, name, *, method, progress=None, cancel=None):
        from napari_hcs.cancel import check_cancel

        for step in range(200):
            progress(step, 200)
            check_cancel(cancel, "Reducing was cancelled.")
            time.sleep(0.05)

    monkeypatch.setattr("napari_hcs.profiles.reduction.reduce_embedding", slow)
    with qtbot.waitSignal(panel.work_finished, timeout=TIMEOUT_MS):
        assert panel.reduce("pca")
        assert not panel.reduce("pca")  # one job at a time
        qtbot.wait(200)
        panel.cancel_button.click()
    assert "Cancelled: nothing was stored" in panel.status.text() and panel.embed_button.isEnabled()


def test_export_dendrogram_and_the_width_of_the_dock(dock, qtbot, tmp_path):
    from scipy.cluster.hierarchy import linkage

    from napari_hcs.profiles.profile_store import write_well_profiles

    panel, session = dock.embeddings, dock.session
    out = tmp_path / "cells.csv"
    with qtbot.waitSignal(panel.work_finished, timeout=TIMEOUT_MS) as finished:
        assert panel.export(out, format="csv", level="cell")
    assert not isinstance(finished.args[1], Exception), panel.status.text()
    exported = pd.read_csv(out)
    assert len(exported) == len(session.cells) and "cluster" in exported.columns
    table = pd.DataFrame({"plate": ["p", "p"], "well": ["B02", "B04"], "feat_a": [0.0, 1.0], "cluster": [0, 1]})
    write_well_profiles(session.project.folder, table, features=["feat_a"], provenance={"clusters": {
        "linkage_matrix": linkage(table[["feat_a"]].to_numpy(), "ward").tolist(), "well_labels": ["p B02", "p B04"]}})
    panel._show_tree()
    view = panel.dendrogram
    assert view.tree is not None and view.layout_data["ivl"] == ["p B02", "p B04"]
    view.resize(400, 180)
    view.well_clicked.emit(view.leaf_at(view.width() - 10))
    assert session.current_site.well == "B04"
    assert panel.minimumSizeHint().width() <= 440
    dock.show_tab("Plate")
    dock.tabs.setCurrentIndex(dock.tabs.count() - 1)
    area = dock.tabs.currentWidget()
    assert area.horizontalScrollBar().maximum() == 0
