"""Segmentation dock widget: preview of the shown site, plate runs with progress, cancel."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from napari_hcs.project import CellStore
from napari_hcs.samples import make_synthetic_plate
from napari_hcs.vocabulary import META_PLATE, META_ROLE, META_SITE

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture
def viewer(make_napari_viewer, tmp_path, monkeypatch):
    from napari_hcs.viewer import session as session_module

    monkeypatch.setattr(session_module, "default_project_dir", lambda plate: tmp_path / "project")
    return make_napari_viewer()


@pytest.fixture
def widget(viewer):
    from napari_hcs.widgets.segmentation_widget import SegmentationWidget

    widget = SegmentationWidget(viewer)
    yield widget
    widget.cancel()


def _tiny_plate(n_columns=2):
    return make_synthetic_plate(n_rows=1, n_columns=n_columns, n_sites=1, shape=(96, 96), n_cells=5)


def _layer_sites(viewer) -> dict[str, object]:
    return {layer.name: layer.metadata.get(META_SITE) for layer in viewer.layers if META_ROLE in layer.metadata}


def test_the_form_follows_the_session_plate(widget, qtbot):
    widget.form.live_preview.value = False
    plate = _tiny_plate()
    with qtbot.waitSignal(widget.session.site_shown, timeout=TIMEOUT_MS):
        widget.set_plate(plate)
    assert widget.site == plate.site("A01")
    assert widget.form.nuclei_channel.value == "DNA"
    assert widget.form.cell_channel.value == "cytoplasm"
    assert widget.parameters().cell_channel == "cytoplasm"
    assert [widget.run_panel.wells.item(i).text() for i in range(widget.run_panel.wells.count())] == ["A01", "A02"]


def test_choosing_a_site_in_the_form_shows_its_image_then_segments_it(widget, qtbot):
    plate = _tiny_plate()
    with qtbot.waitSignal(widget.preview_finished, timeout=TIMEOUT_MS):
        widget.set_plate(plate)
    with qtbot.waitSignal(widget.preview_finished, timeout=TIMEOUT_MS) as finished:
        widget.form.site.value = plate.site("A02")
    assert finished.args[0].site == plate.site("A02")
    assert set(_layer_sites(widget.viewer).values()) == {plate.site("A02")}
    assert {"nuclei", "cells"} <= set(_layer_sites(widget.viewer))


@pytest.mark.slow
def test_clicking_another_well_keeps_labels_on_the_site_the_image_shows(viewer, qtbot, scportrait_dir):
    """The plate map and the segmentation widget share one session: after a click on
    another well, the preview segments the site the image layers show, never the one before."""
    from napari_hcs.widgets.plate_widget import PlateWidget
    from napari_hcs.widgets.segmentation_widget import SegmentationWidget

    plate_widget = PlateWidget(viewer)
    segmentation = SegmentationWidget(viewer)
    with qtbot.waitSignal(segmentation.preview_finished, timeout=TIMEOUT_MS):
        plate_widget.open_plate(scportrait_dir, pattern="scportrait")
    assert segmentation.site == plate_widget.shown_site == plate_widget.plate.site("B02", 0)
    for well in ("B04", "B02", "B04"):
        plate_widget.click_well(well)
        target = plate_widget.current_site
        qtbot.waitUntil(
            lambda: segmentation.site == target and set(_layer_sites(viewer).values()) == {target}
            and "nuclei" in viewer.layers, timeout=TIMEOUT_MS,
        )
    assert segmentation.form.site.value == plate_widget.shown_site
    image_sites = {viewer.layers[c].metadata[META_SITE] for c in plate_widget.plate.channels}
    assert image_sites == {viewer.layers["nuclei"].metadata[META_SITE]} == {plate_widget.shown_site}
    assert viewer.layers["cells"].metadata[META_PLATE] is plate_widget.plate
    result = plate_widget.plate.read_site(plate_widget.shown_site)
    assert viewer.layers["DAPI"].data.shape == result.shape[1:] == viewer.layers["nuclei"].data.shape


@pytest.mark.slow
def test_live_preview_on_a_real_site_shows_labels_with_features(widget, qtbot, scportrait_dir):
    from napari_hcs.io import open_plate

    plate = open_plate(scportrait_dir, pattern="scportrait")
    with qtbot.waitSignal(widget.preview_finished, timeout=TIMEOUT_MS) as finished:
        widget.set_plate(plate, plate.site("B02", 0))
    result = finished.args[0]
    assert widget.form.nuclei_channel.value == "DAPI"
    assert widget.form.cell_channel.value == "mCherry"
    assert 60 < result.n_cells < 300
    for name in ("nuclei", "cells"):
        layer = widget.viewer.layers[name]
        assert layer.data.shape == (1080, 1080) and layer.data.max() > 0
        assert len(layer.features) == result.n_cells
        assert list(layer.features["index"]) == list(layer.features["label"])
        assert any(c.startswith("feat_") for c in layer.features.columns)
    # a parameter change re-runs the preview (debounced) and updates the same layers
    with qtbot.waitSignal(widget.preview_finished, timeout=TIMEOUT_MS):
        widget.form.smoothing.value += 1
        widget.form.smoothing.value += 0.5
    assert [layer.name for layer in widget.viewer.layers].count("nuclei") == 1


def test_run_plate_reaches_full_progress(widget, qtbot, tmp_path):
    widget.form.live_preview.value = False
    widget.set_plate(_tiny_plate())
    panel = widget.run_panel
    panel.project.setText(str(tmp_path / "run"))
    widget.form.crop_size.value = 16
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS) as finished:
        panel.run_plate_button.click()
    summary = finished.args[0]
    assert summary["sites"] == 2 and not summary["failures"] and not summary["cancelled"]
    assert panel.progress.value() == panel.progress.maximum() == 2
    assert len(CellStore(tmp_path / "run")) == summary["cells"] > 0
    assert panel.run_plate_button.isEnabled() and not panel.cancel_button.isEnabled()


def _slow_plate(n_columns: int, seconds: float):
    plate = _tiny_plate(n_columns)
    load = plate.loader

    def slow_load(site):
        time.sleep(seconds)
        return load(site)

    return replace(plate, loader=slow_load, sites=dict(plate.sites))


def test_run_selected_wells_and_cancel(widget, qtbot, tmp_path):
    widget.form.live_preview.value = False
    widget.set_plate(_slow_plate(n_columns=4, seconds=1.0))
    panel = widget.run_panel
    panel.project.setText(str(tmp_path / "run"))
    widget.form.crop_size.value = 16
    for index in range(3):
        panel.wells.item(index).setSelected(True)
    panel.progress_changed.connect(lambda done, total: done and panel.cancel_button.click())
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS) as finished:
        panel.run_wells_button.click()
    summary = finished.args[0]
    assert summary["cancelled"] and summary["sites"] < 3
    assert set(CellStore(tmp_path / "run").cells().well) <= {"A01", "A02", "A03"}


def test_a_segmented_site_shows_the_labels_its_project_keeps(widget, qtbot):
    import numpy as np

    widget.form.live_preview.value = False
    plate = _tiny_plate()
    with qtbot.waitSignal(widget.session.site_shown, timeout=TIMEOUT_MS):
        widget.set_plate(plate)
    panel = widget.run_panel
    assert panel.project.text() == str(widget.session.project.folder)
    widget.form.crop_size.value = 16
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS):
        panel.run_plate_button.click()
    with qtbot.waitSignal(widget.session.site_shown, timeout=TIMEOUT_MS):
        widget.session.request_site(plate.site("A02"))
    stored = widget.session.project.label_store().read(plate.site("A02"))
    layer = widget.viewer.layers["nuclei"]
    assert layer.metadata[META_SITE] == plate.site("A02")
    np.testing.assert_array_equal(layer.data, stored["nuclei"])
