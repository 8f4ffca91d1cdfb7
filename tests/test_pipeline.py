"""Plate pipeline: process_site, run_plate (resume, failures, empty/NaN sites), run_features, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from napari_hcs.project.cell_store import CROP_INDEX, CellStore, feature_columns
from napari_hcs.cli import main
from napari_hcs.pipeline.site import (
    ROW_COLUMNS,
    process_site,
    read_site_labels,
    run_features,
    run_plate,
)
from napari_hcs.plate import Plate, PlateError
from napari_hcs.project.folder import Project
from napari_hcs.segmentation.segment import SegmentationParams
from napari_hcs.samples.synthetic import make_synthetic_plate

PARAMS = SegmentationParams(nuclei_channel="DNA", cell_channel="cytoplasm")


def _synthetic(n_columns=2, n_sites=1, size=128, n_cells=8):
    return make_synthetic_plate(n_rows=1, n_columns=n_columns, n_sites=n_sites, shape=(size, size),
                                n_cells=n_cells)


def _with_special_sites(plate: Plate, special: dict) -> Plate:
    """The plate with some sites replaced: "empty" (zeros), "nan" (NaN holes), "raise"."""
    base = plate.loader

    def load(site):
        kind = special.get(site)
        if kind == "raise":
            raise OSError(f"simulated read error at {site.name}")
        array = base(site)
        if kind == "empty":
            return da.zeros_like(array)
        if kind == "nan":
            image = np.asarray(array).astype(np.float32)
            image[:, :10, :] = np.nan
            return da.from_array(image)
        return array

    return replace(plate, loader=load, sites=dict(plate.sites), annotations=plate.annotations.copy())


# -- one site -----------------------------------------------------------------------
def test_process_site_gives_rows_crops_labels_and_features():
    plate = _synthetic(n_columns=1)
    site = plate.site("A01")
    result = process_site(plate, site, PARAMS, crop_size=24)
    assert result.n_cells > 3
    assert list(result.rows.columns) == ROW_COLUMNS
    assert result.crops.shape == (result.n_cells, 3, 24, 24)
    assert result.crops.dtype == np.float32
    assert result.nuclei.shape == result.cells.shape == (128, 128)
    assert set(result.rows.label) == set(np.unique(result.nuclei)) - {0}
    assert (result.rows.well == "A01").all() and (result.rows.site == 0).all()
    assert (result.rows.bbox_y1 > result.rows.bbox_y0).all()
    assert (result.rows.cell_area >= result.rows.nucleus_area).all()
    assert list(result.features.label) == list(result.rows.label)
    values = result.features[feature_columns(result.features)].to_numpy()
    assert values.shape[1] > 10 and np.isfinite(values).all()


def test_process_site_on_an_image_array():
    plate = _synthetic(n_columns=1)
    image = plate.read_site(plate.site("A01"))
    result = process_site(image, None, PARAMS.to_dict(), channels=plate.channels, features=False)
    assert result.n_cells > 3 and result.features is None
    with pytest.raises(ValueError, match="channel names"):
        process_site(image, None, PARAMS)


def test_process_site_rejects_unknown_channel_and_bad_shapes():
    plate = _synthetic(n_columns=1)
    with pytest.raises(PlateError, match="DNA, cytoplasm, marker"):
        process_site(plate, plate.site("A01"), replace(PARAMS, nuclei_channel="DAPI"))
    with pytest.raises(PlateError, match="2 channels, expected 3"):
        process_site(np.zeros((2, 32, 32)), None, PARAMS, channels=plate.channels)


# -- whole plate --------------------------------------------------------------------
def test_failures_empty_and_nan_sites_are_reported_and_others_complete(tmp_path):
    healthy = _synthetic(n_columns=4)
    sites = list(healthy.iter_sites())
    plate = _with_special_sites(healthy, {sites[1]: "raise", sites[2]: "empty", sites[3]: "nan"})
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
    plate = _synthetic(n_columns=2)
    plate = _with_special_sites(plate, {s: "raise" for s in plate.iter_sites()})
    summary = run_plate(plate, tmp_path, PARAMS)
    assert summary["sites"] == 0 and len(summary["failures"]) == 2


def test_resume_after_cancel_gives_the_same_table(tmp_path):
    plate = _synthetic(n_columns=3)
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
    plate = _synthetic(n_columns=3)
    run_plate(plate, tmp_path / "serial", PARAMS, crop_size=16)
    summary = run_plate(plate, tmp_path / "threads", PARAMS, crop_size=16, workers=2, pool="thread")
    assert summary["sites"] == 3
    key = ["well", "field", "timepoint", "label"]
    serial = CellStore(tmp_path / "serial").table().sort_values(key).reset_index(drop=True)
    threads = CellStore(tmp_path / "threads").table().sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(serial.drop(columns=CROP_INDEX), threads.drop(columns=CROP_INDEX))


def test_process_pool_refuses_a_plate_it_cannot_reopen(tmp_path):
    with pytest.raises(ValueError, match="not opened from a path"):
        run_plate(_synthetic(), tmp_path, PARAMS, workers=2)


def test_unknown_channel_lists_channels_before_any_work(tmp_path):
    with pytest.raises(PlateError, match="channels are: DNA, cytoplasm, marker"):
        run_plate(_synthetic(), tmp_path / "p", replace(PARAMS, cell_channel="actin"))
    assert not (tmp_path / "p").exists()


def test_labels_are_stored_in_the_project_and_features_run_later(tmp_path):
    plate = _synthetic(n_columns=2)
    summary = run_plate(plate, tmp_path, PARAMS, crop_size=16, features=False)
    assert summary["sites"] == 2
    assert not feature_columns(CellStore(tmp_path).table())
    site = plate.site("A02")
    labels = read_site_labels(tmp_path, site)
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


def test_labels_go_into_a_writable_ome_zarr_plate(tmp_path):
    from napari_hcs.io import open_plate, write_plate

    store = write_plate(_synthetic(n_columns=1), tmp_path / "plate.zarr")
    plate = open_plate(store)
    summary = run_plate(plate, tmp_path / "project", PARAMS, crop_size=16, features=False)
    assert summary["sites"] == 1
    site = plate.site("A01")
    reopened = open_plate(store)
    stored = {k: np.asarray(v) for k, v in reopened.site_labels(site).items()}
    assert set(stored) >= {"nuclei", "cells"} and stored["nuclei"].max() > 0
    assert not (tmp_path / "project" / "labels").exists()
    labels = read_site_labels(tmp_path / "project", site, plate=reopened)
    np.testing.assert_array_equal(labels["nuclei"], stored["nuclei"])


# -- command line -------------------------------------------------------------------
def _tiff_folder(tmp_path, plate: Plate):
    import tifffile

    folder = tmp_path / "tiffs"
    folder.mkdir()
    for site in plate.iter_sites():
        image = plate.read_site(site)
        for index, plane in enumerate(image):
            tifffile.imwrite(folder / f"P1_{site.well}_s{site.field + 1}_w{index + 1}.tif", plane)
    return folder


def test_cli_segment_and_features(tmp_path, capsys):
    folder = _tiff_folder(tmp_path, _synthetic(n_columns=2))
    layout = tmp_path / "layout.csv"
    layout.write_text("well,treatment\nA01,control\nA02,drug\n")
    project = tmp_path / "project"
    code = main(["segment", str(folder), "--project", str(project), "--nuclei-channel", "1",
                 "--cell-channel", "2", "--crop-size", "16", "--pattern", "imagexpress", "--no-features",
                 "--layout", str(layout), "--workers", "2"])
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"):])
    assert code == 0 and summary["sites"] == 2 and summary["cells"] > 0
    assert Project(project).read_meta()["pattern"] == "imagexpress"

    code = main(["features", "--project", str(project)])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out[out.index("{"):])["sites"] == 2
    table = Project(project).cell_table()
    assert feature_columns(table) and set(table.treatment) == {"control", "drug"}

    code = main(["segment", str(folder), "--project", str(project), "--nuclei-channel", "1",
                 "--crop-size", "16", "--wells", "A01,A02"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out[out.index("{"):])["skipped_done"] == 2


def test_cli_unknown_channel_lists_channels(tmp_path, capsys):
    folder = _tiff_folder(tmp_path, _synthetic(n_columns=1))
    code = main(["segment", str(folder), "--project", str(tmp_path / "p"), "--nuclei-channel", "DAPI"])
    error = capsys.readouterr().err
    assert code == 1 and "'DAPI'" in error and "channels are: 1, 2, 3" in error


# -- real plate ---------------------------------------------------------------------
SCPORTRAIT = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")


@pytest.fixture(scope="module")
def scportrait_run(scportrait_dir, tmp_path_factory):
    from napari_hcs.io import open_plate

    plate = open_plate(scportrait_dir, pattern="scportrait", layout=scportrait_dir / "plate_layout.tsv")
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
    assert set(table.Genotype) == {"Genotype1", "Genotype2"}
    meta = Project(project).read_meta()
    assert meta["pattern"] == "scportrait" and meta["segmentation"]["nuclei_channel"] == "DAPI"
    labels = read_site_labels(project, plate.site("B04", 2))
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
        summary = run_plate(plate, tmp_path, SCPORTRAIT, wells=["B02"], scheduler=client,
                            pattern="scportrait")
    assert summary["sites"] == 3 and not summary["failures"]
    pd.testing.assert_frame_equal(
        _site_rows(CellStore(tmp_path).table(), "B02"), _site_rows(CellStore(reference).table(), "B02")
    )
