"""The Images dock section: preprocessing preview of the shown site, illumination compute and apply."""

from __future__ import annotations

import pytest

from napari_hcs.io import open_plate
from napari_hcs.samples import sample_path

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture
def panel(make_napari_viewer, tmp_path, qtbot):
    from napari_hcs.widgets.image_panel import ImagePanel
    from napari_hcs.widgets.site_display import shared_session

    viewer = make_napari_viewer()
    session = shared_session(viewer)
    panel = ImagePanel(session, viewer)
    qtbot.addWidget(panel)
    plate = open_plate(sample_path("scportrait_mini"), pattern="scportrait")
    with qtbot.waitSignal(session.site_shown, timeout=TIMEOUT_MS):
        session.set_plate(plate, project_dir=tmp_path / "p")
    yield panel
    panel.close_workers()


def test_the_preview_shows_the_shown_site_preprocessed_as_extra_layers(panel, qtbot):
    panel.step_boxes["median"].setChecked(True)
    panel.step_boxes["centre_crop"].setChecked(True)
    panel.crop_size.setValue(256)
    panel.preview()
    qtbot.waitUntil(lambda: "preprocessed DAPI" in panel.viewer.layers, timeout=TIMEOUT_MS)
    layer = panel.viewer.layers["preprocessed DAPI"]
    assert layer.data.shape == (256, 256) and tuple(layer.translate) == (142.0, 142.0)
    assert panel.options().steps == ("median", "centre_crop")
    panel.save_options()
    assert panel.session.project.read_meta()["preprocessing"]["crop_size"] == 256
    assert panel.minimumSizeHint().width() <= 440, panel.minimumSizeHint()


def test_outlier_values_are_kept_per_channel(panel):
    panel.channel.setCurrentText("DAPI")
    panel.outlier_threshold.setValue(300)
    panel.channel.setCurrentText("mCherry")
    assert panel.outlier_threshold.value() == 0   # "auto"
    panel.outlier_threshold.setValue(900)
    options = panel.options()
    assert options.outlier_threshold["DAPI"] == 300 and options.outlier_threshold["mCherry"] == 900
    assert options.outlier_threshold["Alexa488"] is None


def test_compute_then_apply_reads_the_plate_corrected(panel, qtbot):
    from napari_hcs.images.corrected_loader import CorrectedLoader

    panel.compute_illumination()
    qtbot.waitUntil(lambda: panel._illumination_worker is None, timeout=TIMEOUT_MS)
    assert "illumination saved" in panel.status.text() and panel.progress.value() == 6
    with qtbot.waitSignal(panel.session.site_shown, timeout=TIMEOUT_MS):
        panel.apply_box.setChecked(True)
    assert isinstance(panel.session.plate.loader, CorrectedLoader)
    assert panel.session.project.read_meta()["illumination"] == {"method": "cellprofiler", "applied": True}
    panel.apply_box.setChecked(False)
    assert not isinstance(panel.session.plate.loader, CorrectedLoader)
