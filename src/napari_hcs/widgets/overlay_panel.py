"""The "On the image" box: legend of the predicted classes (or clusters), how they are drawn, cell labelling."""

from __future__ import annotations

import html

import pandas as pd
from qtpy.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QLabel

from ..viewer.cluster_overlays import cluster_classes, cluster_names
from .cell_clicks import CellLabeller
from .cell_overlay import CellOverlay

__all__ = ["OverlayPanel", "legend_html"]


def legend_html(cells, classes: list[dict], *, clusters=None) -> str:
    """The legend: a colour swatch, name and count on the site for each predicted class.

    With ``clusters`` (every cell's cluster in the project, for the colours), the
    legend lists the site's cells per cluster instead.
    """
    if clusters is not None:
        return _cluster_legend(cells, clusters)
    if cells is None or "pred_class" not in cells.columns or cells["pred_class"].isna().all():
        return "No predictions on this site yet: train a model and press Predict."
    return _legend_rows(cells["pred_class"].value_counts(), classes, "Predicted on this site")


def _cluster_legend(cells, clusters) -> str:
    if cells is None or "cluster" not in cells.columns or cells["cluster"].isna().all():
        return "No clusters on this site yet: cluster the cells (Embeddings tab)."
    names = cluster_names(cells["cluster"])
    return _legend_rows(pd.Series(names, dtype=object).value_counts(), cluster_classes(clusters),
                        "Clusters on this site")


def _legend_rows(counts, classes: list[dict], title: str) -> str:
    colour = {c["name"]: c["color"] for c in classes}
    names = [c["name"] for c in classes if c["name"] in counts.index]
    names += [str(n) for n in counts.index if n not in colour]
    rows = [
        f'<span style="color:{colour.get(name, "#999999")}">&#9632;</span> '
        f"{html.escape(str(name))}: {int(counts.get(name, 0))}"
        for name in names
    ]
    return f"{title} ({int(counts.sum())} cells):<br>" + "<br>".join(rows)


class OverlayPanel(QGroupBox):
    """Legend and drawing options of the predicted classes; labelling cells by clicking.

    Parameters
    ----------
    overlay : CellOverlay
        The viewer's overlay.
    labeller : CellLabeller
        The viewer's cell labeller.
    """

    def __init__(self, overlay: CellOverlay, labeller: CellLabeller, parent=None):
        super().__init__("On the image", parent)
        self.overlay = overlay
        self.labeller = labeller
        grid = QGridLayout(self)
        self.confidence_box = QCheckBox("Opacity from confidence")
        self.outlines_box = QCheckBox("Outlines only")
        self.points_box = QCheckBox("Centroid points")
        self.clusters_box = QCheckBox("Colour by cluster")
        self.clusters_box.setToolTip("Colour the cells by their cluster (Embeddings tab) instead of "
                                     "their predicted class")
        self.points_box.setToolTip("A Points layer at the cell centroids with class, probabilities, "
                                   "confidence and margin as features")
        self.label_box = QCheckBox("Label cells by clicking (keys 1-9 choose the class, 0 clears)")
        self.label_box.setToolTip("Point at a cell and press 1-9 to label it, or click it with a class "
                                  "chosen; dragging still pans")
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        grid.addWidget(self.confidence_box, 0, 0)
        grid.addWidget(self.outlines_box, 0, 1)
        grid.addWidget(self.points_box, 1, 0)
        grid.addWidget(self.clusters_box, 1, 1)
        grid.addWidget(self.label_box, 2, 0, 1, 2)
        grid.addWidget(self.legend, 3, 0, 1, 2)
        grid.addWidget(self.status, 4, 0, 1, 2)
        self.confidence_box.toggled.connect(lambda on: overlay.set_options(confidence_opacity=on))
        self.outlines_box.toggled.connect(lambda on: overlay.set_options(outlines=on))
        self.points_box.toggled.connect(lambda on: overlay.set_options(points=on))
        self.clusters_box.toggled.connect(self._show_clusters)
        self.label_box.toggled.connect(labeller.set_enabled)
        labeller.status.connect(self.status.setText)
        overlay.drawn.connect(self._show_legend)
        overlay.session.site_shown.connect(lambda *_: self._show_legend(overlay.cells))
        self._show_legend(overlay.cells)

    def _show_clusters(self, on: bool) -> None:
        self.overlay.set_options(clusters=on)
        self._show_legend(self.overlay.cells)

    def _show_legend(self, cells) -> None:
        session = self.overlay.session
        clusters = None
        if self.overlay.options.clusters:
            clusters = session.cells["cluster"] if session.cells is not None and "cluster" in session.cells else []
        self.legend.setText(legend_html(cells, session.classes, clusters=clusters))
