"""A dendrogram of wells drawn with Qt from SciPy's layout (no plotting library in the loop).

:func:`scipy.cluster.hierarchy.dendrogram` with ``no_plot=True`` gives the
branch coordinates and the leaf order; :class:`DendrogramView` scales them to
the widget, colours each leaf's name by its well's cluster (the colours of the
cluster overlay) and names wells vertically under their leaves, leaving out
names where they would overlap. Clicking a leaf emits ``well_clicked``.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, Qt, Signal
from qtpy.QtGui import QColor, QFont, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..viewer.cluster_overlays import cluster_classes

__all__ = ["DendrogramView", "dendrogram_layout"]

LABEL_HEIGHT = 46
MARGIN = 6


def dendrogram_layout(linkage: np.ndarray, wells: list[str]) -> dict:
    """SciPy's dendrogram layout: ``icoord``, ``dcoord`` (branches), ``leaves`` (row order), ``ivl`` (names).

    Examples
    --------
    >>> from scipy.cluster.hierarchy import linkage
    >>> tree = linkage(np.array([[0.0], [0.1], [5.0]]), "ward")
    >>> dendrogram_layout(tree, ["B02", "B03", "B04"])["ivl"]
    ['B04', 'B02', 'B03']
    """
    from scipy.cluster.hierarchy import dendrogram

    return dendrogram(np.asarray(linkage, dtype=float), labels=list(wells), no_plot=True)


class DendrogramView(QWidget):
    """Draws a :class:`~napari_hcs.viewer.session_embeddings.WellTree` (or a message without one).

    Signals
    -------
    well_clicked(str)
        The well (its name as in the tree) of the leaf clicked.
    """

    well_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tree = None
        self.layout_data: dict | None = None
        self.message = "No well clusters yet: profile the wells, then cluster them (hierarchical)."
        self.setMinimumHeight(170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_tree(self, tree, message: str | None = None) -> None:
        """Show a tree (None: show ``message`` instead)."""
        self.tree = tree
        self.layout_data = dendrogram_layout(tree.linkage, tree.wells) if tree is not None else None
        if message:
            self.message = message
        self.update()

    def _leaf_colours(self) -> dict[str, QColor]:
        tree = self.tree
        if tree is None or tree.clusters is None:
            return {}
        colours = {c["name"]: c["color"] for c in cluster_classes(tree.clusters)}
        out = {}
        for well, cluster in zip(tree.wells, tree.clusters):
            name = "noise" if int(cluster) < 0 else f"cluster {int(cluster)}"
            out[well] = QColor(colours.get(name, "#cccccc"))
        return out

    def _scales(self):
        data = self.layout_data
        width = max(self.width() - 2 * MARGIN, 1)
        height = max(self.height() - LABEL_HEIGHT - 2 * MARGIN, 1)
        top = max(float(np.max(data["dcoord"])) if len(data["dcoord"]) else 1.0, 1e-12)
        n = max(len(data["ivl"]), 1)
        return (lambda x: MARGIN + (x - 0.0) / (10.0 * n) * width,
                lambda y: MARGIN + height - y / top * height, width / n)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.layout_data is None:
            painter.setPen(QColor("#bbbbbb"))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.TextFlag.TextWordWrap, self.message)
            return
        to_x, to_y, step = self._scales()
        painter.setPen(QPen(QColor("#c8c8c8"), 1.2))
        for xs, ys in zip(self.layout_data["icoord"], self.layout_data["dcoord"]):
            points = [QPointF(to_x(x), to_y(y)) for x, y in zip(xs, ys)]
            for a, b in zip(points, points[1:]):
                painter.drawLine(a, b)
        self._draw_names(painter, to_x, step)

    def _draw_names(self, painter: QPainter, to_x, step: float) -> None:
        font = QFont(painter.font())
        font.setPointSizeF(7.0)
        painter.setFont(font)
        every = max(int(np.ceil(11.0 / max(step, 1e-6))), 1)  # a name needs about 11 px across
        colours = self._leaf_colours()
        baseline = self.height() - LABEL_HEIGHT - MARGIN + 4
        for index, name in enumerate(self.layout_data["ivl"]):
            x = to_x(10.0 * index + 5.0)
            painter.setPen(QPen(colours.get(name, QColor("#dddddd")), 3))
            painter.drawLine(QPointF(x, baseline - 2), QPointF(x, baseline + 2))
            if index % every:
                continue
            painter.save()
            painter.translate(x + 3, baseline + 4)
            painter.rotate(90)
            painter.drawText(QPointF(0, 0), str(name).split(" ")[-1])
            painter.restore()

    def leaf_at(self, x: float) -> str | None:
        """The well whose leaf is nearest a horizontal position (pixels), or None without a tree."""
        if self.layout_data is None or not self.layout_data["ivl"]:
            return None
        to_x, _, step = self._scales()
        index = int(np.clip(round((x - to_x(5.0)) / step), 0, len(self.layout_data["ivl"]) - 1))
        return str(self.layout_data["ivl"][index])

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt API)
        well = self.leaf_at(event.position().x())
        if well is not None:
            self.well_clicked.emit(well)
        super().mouseReleaseEvent(event)
