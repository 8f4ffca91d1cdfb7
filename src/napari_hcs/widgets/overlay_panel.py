"""The "On the image" box: legend of the predicted classes, how they are drawn, cell labelling."""

from __future__ import annotations

import html

from qtpy.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QLabel

from .cell_clicks import CellLabeller
from .cell_overlay import CellOverlay

__all__ = ["OverlayPanel", "legend_html"]


def legend_html(cells, classes: list[dict]) -> str:
    """The legend: a colour swatch, name and count on the site for each predicted class."""
    if cells is None or "pred_class" not in cells.columns or cells["pred_class"].isna().all():
        return "No predictions on this site yet: train a model and press Predict."
    counts = cells["pred_class"].value_counts()
    colour = {c["name"]: c["color"] for c in classes}
    names = [c["name"] for c in classes if c["name"] in counts.index]
    names += [str(n) for n in counts.index if n not in colour]
    rows = [
        f'<span style="color:{colour.get(name, "#999999")}">&#9632;</span> '
        f"{html.escape(str(name))}: {int(counts.get(name, 0))}"
        for name in names
    ]
    return f"Predicted on this site ({int(counts.sum())} cells):<br>" + "<br>".join(rows)


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
        grid.addWidget(self.label_box, 2, 0, 1, 2)
        grid.addWidget(self.legend, 3, 0, 1, 2)
        grid.addWidget(self.status, 4, 0, 1, 2)
        self.confidence_box.toggled.connect(lambda on: overlay.set_options(confidence_opacity=on))
        self.outlines_box.toggled.connect(lambda on: overlay.set_options(outlines=on))
        self.points_box.toggled.connect(lambda on: overlay.set_options(points=on))
        self.label_box.toggled.connect(labeller.set_enabled)
        labeller.status.connect(self.status.setText)
        overlay.drawn.connect(self._show_legend)
        overlay.session.site_shown.connect(lambda *_: self._show_legend(overlay.cells))
        self._show_legend(overlay.cells)

    def _show_legend(self, cells) -> None:
        self.legend.setText(legend_html(cells, self.overlay.session.classes))
