"""Self-training in the Train tab, on the real scPortrait plate, with a screenshot.

Opens the plate with the napari HCS dock, segments every site, labels the cells
of timepoints 1 and 2 by their well's treatment (B02 unstimulated, B04
stimulated) and leaves timepoint 3 unlabelled, trains a wide ResNet with one
round of self-training, predicts the plate and saves
``docs/images/walkthrough_self_training.png`` (the whole window, 1200 px wide)
with the Train tab saying what the round added (a click on the model in the
list shows what its training gave). It prints the balanced
accuracy on timepoint 3, whose labels training never saw, with and without
self-training.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" python examples/self_training_screenshot.py [PLATE_FOLDER]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sklearn.metrics import balanced_accuracy_score

from napari_hcs.widgets.main_dock import MainDock
from screenshots import wait_until  # examples/ is on the path when this script runs
from walkthrough import CLASSES, open_dock, predict, save, segment, settle, train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLATE = ROOT.parent / "shared" / "data" / "scportrait_timecourse"
HELD_OUT_TIMEPOINT = 3
#: A wide ResNet of depth 1, width 2 for 30 epochs on the crops resized to 32 pixels, on the CPU.
CNN_OPTIONS = dict(model="wrn", depth=1, width=2, epochs=30, device="cpu", input_size=32)


def label_early_timepoints(dock: MainDock) -> None:
    """Each cell of timepoints 1 and 2 labelled with its well's class; timepoint 3 stays unlabelled."""
    for _, name in CLASSES:
        dock.plate.add_class(name)
    cells = dock.session.cells
    for well, name in CLASSES:
        chosen = cells[(cells.well.astype(str) == well) & (cells.timepoint != HELD_OUT_TIMEPOINT)]
        dock.session.label_cells(chosen.crop_index.to_numpy(), name)


def held_out_accuracy(dock: MainDock) -> float:
    cells = dock.session.project.cell_table()  # every predicted cell of the plate, as saved
    late = cells[cells.timepoint == HELD_OUT_TIMEPOINT]
    truth = late.well.astype(str).map({well: name for well, name in CLASSES})
    return balanced_accuracy_score(truth, late.pred_class.astype(str))


def show_status(dock: MainDock) -> None:
    """Scroll the Train tab to its status line, which says what self-training added."""
    from qtpy.QtWidgets import QScrollArea

    parent = dock.train.status.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is not None:
        settle(0.5)  # the status line's new words are laid out first
        parent.ensureWidgetVisible(dock.train.status, 0, 8)


def held_out_comparison(plate_folder: Path, *, option: str, values, screenshot: str) -> None:
    """Train the CNN once for each value of one form option; print timepoint 3's score; save the window.

    Segments the plate with 64-pixel crops, labels timepoints 1 and 2, trains
    and predicts the plate for each value, then clicks the newest model so that
    the status line says what its training gave, and saves ``screenshot``.
    """
    with tempfile.TemporaryDirectory() as folder:
        viewer, dock = open_dock(plate_folder, Path(folder) / "project")
        segment(dock, crop_size=64, timeout=900)  # 64-pixel crops hold these 50-60 pixel cells whole
        label_early_timepoints(dock)
        choices = getattr(dock.train.cnn_options()[option], "choices", None)
        if choices:
            print(f"{option}, offered: {', '.join(repr(choice) for choice in choices)}")
        for value in values:
            train(dock, "cnn", **CNN_OPTIONS, **{option: value})
            predict(dock)
            print(f"{option} {value!r} ({dock.session.current_model}): timepoint {HELD_OUT_TIMEPOINT} "
                  f"balanced accuracy {held_out_accuracy(dock):.3f}")
        dock.show_tab("Train")
        dock.train.select_model(dock.train.model_names()[0])  # a click on the newest model says what it gave
        show_status(dock)
        settle(1.0)
        save(viewer, screenshot)
        wait_until(lambda: not dock.train.is_busy)
        viewer.close()


def main() -> None:
    plate_folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PLATE
    held_out_comparison(plate_folder, option="self_training", values=(0, 1), screenshot="self_training")


if __name__ == "__main__":
    main()
