"""Normalising each timepoint on its own, from the Train tab, on the real scPortrait plate.

Opens the plate with the napari HCS dock, segments every site, labels the cells
of timepoints 1 and 2 by their well's treatment (B02 unstimulated, B04
stimulated) and leaves timepoint 3 unlabelled, then trains the same wide ResNet
twice: with each plate's statistics ("within: whole plate") and with each
timepoint's own ("within: timepoint"). It predicts the plate after each and
prints the balanced accuracy on timepoint 3, whose labels training never saw,
and saves ``docs/images/walkthrough_normalise_within.png`` (the whole window,
1200 px wide) with the Train tab showing the field and, after a click on
the newest model, what its training gave.

Run under a display::

    xvfb-run -a -s "-screen 0 1600x1000x24" python examples/normalise_within_screenshot.py [PLATE_FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

from self_training_screenshot import DEFAULT_PLATE, held_out_comparison  # examples/ is on the path


def main() -> None:
    plate_folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PLATE
    held_out_comparison(plate_folder, option="normalise_within", values=("", "timepoint"),
                        screenshot="normalise_within")


if __name__ == "__main__":
    main()
