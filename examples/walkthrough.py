"""Phenotype the real scPortrait plate in the napari HCS dock, one screenshot per step.

Opens the plate in napari with the napari HCS dock, labels its two wells as two
classes on the plate map, segments every site, trains a random forest and a
wide ResNet, predicts the whole plate, inspects the confusion matrix and goes
to a misclassified cell, labels cells with keys, asks for the most uncertain
cells, and saves ``docs/images/walkthrough_<n>_<step>.png`` (the whole window,
1200 px wide) for docs/walkthrough.md.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" python examples/walkthrough.py [PLATE_FOLDER]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_hcs.widgets.main_dock import MainDock
from screenshots import wait_until  # examples/ is on the path when this script runs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLATE = ROOT.parent / "shared" / "data" / "scportrait_timecourse"
IMAGES = ROOT / "docs" / "images"
CLASSES = (("B02", "unstimulated"), ("B04", "stimulated"))


def settle(seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def save(viewer, name: str, width: int = 1200) -> None:
    from PIL import Image
    from skimage.transform import resize

    settle()
    image = viewer.screenshot(canvas_only=False, flash=False)
    height = int(image.shape[0] * width / image.shape[1])
    small = (resize(image, (height, width), anti_aliasing=True) * 255).astype(np.uint8)
    path = IMAGES / f"walkthrough_{name}.png"
    Image.fromarray(small[..., :3]).quantize(colors=256).save(path, optimize=True)
    print(f"saved {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


def when(signal) -> list:
    """A list that receives the signal's first emission."""
    got: list = []
    signal.connect(lambda *args: got.append(args))
    return got


def label_wells(dock: MainDock) -> None:
    plate = dock.plate
    for _, name in CLASSES:
        plate.add_class(name)
    plate.set_mode("assign")
    for well, name in CLASSES:
        plate.select_class(name)
        plate.click_well(well)
    plate.set_mode("view")


def segment(dock: MainDock, *, crop_size: int = 32, timeout: float = 600) -> None:
    dock.show_tab("Segment")
    form = dock.segment.form
    form.live_preview.value = False
    form.nuclei_channel.value, form.cell_channel.value, form.crop_size.value = "DAPI", "mCherry", crop_size
    dock.segment.run_panel.workers.setValue(2)
    done = when(dock.segment.run_panel.run_finished)
    dock.segment.run_panel.run_plate()
    wait_until(lambda: done, timeout=timeout)
    print(f"segmented: {len(dock.session.cells)} cells")


def train(dock: MainDock, kind: str, **options) -> None:
    dock.show_tab("Train")
    panel = dock.train
    panel.set_kind(kind)
    for option, value in options.items():
        panel.cnn_options()[option].value = value
    done = when(panel.training_finished)
    panel.train()
    wait_until(lambda: done, timeout=1200)
    print(f"trained: {panel.status.text()}")


def predict(dock: MainDock) -> None:
    done = when(dock.train.prediction_finished)
    dock.train.predict("plate")
    wait_until(lambda: done, timeout=600)
    wait_until(lambda: dock.overlay.cells is not None and "pred_class" in dock.overlay.cells)


def inspect(dock: MainDock) -> None:
    dock.show_tab("Inspect")
    counts = dock.inspect.confusion.counts
    wrong = [(t, p) for t in counts.index for p in counts.columns if t != p and counts.loc[t, p] > 0]
    true, pred = wrong[0] if wrong else (counts.index[0], counts.columns[0])
    shown = when(dock.inspect.gallery.crops_shown)
    dock.inspect.show_confused(true, pred)
    wait_until(lambda: shown, timeout=600)
    save(dock.viewer, "6_inspect")
    jumped = when(dock.overlay.jumped)
    dock.session.request_cell(dock.inspect.gallery.crop_indices()[0])
    wait_until(lambda: jumped, timeout=600)
    save(dock.viewer, "7_jump")


def label_cells(dock: MainDock) -> None:
    """Label the six cells nearest the camera centre, alternating the two classes (keys 1 and 2)."""
    dock.overlay_panel.label_box.setChecked(True)
    cells = dock.overlay.cells
    scale = dock.session.plate.pixel_size or 1.0
    centre = np.asarray(dock.viewer.scene.camera.center)[-2:] / scale
    distance = np.hypot(cells["centroid_y"] - centre[0], cells["centroid_x"] - centre[1])
    for rank, row in enumerate(cells.assign(distance=distance).nsmallest(6, "distance").itertuples()):
        dock.session.label_cells([row.crop_index], CLASSES[rank % 2][1])
    save(dock.viewer, "8_label_cells")


def open_dock(plate_folder: Path, project_dir: Path) -> tuple[napari.Viewer, MainDock]:
    """A 1600 x 1000 viewer with the napari HCS dock, showing the plate opened into ``project_dir``."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    dock = MainDock(viewer)
    viewer.window.add_dock_widget(dock, name="napari HCS", area="right")
    dock.plate.open_plate(plate_folder, project_dir=project_dir)
    wait_until(lambda: dock.session.shown_site is not None)
    return viewer, dock


def main() -> None:
    plate_folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PLATE
    with tempfile.TemporaryDirectory() as folder:
        viewer, dock = open_dock(plate_folder, Path(folder) / "project")
        label_wells(dock)
        save(viewer, "1_plate")
        segment(dock)
        save(viewer, "2_segment")
        train(dock, "forest")
        train(dock, "cnn", model="wrn", depth=1, width=2, epochs=8, device="cpu")
        save(viewer, "3_train")
        predict(dock)
        save(viewer, "4_predictions")
        dock.show_tab("Plate")
        dock.plate.well_colouring.set_view("predicted classes (pie)")
        save(viewer, "5_plate_map")
        inspect(dock)
        label_cells(dock)
        dock.show_tab("Inspect")
        shown = when(dock.inspect.gallery.crops_shown)
        dock.inspect.show_uncertain("margin", 24)
        wait_until(lambda: shown, timeout=600)
        save(viewer, "9_uncertain")
        wait_until(lambda: not dock.train.is_busy)
        viewer.close()


if __name__ == "__main__":
    main()
