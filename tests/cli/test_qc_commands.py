"""``napari-hcs qc`` on real sites, and the exclusion of flagged sites from training and baselines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from napari_hcs.classify import TrainingSetError, training_table
from napari_hcs.cli import main
from napari_hcs.images.qc_run import read_qc_table
from napari_hcs.images.site_exclusions import SiteExclusions
from napari_hcs.io import open_plate
from napari_hcs.project import CellStore, Project

NAME = "Timepoint{t:03d}_Row{row:02d}_Well{col:02d}_{channel}_zstack001_r000_c000.tif"
BLURRED = "C02_f000_t001"


@pytest.fixture(scope="module")
def small_plate(tmp_path_factory, scportrait_dir):
    """The six real scPortrait sites cut to their central 540 x 540 pixels, and a blurred copy of B02 t1."""
    real = open_plate(scportrait_dir)
    folder = tmp_path_factory.mktemp("qc_cli_plate")
    centre = (slice(None), slice(270, 810), slice(270, 810))
    for site in real.iter_sites():
        image = real.read_site(site)[centre]
        col = {"B02": 2, "B04": 4}[site.well]
        for channel, plane in zip(real.channels, image):
            tifffile.imwrite(folder / NAME.format(t=site.timepoint, row=2, col=col, channel=channel), plane)
        if (site.well, site.timepoint) == ("B02", 1):
            for channel, plane in zip(real.channels, ndimage.gaussian_filter(image, (0, 2, 2))):
                tifffile.imwrite(folder / NAME.format(t=1, row=3, col=2, channel=channel), plane)
    return folder


def _last_json(text: str) -> dict:
    return json.loads(text[text.index("\n{") + 1:] if not text.startswith("{") else text)


def test_qc_writes_the_table_and_names_the_blurred_site(small_plate, tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["qc", str(small_plate), "--project", str(project)]) == 0
    captured = capsys.readouterr()
    assert f"{BLURRED} (well C02, field 0, timepoint 1): focus" in captured.out
    assert "PowerLogLogSlope" in captured.out
    summary = _last_json(captured.out)
    assert list(summary["flagged"]) == [BLURRED]
    assert summary["flagged"][BLURRED] | {"reasons": None} == {"well": "C02", "field": 0, "timepoint": 1,
                                                               "flags": ["focus"], "reasons": None}
    assert summary["excluded"] == [BLURRED] and summary["kept"] == [] and summary["sites"] == 7
    table = read_qc_table(project)
    assert len(table) == 7 * 3 and table["power_log_log_slope"].notna().all()
    assert pd.read_csv(project / "qc" / "sites.csv").shape == table.shape
    assert Project(project).read_meta()["plate"] == str(small_plate)       # the project reopens its plate

    # --json: only the JSON object on stdout; --keep brings the site back
    assert main(["qc", str(small_plate), "--project", str(project), "--json", "--keep", BLURRED,
                 "--workers", "2"]) == 0                                  # worker processes: the same
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["excluded"] == [] and summary["kept"] == [BLURRED]
    assert summary["flagged"][BLURRED]["flags"] == ["focus"] and "focus" in captured.err
    assert SiteExclusions(project).excluded() == set()
    assert main(["qc", str(small_plate), "--project", str(project), "--json", "--exclude", BLURRED]) == 0
    assert json.loads(capsys.readouterr().out)["excluded"] == [BLURRED]


def test_qc_refuses_unknown_site_keys_before_running(small_plate, tmp_path, capsys):
    project = tmp_path / "project"
    assert main(["qc", str(small_plate), "--project", str(project), "--keep", "B02_f000_t009"]) == 1
    err = capsys.readouterr().err
    assert "napari-hcs qc: error:" in err and "B02_f000_t009" in err and "B02_f000_t001" in err
    assert not (project / "qc").exists()
    assert main(["qc", str(small_plate), "--project", str(project), "--keep", BLURRED, "--exclude", BLURRED]) == 1
    assert "both --keep and --exclude" in capsys.readouterr().err


def _cell_project(folder) -> Project:
    """Two classes x two wells x two sites x 12 cells with separable features, field and timepoint known."""
    rng = np.random.default_rng(0)
    store = CellStore.create(folder, channels=["DNA"], crop_size=4)
    layout = {}
    for k, (cls, wells) in enumerate({"ctrl": ("B02", "B03"), "hit": ("C02", "C03")}.items()):
        for well in wells:
            layout[well] = cls
            for t in range(2):
                rows = pd.DataFrame({"well": well, "field": 0, "timepoint": t, "label": np.arange(1, 13)})
                written = store.append_site(f"{well}_f000_t{t:03d}", rows, np.zeros((12, 1, 4, 4), "float32"))
                features = pd.DataFrame(rng.normal(size=(12, 4)) + 3 * k, columns=[f"feat_{i}" for i in range(4)])
                store.write_features(f"{well}_f000_t{t:03d}", features.assign(crop_index=written["crop_index"]))
    pd.Series(layout, name="class").rename_axis("well").to_csv(folder / "layout.csv")
    return Project(folder)


def test_excluded_sites_leave_training_and_baselines_until_kept(tmp_path, capsys):
    project = _cell_project(tmp_path / "cells")
    assert len(training_table(project)) == 96
    SiteExclusions(project.folder).record_flags({"B02_f000_t001": ["focus"], "C03_f000_t000": ["saturation"],
                                                 "B03_f000_t000": []})
    cells = training_table(project)
    assert len(cells) == 72 and cells.attrs["qc_excluded"] == {"B02_f000_t001": 12, "C03_f000_t000": 12}
    assert not ((cells.well == "B02") & (cells.timepoint == 1)).any()

    args = ["baseline", "--project", str(project.folder), "--label-column", "class", "--methods", "lda"]
    assert main(args) == 0
    captured = capsys.readouterr()
    scores = json.loads(captured.out.strip().splitlines()[-1])
    assert scores["qc_excluded"] == {"cells": 24, "sites": 2, "site_keys": ["B02_f000_t001", "C03_f000_t000"]}
    assert "left out 24 cell(s) of 2 excluded site(s)" in captured.err and scores["lda"]["n"] > 0

    SiteExclusions(project.folder).keep(["B02_f000_t001", "C03_f000_t000"])
    assert len(training_table(project)) == 96
    assert main(args) == 0
    assert "qc_excluded" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    SiteExclusions(project.folder).exclude(["B02_f000_t001", "C03_f000_t000"])
    SiteExclusions(project.folder).record_flags({f"{w}_f000_t{t:03d}": ["blank"] for w in ("B02", "B03", "C02", "C03")
                                                 for t in range(2)})
    with pytest.raises(TrainingSetError, match="quality control excluded"):
        training_table(project)


def test_qc_on_the_real_plate_itself_flags_nothing(scportrait_dir, tmp_path, capsys):
    assert main(["qc", str(scportrait_dir), "--project", str(tmp_path / "p"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sites"] == 6 and summary["flagged"] == {} and summary["failures"] == []
