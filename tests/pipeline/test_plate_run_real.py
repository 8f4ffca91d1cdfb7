"""run_plate on the real scPortrait plate: every site, resume, dask distributed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_hcs.io import LabelStore, open_plate
from napari_hcs.pipeline import Workers, run_plate
from napari_hcs.project import CROP_INDEX, CellStore, Project, feature_columns
from napari_hcs.segmentation import SegmentationParams

SCPORTRAIT = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")


@pytest.fixture(scope="module")
def scportrait_run(scportrait_dir, tmp_path_factory):
    plate = open_plate(scportrait_dir, pattern="scportrait")
    project = tmp_path_factory.mktemp("scportrait") / "project"
    summary = run_plate(plate, project, SCPORTRAIT, pattern="scportrait")
    return plate, project, summary


@pytest.mark.slow
def test_real_plate_all_sites_segmented(scportrait_run):
    plate, project, summary = scportrait_run
    assert summary["sites"] == 6 and not summary["failures"], summary
    table = Project(project).cell_table()
    per_site = table.groupby(["well", "timepoint"]).size()
    assert len(per_site) == 6
    assert per_site.between(80, 250).all(), per_site.to_dict()  # 123-136 measured
    crops = CellStore(project).crops
    assert crops.shape == (len(table), 3, 32, 32)
    features = table[feature_columns(table)].to_numpy()
    assert features.shape[1] > 50 and np.isfinite(features).all()
    assert set(table.Genotype) == {"Genotype1", "Genotype2"}  # the plate folder's layout table
    meta = Project(project).read_meta()
    assert meta["pattern"] == "scportrait" and meta["segmentation"]["nuclei_channel"] == "DAPI"
    labels = LabelStore(project).read(plate.site("B04", 2))
    assert labels["nuclei"].max() > 0 and labels["cells"].shape == (1080, 1080)


def _site_rows(table, well):
    key = ["well", "timepoint", "label"]
    part = table[table.well == well].sort_values(key).reset_index(drop=True)
    return part.drop(columns=CROP_INDEX)


@pytest.mark.slow
def test_real_plate_resume_redoes_no_site(scportrait_run, tmp_path):
    plate, reference, _ = scportrait_run
    taken = []
    first = run_plate(plate, tmp_path, SCPORTRAIT, wells=["B04"], pattern="scportrait",
                      progress=lambda done, total: taken.append(done), cancel=lambda: sum(taken) >= 1)
    assert first["sites"] == 1 and first["cancelled"]
    part = next((tmp_path / "cells").glob("*.parquet"))
    written = part.stat().st_mtime_ns
    second = run_plate(plate, tmp_path, SCPORTRAIT, wells=["B04"], pattern="scportrait")
    assert second["skipped_done"] == 1 and second["sites"] == 2
    assert part.stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(
        _site_rows(CellStore(tmp_path).table(), "B04"), _site_rows(CellStore(reference).table(), "B04")
    )


@pytest.mark.slow
def test_real_plate_on_dask_distributed_gives_the_same_cells(scportrait_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    plate, reference, _ = scportrait_run
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        summary = run_plate(plate, tmp_path, SCPORTRAIT, wells=["B02"], workers=Workers(scheduler=client),
                            pattern="scportrait")
    assert summary["sites"] == 3 and not summary["failures"]
    pd.testing.assert_frame_equal(
        _site_rows(CellStore(tmp_path).table(), "B02"), _site_rows(CellStore(reference).table(), "B02")
    )
