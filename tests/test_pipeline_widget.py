"""Pipeline dock widget: live preview on a real site, plate runs with progress, cancel."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from napari_hcs.project.cell_store import CellStore
from napari_hcs.samples.synthetic import make_synthetic_plate

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(make_napari_viewer):
    from napari_hcs.widgets.segmentation_widget import PipelineWidget

    viewer = make_napari_viewer()
    widget = PipelineWidget(viewer)
    yield widget
    widget.cancel()


def _tiny_plate(n_columns=2):
    return make_synthetic_plate(n_rows=1, n_columns=n_columns, n_sites=1, shape=(96, 96), n_cells=5)


def test_plate_is_picked_up_from_layer_metadata(widget):
    plate = _tiny_plate()
    widget.live_preview.setChecked(False)
    site = plate.site("A02")
    layer = widget.viewer.add_image(
        np.zeros((96, 96)), metadata={"napari_hcs_plate": plate, "napari_hcs_site": site}
    )
    assert widget.plate is plate and widget.site == site
    layer.metadata["napari_hcs_site"] = plate.site("A01")  # the plate map shows another site
    layer.data = np.ones((96, 96))
    assert widget.site == plate.site("A01")
    assert widget.nuclei_channel.currentText() == "DNA"
    assert widget.cell_channel.currentText() == "cytoplasm"
    assert [widget.wells.item(i).text() for i in range(widget.wells.count())] == ["A01", "A02"]


@pytest.mark.slow
def test_live_preview_on_a_real_site_shows_labels_with_features(widget, qtbot, scportrait_dir):
    from napari_hcs.io import open_plate

    plate = open_plate(scportrait_dir, pattern="scportrait")
    with qtbot.waitSignal(widget.preview_finished, timeout=60_000) as finished:
        widget.set_plate(plate, plate.site("B02", 0))
    result = finished.args[0]
    assert widget.nuclei_channel.currentText() == "DAPI"
    assert widget.cell_channel.currentText() == "mCherry"
    assert 60 < result.n_cells < 300
    for name in ("nuclei", "cells"):
        layer = widget.viewer.layers[name]
        assert layer.data.shape == (1080, 1080) and layer.data.max() > 0
        assert len(layer.features) == result.n_cells
        assert list(layer.features["index"]) == list(layer.features["label"])
        assert any(c.startswith("feat_") for c in layer.features.columns)
    # a parameter change re-runs the preview (debounced) and updates the same layers
    with qtbot.waitSignal(widget.preview_finished, timeout=60_000):
        widget.smoothing.setValue(widget.smoothing.value() + 1)
        widget.smoothing.setValue(widget.smoothing.value() + 0.5)
    assert [layer.name for layer in widget.viewer.layers].count("nuclei") == 1


def test_run_plate_reaches_full_progress(widget, qtbot, tmp_path):
    widget.live_preview.setChecked(False)
    widget.set_plate(_tiny_plate())
    widget.project.setText(str(tmp_path))
    widget.crop_size.setValue(16)
    with qtbot.waitSignal(widget.run_finished, timeout=60_000) as finished:
        widget.run_plate_button.click()
    summary = finished.args[0]
    assert summary["sites"] == 2 and not summary["failures"] and not summary["cancelled"]
    assert widget.progress.value() == widget.progress.maximum() == 2
    assert len(CellStore(tmp_path)) == summary["cells"] > 0
    assert widget.run_plate_button.isEnabled() and not widget.cancel_button.isEnabled()


def _slow_plate(n_columns: int, seconds: float):
    plate = _tiny_plate(n_columns)
    load = plate.loader

    def slow_load(site):
        time.sleep(seconds)
        return load(site)

    return replace(plate, loader=slow_load, sites=dict(plate.sites))


def test_run_selected_wells_and_cancel(widget, qtbot, tmp_path):
    widget.live_preview.setChecked(False)
    widget.set_plate(_slow_plate(n_columns=4, seconds=1.0))
    widget.project.setText(str(tmp_path))
    widget.crop_size.setValue(16)
    for index in range(3):
        widget.wells.item(index).setSelected(True)
    widget.progress_changed.connect(lambda done, total: done and widget.cancel_button.click())
    with qtbot.waitSignal(widget.run_finished, timeout=60_000) as finished:
        widget.run_wells_button.click()
    summary = finished.args[0]
    assert summary["cancelled"] and summary["sites"] < 3
    assert set(CellStore(tmp_path).cells().well) <= {"A01", "A02", "A03"}
