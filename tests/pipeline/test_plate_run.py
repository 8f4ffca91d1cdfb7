"""run_plate and run_features: resume, failures, empty/NaN sites, pools, where labels go."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pipeline_plates import PARAMS, synthetic, with_special_sites

from napari_hcs.io import LabelStore, open_plate, write_plate, write_site_labels
from napari_hcs.pipeline import Workers, process_site, run_features, run_plate
from napari_hcs.plate import PlateError
from napari_hcs.project import CROP_INDEX, CellStore, Project, feature_columns


def _sorted_table(folder):
    key = ["well", "field", "timepoint", "label"]
    return CellStore(folder).table().sort_values(key).reset_index(drop=True).drop(columns=CROP_INDEX)


def test_failures_empty_and_nan_sites_are_reported_and_others_complete(tmp_path):
    healthy = synthetic(n_columns=4)
    sites = list(healthy.iter_sites())
    plate = with_special_sites(healthy, {sites[1]: "raise", sites[2]: "empty", sites[3]: "nan"})
    summary = run_plate(plate, tmp_path, PARAMS, crop_size=16)
    json.dumps(summary)  # JSON-ready
    assert summary["sites"] == 3 and summary["skipped_done"] == 0
    assert [f["site"] for f in summary["failures"]] == [sites[1].name]
    assert "simulated read error" in summary["failures"][0]["error"]
    assert any(w.startswith(sites[2].name) and "no cells" in w for w in summary["warnings"])
    assert any(w.startswith(sites[3].name) and "NaN" in w for w in summary["warnings"])
    table = Project(tmp_path).cell_table()
    assert set(table.well) == {sites[0].well, sites[3].well}
    assert len(table) == summary["cells"] == summary["total_cells"]
    assert np.isfinite(table[feature_columns(table)].to_numpy()).all()
    assert "class" in table  # well annotations saved with the project
    # the failed site is retried on the next run; the others are not redone
    again = run_plate(healthy, tmp_path, PARAMS, crop_size=16)
    assert again["sites"] == 1 and again["skipped_done"] == 3 and not again["failures"]


def test_all_sites_failing(tmp_path):
    plate = synthetic(n_columns=2)
    plate = with_special_sites(plate, {s: "raise" for s in plate.iter_sites()})
    summary = run_plate(plate, tmp_path, PARAMS)
    assert summary["sites"] == 0 and len(summary["failures"]) == 2


def test_resume_after_cancel_gives_the_same_table(tmp_path):
    plate = synthetic(n_columns=3)
    reference = run_plate(plate, tmp_path / "once", PARAMS, crop_size=16)
    taken = []
    first = run_plate(plate, tmp_path / "twice", PARAMS, crop_size=16,
                      progress=lambda done, total: taken.append(done), cancel=lambda: sum(taken) >= 1)
    assert first["cancelled"] and first["sites"] == 1
    second = run_plate(plate, tmp_path / "twice", PARAMS, crop_size=16)
    assert second["skipped_done"] == 1 and second["sites"] == 2 and not second["cancelled"]
    assert first["cells"] + second["cells"] == reference["cells"]
    once, twice = CellStore(tmp_path / "once"), CellStore(tmp_path / "twice")
    pd.testing.assert_frame_equal(once.table(), twice.table())
    np.testing.assert_array_equal(once.crops[:], twice.crops[:])


def test_thread_pool_gives_the_same_cells(tmp_path):
    plate = synthetic(n_columns=3)
    run_plate(plate, tmp_path / "serial", PARAMS, crop_size=16)
    summary = run_plate(plate, tmp_path / "threads", PARAMS, crop_size=16, workers=Workers(2, pool="thread"))
    assert summary["sites"] == 3
    pd.testing.assert_frame_equal(_sorted_table(tmp_path / "serial"), _sorted_table(tmp_path / "threads"))


def test_process_pool_runs_a_plate_opened_from_no_path(tmp_path):
    plate = synthetic(n_columns=2)
    assert plate.source is None
    run_plate(plate, tmp_path / "serial", PARAMS, crop_size=16, features=False)
    summary = run_plate(plate, tmp_path / "processes", PARAMS, crop_size=16, workers=2, features=False)
    assert summary["sites"] == 2 and not summary["failures"], summary
    pd.testing.assert_frame_equal(_sorted_table(tmp_path / "serial"), _sorted_table(tmp_path / "processes"))


def test_unknown_channel_lists_channels_before_any_work(tmp_path):
    with pytest.raises(PlateError, match="channels are: DNA, cytoplasm, marker"):
        run_plate(synthetic(), tmp_path / "p", replace(PARAMS, cell_channel="actin"))
    assert not (tmp_path / "p").exists()


def test_labels_are_stored_in_the_project_and_features_run_later(tmp_path):
    plate = synthetic(n_columns=2)
    summary = run_plate(plate, tmp_path, PARAMS, crop_size=16, features=False)
    assert summary["sites"] == 2
    assert not feature_columns(CellStore(tmp_path).table())
    site = plate.site("A02")
    labels = LabelStore(tmp_path).read(site)
    assert set(labels) == {"nuclei", "cells"}
    expected = process_site(plate, site, PARAMS, features=False)
    np.testing.assert_array_equal(labels["nuclei"], expected.nuclei)
    np.testing.assert_array_equal(labels["cells"], expected.cells)

    measured = run_features(tmp_path, plate=plate)
    assert measured["sites"] == 2 and measured["cells"] == summary["cells"] and not measured["failures"]
    table = CellStore(tmp_path).table()
    assert feature_columns(table) and np.isfinite(table[feature_columns(table)].to_numpy()).all()
    direct = process_site(plate, site, PARAMS).features.set_index("label")
    stored = table[table.well == "A02"].set_index("label")[feature_columns(table)]
    pd.testing.assert_frame_equal(stored.sort_index(), direct[stored.columns].sort_index(),
                                  check_names=False)
    assert run_features(tmp_path, plate=plate)["skipped_done"] == 2


def test_labels_of_an_ome_zarr_plate_go_to_the_project_and_its_own_labels_stay(tmp_path):
    store = write_plate(synthetic(n_columns=1), tmp_path / "plate.zarr")
    site = open_plate(store).site("A01")
    own = np.zeros((128, 128), np.uint16)
    own[10:20, 10:20] = 3
    write_site_labels(store, site, "nuclei", own)
    summary = run_plate(open_plate(store), tmp_path / "project", PARAMS, crop_size=16, features=False)
    assert summary["sites"] == 1 and not summary["failures"]
    in_project = LabelStore(tmp_path / "project").read(site)
    assert set(in_project) == {"nuclei", "cells"} and in_project["nuclei"].max() > 3
    in_plate = {k: np.asarray(v) for k, v in open_plate(store).site_labels(site).items()}
    assert set(in_plate) == {"nuclei"}
    np.testing.assert_array_equal(in_plate["nuclei"], own)
