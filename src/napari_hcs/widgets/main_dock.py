"""The product in one dock: Plate, Segment, Train, Inspect, Embeddings and Images tabs over one session.

Every tab works on the viewer's one :class:`~napari_hcs.viewer.session.Session`
(:func:`~napari_hcs.widgets.site_display.shared_session`), so the plate, the
project, the classes, the models and the predictions are the same in each; the
"On the image" box below the tabs keeps the legend of the predicted classes,
how they are drawn, and labelling cells by clicking in view whichever tab is
open. Each tab scrolls on its own, so the dock fits a 1600x1000 screen.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .cell_clicks import CellLabeller
from .cell_overlay import cell_overlay
from .embedding_panel import EmbeddingPanel
from .image_panel import ImagePanel
from .inspect_panel import InspectPanel
from .overlay_panel import OverlayPanel
from .plate_widget import PlateWidget
from .qc_panel import QcPanel
from .segmentation_widget import SegmentationWidget
from .site_display import shared_session
from .train_panel import TrainPanel

__all__ = ["MainDock", "TAB_NAMES"]

TAB_NAMES = ("Plate", "Segment", "Train", "Inspect", "Embeddings", "Images")
#: Width the tabs are laid out for; all of them fit it without a horizontal scroll bar.
DOCK_WIDTH = 440


def _scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def _stacked(*panels: QWidget) -> QWidget:
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for panel in panels:
        layout.addWidget(panel)
    layout.addStretch(1)
    return holder


class MainDock(QWidget):
    """The napari HCS dock: tabs Plate, Segment, Train, Inspect, Embeddings, Images and the "On the image" box.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer; its session is shared with any other napari-hcs dock it has.

    Attributes
    ----------
    plate, segment, train, inspect, embeddings : QWidget
        The panels of the tabs.
    qc, images : QcPanel, ImagePanel
        The Images tab: quality control of the plate's sites; preprocessing and illumination.
    overlay_panel : OverlayPanel
        Legend, drawing options and cell labelling.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self._watched_window = None
        self.viewer = napari_viewer
        self.session = shared_session(napari_viewer)
        self.overlay = cell_overlay(napari_viewer)
        self.labeller = CellLabeller(self.overlay)
        self.plate = PlateWidget(napari_viewer)
        self.segment = SegmentationWidget(napari_viewer)
        self.train = TrainPanel(self.session, napari_viewer)
        self.inspect = InspectPanel(self.session, napari_viewer)
        self.inspect.retrain_requested.connect(self.train.train)
        self.embeddings = EmbeddingPanel(self.session, napari_viewer)
        self.qc = QcPanel(self.session, napari_viewer)
        self.images = ImagePanel(self.session, napari_viewer)
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(False)
        panels = (self.plate, self.segment, self.train, self.inspect, self.embeddings, _stacked(self.qc, self.images))
        for name, panel in zip(TAB_NAMES, panels):
            self.tabs.addTab(_scrolling(panel), name)
        self.overlay_panel = OverlayPanel(self.overlay, self.labeller)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.overlay_panel)
        self.setMinimumWidth(DOCK_WIDTH)

    def stop_work(self) -> None:
        """Cancel whatever runs: training (the best epoch so far is kept), prediction, segmentation."""
        self.train.cancel_training()
        self.train.cancel_prediction()
        self.segment.run_panel.cancel()
        self.segment.cancel()
        self.embeddings.cancel()
        self.qc.cancel()
        self.images.close_workers()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        # Closing the viewer stops the workers first, so none outlives the window.
        window = self.window()
        if window is not self and window is not self._watched_window:
            window.installEventFilter(self)
            self._watched_window = window
        super().showEvent(event)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Close and watched is getattr(self, "_watched_window", None):
            watched.removeEventFilter(self)
            self._watched_window = None
            self.stop_work()
        return False

    def show_tab(self, name: str) -> None:
        """Bring a tab to the front (one of :data:`TAB_NAMES`, e.g. ``"Embeddings"``)."""
        if name not in TAB_NAMES:
            raise ValueError(f"No tab {name!r}; tabs are {', '.join(TAB_NAMES)}.")
        self.tabs.setCurrentIndex(TAB_NAMES.index(name))
