"""The dock's quality control on the real scPortrait plate, one site blurred: docs/images/qc_dock.png.

Copies the plate (links to its files) with the three channels of site B04 t2
blurred (Gaussian, sigma 4) so that quality control has a site to flag, opens
it in napari with the Quality control panel, runs QC, shows the heat map of the
PowerLogLogSlope focus score of DAPI, lists the sites of B04 and shows the
flagged one.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" python examples/qc_dock_screenshot.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import napari
import numpy as np

from napari_hcs.widgets.qc_panel import QcPanel
from napari_hcs.widgets.site_display import shared_session
from screenshots import wait_until  # examples/ is on the path when this script runs

ROOT = Path(__file__).resolve().parents[1]
PLATE = ROOT.parent / "shared" / "data" / "scportrait_timecourse"
BLURRED = "Timepoint002_Row02_Well04"


def blurred_copy(source: Path, folder: Path) -> Path:
    import tifffile
    from scipy import ndimage

    plate = folder / source.name
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        out = plate / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if BLURRED in path.name:
            image = tifffile.imread(path)
            tifffile.imwrite(out, ndimage.gaussian_filter(image.astype(np.float32), 4).astype(image.dtype))
        else:
            os.symlink(path, out)
    return plate


def save(viewer, path: Path, width: int = 1200) -> None:
    """The whole window, ``width`` pixels wide; the palette keeps rare colours (the red marks stay red)."""
    from PIL import Image
    from skimage.transform import resize

    image = viewer.screenshot(canvas_only=False, flash=False)
    height = int(image.shape[0] * width / image.shape[1])
    small = (resize(image, (height, width), anti_aliasing=True) * 255).astype(np.uint8)
    Image.fromarray(small[..., :3]).quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    print(f"saved {path} ({path.stat().st_size // 1024} KiB)")


def main(source: Path = PLATE) -> None:
    folder = Path(tempfile.mkdtemp())
    plate_dir = blurred_copy(source, folder)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    session = shared_session(viewer)
    panel = QcPanel(session, viewer)
    panel.setMinimumWidth(440)  # the width of the dock's tabs
    viewer.window.add_dock_widget(panel, name="Quality control", area="right")
    session.open(plate_dir, project_dir=folder / "project")
    finished = []
    panel.qc_finished.connect(finished.append)
    panel.run_qc()
    wait_until(lambda: finished, timeout=300)
    panel.metric.setCurrentText("power_log_log_slope")
    panel.channel.setCurrentText("DAPI")
    panel.show_well("B04")
    panel.site_list.setCurrentRow(0)
    panel._site_clicked(panel.site_list.item(0))
    wait_until(lambda: session.shown_site is not None and session.shown_site.timepoint == 2, timeout=60)
    save(viewer, ROOT / "docs" / "images" / "qc_dock.png")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else PLATE)
