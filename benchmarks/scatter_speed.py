"""Speed of the Embeddings scatter with 200,000 points: draw, recolour, lasso.

Times (median of 5 runs, and the first run) in milliseconds, and the CPU time of
this process (``_cpu``: the software renderer's threads included, so the figure a
machine of its own would show when the wall-clock time is inflated by other
processes; ``load_average`` says how busy the machine was), each ending with
the frame drawn and read back (``SceneCanvas.render``), so the GPU, or the
software renderer under Xvfb, has finished:

- ``draw``: new points (positions, colour codes, colour table) and a frame;
- ``recolour``: colour by another column (new codes) and a frame;
- ``recolour_table``: change the colour table only (a class colour) and a frame;
- ``lasso_compute``: points inside a 200-vertex lasso (the canvas's pixel mask), and
  ``lasso_compute_path`` the same with matplotlib's ``Path.contains_points`` in data coordinates;
- ``lasso``: the lasso end to end in the Embeddings tab: the points inside, the
  session's selection, the highlight, and a frame.

Run under a display (software OpenGL under Xvfb is the slow case)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/scatter_speed.py [N]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

N_POINTS = 200_000
REPEATS = 5


def _timed(step) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds (this process, the renderer's threads included) of each run."""
    wall, cpu = [], []
    for index in range(REPEATS):
        start, start_cpu = time.perf_counter(), time.process_time()
        step(index)
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu


def _report(name: str, times: tuple[list[float], list[float]]) -> None:
    wall, cpu = times
    print(f"{name}_first {wall[0]:.1f} ms")
    print(f"{name} {float(np.median(wall)):.1f} ms")
    print(f"{name}_cpu {float(np.median(cpu)):.1f} ms")


def _points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs like a UMAP of a few phenotypes, and a cluster number per point."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 8, n)
    centres = rng.uniform(-10, 10, (8, 2))
    return (centres[clusters] + rng.normal(0, 1.5, (n, 2))).astype(np.float32), clusters


def main(n: int = N_POINTS) -> None:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from napari_hcs.viewer.session import Session
    from napari_hcs.viewer.session_embeddings import ScatterData, scatter_colours
    from napari_hcs.widgets.embedding_panel import EmbeddingPanel

    session = Session()
    panel = EmbeddingPanel(session)
    panel.resize(440, 900)
    panel.show()
    app.processEvents()
    canvas = panel.canvas
    canvas.render()  # compiles the shaders once, as the first show does
    print(f"points {n} cells")
    data = [_points(n, seed) for seed in range(REPEATS)]
    table = scatter_colours(pd.Series(data[0][1]), column="cluster").table

    def draw(index):
        canvas.set_points(data[index][0], data[index][1], table)
        canvas.render()

    _report("draw", _timed(draw))

    def recolour(index):
        canvas.set_colours(data[(index + 1) % REPEATS][1], table)
        canvas.render()

    _report("recolour", _timed(recolour))

    def recolour_table(index):
        canvas.set_colours(canvas.codes, np.roll(table, index + 1, axis=0))
        canvas.render()

    _report("recolour_table", _timed(recolour_table))
    xy, clusters = data[0]
    session.scatter = ScatterData(crop_index=np.arange(n, dtype=np.int64), xy=xy, x_label="umap 1",
                                  y_label="umap 2", source={"embedding": "cnn-umap", "components": [0, 1]})
    session.scatter_colours = scatter_colours(pd.Series(clusters), column="cluster")
    session.scatter_changed.emit(session.scatter)
    theta = np.linspace(0, 2 * np.pi, 200)
    width, height = canvas.canvas.size
    outlines = [np.c_[width * (0.45 + 0.02 * i) + 0.25 * width * np.cos(theta) * (1 + 0.1 * np.sin(5 * theta)),
                      height * 0.45 + 0.25 * height * np.sin(theta)] for i in range(REPEATS)]
    from napari_hcs.widgets.scatter_canvas import rows_in_polygon

    _report("lasso_compute", _timed(lambda i: canvas._rows_in_screen_polygon(outlines[i])))
    _report("lasso_compute_path", _timed(lambda i: rows_in_polygon(canvas.xy, canvas.to_data(outlines[i]))))

    def lasso(index):
        canvas.select_polygon(outlines[index], "replace")  # -> session -> highlight
        canvas.render()

    _report("lasso", _timed(lasso))
    print(f"lasso_selected {len(session.selected_cells)} cells")
    print(f"load_average {os.getloadavg()[0]:.2f} processes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else N_POINTS)
