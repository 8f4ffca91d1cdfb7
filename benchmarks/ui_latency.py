"""How quickly the viewer answers: recolouring, going to a cell, the plate map, training.

Prints, each on its own line with its name and unit (median of several tries):

* ``recolour``: colouring 100,000 cells of one site by predicted class (the
  overlay layer rebuilt, put in the viewer and drawn); target under 200 ms;
* ``jump``: going from a gallery crop to its cell on another site of the real
  scPortrait plate (site read, layers swapped, overlay redrawn, camera centred,
  cell ringed), for sites not shown before; target under 300 ms; and
  ``jump to a site seen before`` (its layer data kept in memory);
* ``plate map``: drawing the map of a 1536-well plate with a pie of predicted
  class fractions in every well; target under 200 ms;
* ``stall``: the longest the event loop waited while a CNN trained in the
  dock's worker (a 5-ms timer measures it); target under 100 ms.

Run under a display: ``xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/ui_latency.py``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "scportrait_timecourse"
CLASSES = [{"name": "control", "color": "#e69f00"}, {"name": "treated", "color": "#56b4e9"},
           {"name": "mitotic", "color": "#009e73"}]


def _settle(app, seconds: float = 0.05) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()


def recolour_ms(viewer, app, *, n_cells: int, tries: int) -> float:
    """Median time to colour ``n_cells`` cells of a synthetic site by class and draw them."""
    from napari_hcs.samples import make_synthetic_plate
    from napari_hcs.viewer.layers import put_layer_data
    from napari_hcs.viewer.overlays import class_overlay_data

    side = int(np.ceil(np.sqrt(n_cells)))
    labels = np.kron(np.arange(1, side * side + 1, dtype=np.uint32).reshape(side, side),
                     np.ones((10, 10), dtype=np.uint32))
    plate = make_synthetic_plate(n_rows=1, n_columns=1, n_sites=1, shape=(64, 64))
    site = plate.site(plate.wells[0])
    rng = np.random.default_rng(0)
    times = []
    for _ in range(tries):
        cells = pd.DataFrame({"label": np.arange(1, side * side + 1), "crop_index": np.arange(side * side),
                              "pred_class": rng.choice([c["name"] for c in CLASSES], side * side),
                              "pred_confidence": rng.uniform(0.34, 1.0, side * side).astype(np.float32)})
        start = time.perf_counter()
        put_layer_data(viewer, class_overlay_data(plate, site, labels, cells, CLASSES, confidence_opacity=True))
        viewer.screenshot(canvas_only=True)
        times.append(time.perf_counter() - start)
        _settle(app)
    for layer in list(viewer.layers):
        viewer.layers.remove(layer)
    return 1000 * statistics.median(times[1:] or times)


def plate_map_ms(app, *, tries: int) -> float:
    """Median time to draw a 1536-well plate map with a pie in every well."""
    from napari_hcs.plate import well_name
    from napari_hcs.widgets.plate_map import PlateMap

    wells = [well_name(r, c) for r in range(32) for c in range(48)]
    plate_map = PlateMap()
    plate_map.resize(420, 300)
    plate_map.set_layout(32, 48, wells)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(tries):
        parts = rng.dirichlet(np.ones(3), len(wells))
        plate_map.set_well_fractions(
            {w: [(c["color"], float(f)) for c, f in zip(CLASSES, p)] for w, p in zip(wells, parts)}, mode="pie")
        start = time.perf_counter()
        plate_map.grab()
        times.append(time.perf_counter() - start)
        app.processEvents()
    return 1000 * statistics.median(times)


def _segmented_dock(viewer, app, project: Path):
    """The dock on the real scPortrait plate, segmented, two classes, a forest's predictions."""
    from napari_hcs.classify import TrainRequest, predict_with, save_predictions, train_classifier
    from napari_hcs.pipeline import run_plate
    from napari_hcs.segmentation import SegmentationParams
    from napari_hcs.widgets.main_dock import MainDock

    dock = MainDock(viewer)
    viewer.window.add_dock_widget(dock, name="napari HCS", area="right")
    session = dock.session
    session.open(SHARED, project_dir=project)
    run_plate(session.plate, project, SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry"),
              crop_size=32, workers=2)
    session.add_class("unstimulated")
    session.add_class("stimulated")
    session.label_wells(["B02"], "unstimulated")
    session.label_wells(["B04"], "stimulated")
    session.reload_cells()
    train_classifier(session.project, TrainRequest(name="forest", kind="forest"))
    session.refresh_models()
    session.select_model("forest")
    session.set_predictions(save_predictions(session.project, predict_with(session.project, "forest")))
    _settle(app, 1.0)
    return dock


def _jump_once(dock, app, crop_index: int) -> float:
    jumped = []
    dock.overlay.jumped.connect(jumped.append)
    start = time.perf_counter()
    dock.session.request_cell(crop_index)
    while not jumped and time.perf_counter() - start < 10:
        app.processEvents()
    elapsed = time.perf_counter() - start
    dock.overlay.jumped.disconnect(jumped.append)
    _settle(app, 0.2)
    return elapsed


def jump_ms(dock, app) -> tuple[float, float]:
    """Median times to go to a cell on another site: not read before, and read before."""
    cells = dock.session.cells
    sites = cells.groupby(["well", "field", "timepoint"])["crop_index"].first().tolist()
    first = [_jump_once(dock, app, int(crop_index)) for crop_index in sites[1:]]
    again = [_jump_once(dock, app, int(crop_index)) for crop_index in sites]
    return 1000 * statistics.median(first), 1000 * statistics.median(again)


def stall_ms(dock, app, *, epochs: int) -> float:
    """Longest event-loop gap while the Train tab trains a CNN in its worker."""
    from qtpy.QtCore import QTimer

    panel = dock.train
    panel.set_kind("cnn")
    for option, value in {"model": "wrn", "depth": 1, "width": 2, "epochs": epochs, "batch_size": 64,
                          "device": "cpu"}.items():
        panel.cnn_options()[option].value = value
    panel.name.setText("stall-cnn")
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    panel.train()
    last[0] = time.perf_counter()
    while panel.is_busy:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return 1000 * max(gaps[3:] or gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    app = QApplication.instance()
    _settle(app, 0.5)
    print(f"recolour: {recolour_ms(viewer, app, n_cells=args.cells, tries=args.tries):.0f} ms "
          f"({args.cells} cells)")
    print(f"plate map: {plate_map_ms(app, tries=args.tries):.0f} ms (1536 wells, pies)")
    with tempfile.TemporaryDirectory() as folder:
        dock = _segmented_dock(viewer, app, Path(folder) / "project")
        cold, warm = jump_ms(dock, app)
        print(f"jump: {cold:.0f} ms (to a cell on a site not shown before, {SHARED.name})")
        print(f"jump to a site seen before: {warm:.0f} ms")
        print(f"stall: {stall_ms(dock, app, epochs=args.epochs):.0f} ms (training a CNN in the worker)")
    viewer.close()


if __name__ == "__main__":
    main()
