"""A project knows its plate (absolute location, identity) and settings; others are refused."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest
import tifffile

from napari_hcs.io import open_plate
from napari_hcs.pipeline import run_features, run_plate
from napari_hcs.project import CellStore, PlateMovedError, Project, ProjectMismatchError, plate_identity
from napari_hcs.samples import make_synthetic_plate
from napari_hcs.segmentation import SegmentationParams

PARAMS = SegmentationParams(nuclei_channel="DNA", cell_channel="cytoplasm")
TIFF_PARAMS = SegmentationParams(nuclei_channel="1", cell_channel="2")


def _synthetic(n_columns=2, size=96):
    return make_synthetic_plate(n_rows=1, n_columns=n_columns, n_sites=1, shape=(size, size), n_cells=6)


def _tiff_plate(folder, n_columns=2):
    """A TIFF folder (ImageXpress names) of a generated plate; returns the folder."""
    plate = _synthetic(n_columns)
    folder.mkdir(parents=True)
    for site in plate.iter_sites():
        for index, plane in enumerate(plate.read_site(site)):
            tifffile.imwrite(folder / f"P1_{site.well}_s{site.field + 1}_w{index + 1}.tif", plane)
    return folder


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_another_plate_is_refused_saying_what_differs_and_nothing_changes(tmp_path):
    project = tmp_path / "project"
    run_plate(_synthetic(), project, PARAMS, crop_size=16, features=False)
    before = _files(project)
    others = {
        "wells differ: project has A01, A02; plate has A01, A02, A03": _synthetic(n_columns=3),
        "image shape differs: project has 96 x 96; plate has 128 x 128": _synthetic(size=128),
        "channels differ: project has DNA, cytoplasm, marker; plate has DNA, cytoplasm, GFP":
            replace(_synthetic(), channels=["DNA", "cytoplasm", "GFP"]),
    }
    for difference, other in others.items():
        with pytest.raises(ProjectMismatchError) as refused:
            run_plate(other, project, PARAMS, crop_size=16, features=False)
        message = str(refused.value)
        assert message.startswith(f"Project {project} holds 2 segmented site(s) of another plate")
        assert difference in message
        assert "give a new project folder (--project), or delete" in message
    assert _files(project) == before  # project.json and the cells as they were


def test_changed_settings_are_refused_and_the_same_settings_resume(tmp_path):
    project = tmp_path / "project"
    plate = _synthetic(n_columns=3)
    run_plate(plate, project, PARAMS, crop_size=16, wells=["A01"], features=False)
    before = _files(project)
    with pytest.raises(ProjectMismatchError) as refused:
        run_plate(plate, project, replace(PARAMS, diameter=12.0), crop_size=24, features=False)
    message = str(refused.value)
    assert "diameter: project has None, run asks for 12.0" in message
    assert "crop_size: project has 16, run asks for 24" in message
    assert "Re-run with the project's settings to resume it" in message
    assert _files(project) == before
    again = run_plate(plate, project, PARAMS, crop_size=16, features=False)
    assert again["skipped_done"] == 1 and again["sites"] == 2
    meta = Project(project).read_meta()
    assert meta["crop_size"] == 16 and meta["segmentation"] == PARAMS.to_dict()
    assert meta["plate_identity"] == plate_identity(plate)


def test_a_project_without_cells_takes_another_plate_and_crop_size(tmp_path):
    project = tmp_path / "project"
    summary = run_plate(_synthetic(), project, PARAMS, crop_size=16, cancel=lambda: True)
    assert summary["sites"] == 0
    other = _synthetic(n_columns=3, size=128)
    summary = run_plate(other, project, PARAMS, crop_size=24, features=False)
    assert summary["sites"] == 3
    assert CellStore(project).crop_size == 24
    assert Project(project).read_meta()["plate_identity"] == plate_identity(other)


def test_the_plate_location_is_absolute_and_found_from_another_folder(tmp_path, monkeypatch):
    _tiff_plate(tmp_path / "data" / "plate")
    monkeypatch.chdir(tmp_path / "data")
    run_plate(open_plate("plate", pattern="imagexpress"), "plate.napari-hcs", TIFF_PARAMS, crop_size=16,
              features=False, pattern="imagexpress")
    meta = Project(tmp_path / "data" / "plate.napari-hcs").read_meta()
    assert meta["plate"] == str(tmp_path / "data" / "plate") and os.path.isabs(meta["plate"])
    (tmp_path / "elsewhere" / "plate").mkdir(parents=True)  # a folder of the same name, not the plate
    monkeypatch.chdir(tmp_path / "elsewhere")
    plate = Project(tmp_path / "data" / "plate.napari-hcs").open_plate()
    assert plate.source == str(tmp_path / "data" / "plate")
    summary = run_features(tmp_path / "data" / "plate.napari-hcs")
    assert summary["sites"] == 2 and not summary["failures"]


def test_a_moved_plate_is_named_and_can_be_pointed_at(tmp_path):
    old = _tiff_plate(tmp_path / "old" / "plate")
    project = tmp_path / "project"
    run_plate(open_plate(old, pattern="imagexpress"), project, TIFF_PARAMS, crop_size=16, features=False,
              pattern="imagexpress")
    new = tmp_path / "new" / "plate"
    new.parent.mkdir()
    shutil.move(old, new)
    with pytest.raises(PlateMovedError) as moved:
        run_features(project)
    message = str(moved.value)
    assert f"is not at {old} any more" in message and f"features --project {project} --plate PATH" in message
    assert isinstance(moved.value, FileNotFoundError)

    other = _tiff_plate(tmp_path / "other", n_columns=3)
    with pytest.raises(ProjectMismatchError, match="wells differ"):
        Project(project).open_plate(other)
    with pytest.raises(ProjectMismatchError, match="wells differ"):
        run_features(project, plate=open_plate(other, pattern="imagexpress"))

    summary = run_features(project, plate=Project(project).open_plate(new))
    assert summary["sites"] == 2 and not summary["failures"]
    assert Project(project).read_meta()["plate"] == str(new)
    assert Project(project).open_plate().source == str(new)


def test_segment_with_the_moved_plate_updates_its_location(tmp_path):
    old = _tiff_plate(tmp_path / "old" / "plate")
    project = tmp_path / "project"
    plate = open_plate(old, pattern="imagexpress")
    run_plate(plate, project, TIFF_PARAMS, crop_size=16, wells=["A01"], features=False, pattern="imagexpress")
    new = tmp_path / "plate-moved"
    shutil.move(old, new)
    summary = run_plate(open_plate(new, pattern="imagexpress"), project, TIFF_PARAMS, crop_size=16,
                        features=False, pattern="imagexpress")
    assert summary["skipped_done"] == 1 and summary["sites"] == 1
    assert any(f"plate location updated from {old} to {new}" in w for w in summary["warnings"])
    assert Project(project).read_meta()["plate"] == str(new)


def test_a_project_of_imported_crops_refuses_segment(tmp_path):
    import numpy as np

    from napari_hcs.project import import_crops

    crops, meta = tmp_path / "crops.npz", tmp_path / "meta.csv"
    np.savez(crops, crops=np.random.default_rng(0).random((4, 3, 16, 16), dtype=np.float32))
    meta.write_text("well\nA01\nA01\nA02\nA02\n")
    import_crops(crops, meta, tmp_path / "project", channels=["DNA", "cytoplasm", "marker"])
    with pytest.raises(ProjectMismatchError, match=f"holds crops imported from {crops}"):
        run_plate(_synthetic(), tmp_path / "project", PARAMS, crop_size=16, features=False)
