"""QC panel: run QC on the real scPortrait plate (one site blurred), heat map, a well's sites, keep / exclude."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.gui

TIMEOUT_MS = 120_000
BLURRED = "Timepoint002_Row02_Well04"  # the site B04 f0 t2


def blurred_copy(source: Path, folder: Path) -> Path:
    """The plate with one site's channels blurred (Gaussian, sigma 4); the other files are links."""
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


@pytest.fixture(scope="module")
def blurred_plate(scportrait_dir, tmp_path_factory):
    return blurred_copy(scportrait_dir, tmp_path_factory.mktemp("qc_plate"))


def _panel(qtbot, plate_dir, project_dir):
    from napari_hcs.io import open_plate
    from napari_hcs.viewer.session import Session
    from napari_hcs.widgets.qc_panel import QcPanel

    session = Session()
    session.set_plate(open_plate(plate_dir), project_dir=project_dir)
    panel = QcPanel(session)
    qtbot.addWidget(panel)
    panel.resize(440, 900)
    panel.show()
    return panel


def _qc_table(plate_dir) -> pd.DataFrame:
    """A QC table in the project's format (one row per site and channel), B04 t2 flagged for focus."""
    from napari_hcs.io import open_plate, site_key

    plate = open_plate(plate_dir)
    rows = []
    for number, site in enumerate(plate.iter_sites()):
        key = site_key(site.well, site.field, site.timepoint)
        for channel in plate.channels:
            flagged = key == "B04_f000_t002"
            slope = -3.0 if flagged else -1.8 - 0.01 * number
            rows.append({"plate": plate.name, "well": site.well, "field": site.field, "timepoint": site.timepoint,
                         "site_key": key, "channel": channel, "power_log_log_slope": slope,
                         "focus_score": 0.1 + number, "error": "", "flags": "focus" if flagged else "",
                         "reasons": f"{channel}: focus: blurred" if flagged else ""})
    return pd.DataFrame(rows)


def test_heat_map_sites_and_keep_from_a_written_table(qtbot, blurred_plate, tmp_path):
    from napari_hcs.atomic import write_parquet_atomic
    from napari_hcs.images.site_exclusions import SiteExclusions
    from napari_hcs.plate import Site

    project = tmp_path / "project"
    write_parquet_atomic(_qc_table(blurred_plate), project / "qc" / "sites.parquet")
    SiteExclusions(project).record_flags({"B04_f000_t002": ["focus"]})
    panel = _panel(qtbot, blurred_plate, project)
    assert panel.minimumSizeHint().width() <= 440  # fits the dock's tabs
    assert panel.metric.currentText() == "power_log_log_slope"
    assert [panel.channel.itemText(i) for i in range(panel.channel.count())] == ["Alexa488", "DAPI", "mCherry"]
    assert panel.plate_map.flagged_wells == {"B04"}
    low, high = panel.plate_map.well_color("B04"), panel.plate_map.well_color("B02")
    assert low and high and low != high  # B04's median slope is the lower one
    panel.metric.setCurrentText("focus_score")
    assert panel.plate_map.well_color("B04") == high  # now B04 is the higher one
    panel.show_well("B04")
    texts = [panel.site_list.item(i).text() for i in range(panel.site_list.count())]
    assert [t.split()[:2] for t in texts] == [["f0", "t1"], ["f0", "t2"], ["f0", "t3"]]  # sorted by focus score
    assert "focus" in texts[1] and "excluded" in texts[1]
    panel.site_list.setCurrentRow(0)
    assert not panel.keep_button.isEnabled()
    panel.site_list.setCurrentRow(1)
    assert "blurred" in panel.site_details.text()
    panel._site_clicked(panel.site_list.item(1))
    assert panel.session.current_site == Site("B04", 0, 2)
    assert panel.keep_button.isEnabled() and not panel.exclude_button.isEnabled()
    panel.keep_button.click()
    assert SiteExclusions(project).excluded() == set()
    assert "kept" in panel.site_list.currentItem().text() and panel.exclude_button.isEnabled()
    panel.exclude_button.click()
    assert SiteExclusions(project).excluded() == {"B04_f000_t002"}


def test_without_qc_the_panel_says_so(qtbot, blurred_plate, tmp_path):
    panel = _panel(qtbot, blurred_plate, tmp_path / "project")
    assert panel.table is None and panel.metric.count() == 0
    assert "has not run" in panel.status.text()
    panel.show_well("B02")
    assert panel.site_list.count() == 0


@pytest.mark.slow
def test_run_qc_flags_the_blurred_site(qtbot, blurred_plate, tmp_path):
    from napari_hcs.images.site_exclusions import SiteExclusions

    project = tmp_path / "project"
    panel = _panel(qtbot, blurred_plate, project)
    with qtbot.waitSignal(panel.qc_finished, timeout=TIMEOUT_MS) as finished:
        assert panel.run_qc()
        assert panel.is_busy and panel.cancel_button.isEnabled()
    assert not isinstance(finished.args[0], BaseException), panel.status.text()
    assert (project / "qc" / "sites.parquet").is_file()
    assert panel.plate_map.flagged_wells == {"B04"}
    assert "1 flagged (B04_f000_t002)" in panel.status.text()
    assert {panel.plate_map.well_color(w) is not None for w in ("B02", "B04")} == {True}
    panel.show_well("B04")
    flagged = [panel.site_list.item(i).text() for i in range(3) if "⚑" in panel.site_list.item(i).text()]
    assert len(flagged) == 1 and flagged[0].startswith("f0 t2") and "focus" in flagged[0]
    assert panel.site_list.item(0).text().startswith("f0 t2")  # the lowest slope: the blurred site first
    assert SiteExclusions(project).excluded() == {"B04_f000_t002"}
    # a second run cancelled at once writes nothing and says so
    with qtbot.waitSignal(panel.qc_finished, timeout=TIMEOUT_MS) as cancelled:
        panel.run_qc()
        panel.cancel()
    assert isinstance(cancelled.args[0], BaseException) and "cancelled" in panel.status.text()
