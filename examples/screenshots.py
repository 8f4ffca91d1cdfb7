"""Take the documentation's screenshots on the real scPortrait plate.

Opens the plate in napari with the Plate map and the segmentation widget docked,
labels the two wells by treatment, previews nuclei and cells on a site of well
B04, and saves ``docs/images/plate_widget.png`` and ``docs/images/pipeline_overlay.png``.

Run under a display: ``xvfb-run -a python examples/screenshots.py [PLATE_FOLDER]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_hcs.widgets.segmentation_widget import SegmentationWidget
from napari_hcs.widgets.plate_widget import PlateWidget

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLATE = ROOT.parent / "shared" / "data" / "scportrait_timecourse"


def wait_until(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the viewer did not finish in time")
        QApplication.processEvents()
        time.sleep(0.02)


def save(viewer, path: Path, width: int = 1200) -> None:
    image = viewer.screenshot(canvas_only=False, flash=False)
    height = int(image.shape[0] * width / image.shape[1])
    from skimage.transform import resize

    small = (resize(image, (height, width), anti_aliasing=True) * 255).astype(np.uint8)
    from PIL import Image

    Image.fromarray(small[..., :3]).quantize(colors=256).save(path, optimize=True)
    print(f"saved {path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    plate_folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PLATE
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 950)
    plate_widget = PlateWidget(viewer)
    viewer.window.add_dock_widget(plate_widget, name="Plate map", area="right")
    with tempfile.TemporaryDirectory() as project:
        plate_widget.open_plate(plate_folder, pattern="scportrait", project_dir=project)
        plate_widget.load_layout(plate_folder / "plate_layout.tsv")
        for name in ("Unstimulated", "Stimulated"):
            if name not in [c["name"] for c in plate_widget.classes]:
                plate_widget.add_class(name)
        for well, name in (("B02", "Unstimulated"), ("B04", "Stimulated")):
            plate_widget.select_class(name)
            plate_widget.click_well(well)
        plate_widget.set_mode("view")
        plate_widget.show_well("B04", 1)
        wait_until(lambda: not plate_widget.is_loading)
        save(viewer, images / "plate_widget.png")

        finished = []
        pipeline = SegmentationWidget(viewer)  # previews the site the image layers show
        pipeline.preview_finished.connect(finished.append)
        viewer.window.add_dock_widget(pipeline, name="Segment and crop cells", area="right")
        wait_until(lambda: finished, timeout=120)
        assert finished[-1].site == plate_widget.shown_site
        print(f"dock heights: plate map {plate_widget.sizeHint().height()} px, "
              f"segmentation {pipeline.sizeHint().height()} px")
        for name in ("nuclei", "cells"):
            layer = viewer.layers[name]
            layer.contour = 2
            layer.opacity = 0.9
        viewer.camera.zoom *= 1.6
        QApplication.processEvents()
        save(viewer, images / "pipeline_overlay.png")
        print(f"{finished[0].site.name}: {finished[0].n_cells} cells")
        wait_until(lambda: pipeline._preview_worker is None and not plate_widget.is_loading)
    viewer.close()


if __name__ == "__main__":
    main()
