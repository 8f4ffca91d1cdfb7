"""The run panel: a regular-expression plate on 2 worker processes, skipped sites in the status."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from run_report_plates import GARBAGE, SCPORTRAIT_REGEX, broken_sample  # noqa: E402

from napari_hcs.project import Project  # noqa: E402
from napari_hcs.samples import sample_path  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(make_napari_viewer, tmp_path, monkeypatch):
    from napari_hcs.viewer import session as session_module
    from napari_hcs.widgets.segmentation_widget import SegmentationWidget

    monkeypatch.setattr(session_module, "default_project_dir", lambda plate: tmp_path / "project")
    widget = SegmentationWidget(make_napari_viewer())
    yield widget
    widget.cancel()


def _run(widget, qtbot, folder, project) -> dict:
    widget.form.live_preview.value = False
    widget.session.open(folder, pattern=SCPORTRAIT_REGEX)
    panel = widget.run_panel
    panel.project.setText(str(project))
    panel.workers.setValue(2)
    panel.measure.setChecked(False)
    widget.form.nuclei_channel.value = "DAPI"
    widget.form.crop_size.value = 16
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as finished:
        panel.run_plate_button.click()
    return finished.args[0]


def test_regex_plate_on_two_workers_and_skipped_sites_shown(widget, qtbot, tmp_path):
    summary = _run(widget, qtbot, broken_sample(tmp_path / "sample"), tmp_path / "run")
    assert summary["sites"] == 4 and summary["failures"] == [] and len(summary["skipped"]) == 2, summary
    text = widget.status.text()
    assert "4 sites" in text and "2 skipped" in text and GARBAGE in text, text
    assert Project(tmp_path / "run").read_meta()["pattern"] == SCPORTRAIT_REGEX


def test_clean_regex_run_shows_no_problems(widget, qtbot, tmp_path):
    folder = tmp_path / "sample"
    shutil.copytree(sample_path("scportrait_mini"), folder)
    summary = _run(widget, qtbot, folder, tmp_path / "run")
    assert summary["sites"] == 6 and not summary["failures"] and not summary["skipped"], summary
    assert "0 failed, 0 skipped" in widget.status.text()
