"""Outputs never replace inputs, folders appear whole, data names stay inside: io.outputs and write_plate."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from napari_hcs.cancel import Cancelled
from napari_hcs.io import open_plate, write_plate
from napari_hcs.io import ome_zarr_writer
from napari_hcs.io.ome_zarr_writer import is_napari_hcs_plate
from napari_hcs.io.outputs import (
    OutputRefused,
    atomic_folder,
    check_new_file,
    check_outputs,
    check_replaceable,
    file_inside,
    root_attributes,
    safe_name,
)
from napari_hcs.samples import sample_path
from plates import make_plate


@pytest.fixture
def tiff_folder(tmp_path):
    """A copy of the bundled scPortrait sample (2 wells x 3 timepoints), safe to damage."""
    folder = tmp_path / "tiffs"
    shutil.copytree(sample_path("scportrait_mini"), folder)
    return folder


@pytest.fixture
def sample(tiff_folder):
    return open_plate(tiff_folder, pattern="scportrait")


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden_leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- check_outputs -------------------------------------------------------------


def test_outputs_that_are_inputs_are_refused_however_named(tmp_path, monkeypatch):
    image = tmp_path / "image.tif"
    image.write_bytes(b"pixels")
    (tmp_path / "link.tif").symlink_to(image)
    os.link(image, tmp_path / "hard.tif")
    monkeypatch.chdir(tmp_path)
    for same in ("image.tif", "./image.tif", tmp_path / "sub" / ".." / "image.tif", "link.tif", "hard.tif"):
        with pytest.raises(OutputRefused, match="is the input"):
            check_outputs([same], [image])
    check_outputs([tmp_path / "labels.tif", None], [image, None])


def test_outputs_inside_or_holding_inputs_and_repeated_outputs_are_refused(tmp_path):
    plate = tmp_path / "plate"
    plate.mkdir()
    with pytest.raises(OutputRefused, match=r"lies inside the input .*plate"):
        check_outputs([plate / "converted.zarr"], [plate])
    with pytest.raises(OutputRefused, match="would delete the input"):
        check_outputs([tmp_path], [plate])
    with pytest.raises(OutputRefused, match="are the same file"):
        check_outputs([tmp_path / "a.tif", tmp_path / "." / "a.tif"], [])
    error = pytest.raises(OutputRefused, check_outputs, [plate], [plate]).value
    assert isinstance(error, FileExistsError) and isinstance(error, ValueError)


# -- existing outputs ----------------------------------------------------------


def test_existing_files_and_folders_are_kept_unless_asked(tmp_path):
    model = tmp_path / "model.pt"
    check_new_file(model, overwrite=False)
    model.write_bytes(b"weights")
    with pytest.raises(OutputRefused, match=r"model.pt exists; pass --overwrite"):
        check_new_file(model, overwrite=False)
    check_new_file(model, overwrite=True)
    with pytest.raises(OutputRefused, match="is a folder"):
        check_new_file(tmp_path, overwrite=True)

    folder = tmp_path / "results"
    folder.mkdir()
    check_replaceable(folder, overwrite=False)  # empty: nothing to lose
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(OutputRefused, match="Pass --overwrite"):
        check_replaceable(folder, overwrite=False)
    check_replaceable(folder, overwrite=False, ours=lambda path: True)
    check_replaceable(folder, overwrite=True)


# -- atomic folders ------------------------------------------------------------


def test_atomic_folder_replaces_only_when_complete(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    for error in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with atomic_folder(target) as tmp:
                tmp.mkdir()
                (tmp / "half").write_text("half")
                raise error
        assert _files(target) == {"old": b"old"} and _hidden_leftovers(tmp_path) == []
    with atomic_folder(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert _files(target) == {"new": b"new"} and _hidden_leftovers(tmp_path) == []


def test_atomic_folder_puts_the_old_folder_back_when_the_move_fails(tmp_path, monkeypatch):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    real_replace = os.replace

    def failing_replace(source, destination):
        if str(source).endswith(".tmp"):
            raise OSError("simulated failure of the final move")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        with atomic_folder(target) as tmp:
            tmp.mkdir()
    monkeypatch.undo()
    assert _files(target) == {"old": b"old"} and _hidden_leftovers(tmp_path) == []


# -- names from data -----------------------------------------------------------


@pytest.mark.parametrize("name", ["x/../../y", "../../../../escaped", "..", "/etc/passwd", "a\\..\\b", "C:x",
                                  "wells\x00nul", " ", "é✓", "." * 300])
def test_names_from_data_stay_inside_the_folder(tmp_path, name):
    safe = safe_name(name)
    assert safe and not safe.startswith(".") and len(safe) <= 120
    assert set(safe) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    path = file_inside(tmp_path, safe + ".pt")
    assert path.parent == tmp_path


def test_file_inside_refuses_links_and_separators_that_leave(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "away").symlink_to(tmp_path.parent)
    for name in ("../y.pt", "away/y.pt", "/tmp/y.pt"):
        with pytest.raises(OutputRefused, match="leaves the folder"):
            file_inside(tmp_path / "models", name)


# -- write_plate ---------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_plates_written_here_are_marked_and_recognised(tmp_path, sample, version):
    store = write_plate(sample, tmp_path / "plate.zarr", version=version)
    assert root_attributes(store)["napari_hcs"]["writer"] == "napari-hcs"
    assert is_napari_hcs_plate(store)
    assert not is_napari_hcs_plate(tmp_path) and not is_napari_hcs_plate(tmp_path / "missing")
    assert _hidden_leftovers(tmp_path) == []


def test_write_plate_keeps_a_folder_of_other_files(tmp_path, sample):
    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep")
    (folder / "sub" / "data.csv").write_text("1,2")
    before = _files(folder)
    with pytest.raises(OutputRefused, match="not an OME-Zarr plate written by napari-hcs"):
        write_plate(sample, folder)
    assert _files(folder) == before and _hidden_leftovers(tmp_path) == []
    write_plate(sample, folder, overwrite=True)
    assert is_napari_hcs_plate(folder) and not (folder / "notes.txt").exists()


def test_write_plate_replaces_an_earlier_plate_of_its_own(tmp_path, sample):
    store = write_plate(sample, tmp_path / "plate.zarr")
    attrs = root_attributes(store)
    del attrs["napari_hcs"]["writer"]  # as written by an earlier version
    (store / ".zattrs").write_text(json.dumps(attrs))
    assert is_napari_hcs_plate(store)
    write_plate(make_plate(wells=("C05",)), store)
    assert open_plate(store).wells == ["C05"] and _hidden_leftovers(tmp_path) == []


def test_write_plate_refuses_its_own_source_and_places_inside_it(tmp_path, sample, tiff_folder):
    sources = _files(tiff_folder)
    store = write_plate(sample, tmp_path / "plate.zarr")
    before = _files(store)
    with pytest.raises(OutputRefused, match="is the input"):
        write_plate(open_plate(store), store)
    assert _files(store) == before
    with pytest.raises(OutputRefused, match="lies inside the input"):
        write_plate(sample, tiff_folder / "converted.zarr")
    assert not (tiff_folder / "converted.zarr").exists()
    with pytest.raises(OutputRefused, match="would delete the input"):
        write_plate(sample, tmp_path, overwrite=True)
    assert _files(tiff_folder) == sources


def test_write_plate_of_channel_files_may_write_beside_them(tmp_path, tiff_folder):
    files = sorted(tiff_folder.glob("Timepoint001_Row02_Well02_*.tif"))
    plate = open_plate([str(f) for f in files])
    store = write_plate(plate, tiff_folder / "one_site.zarr")
    assert open_plate(store).channels == plate.channels
    with pytest.raises(OutputRefused, match="is the input"):
        write_plate(plate, files[0], overwrite=True)


def test_cancelled_or_failed_write_leaves_the_earlier_plate(tmp_path, sample, monkeypatch):
    store = write_plate(sample, tmp_path / "plate.zarr")
    before = _files(store)
    calls = iter(range(100))
    with pytest.raises(Cancelled, match="left as it was"):
        write_plate(sample, store, cancel=lambda: next(calls) >= 3)
    assert _files(store) == before and _hidden_leftovers(tmp_path) == []

    real_write_site = ome_zarr_writer.write_site
    written = []

    def failing_write_site(root, site, data):
        if len(written) == 2:
            raise OSError("No space left on device")
        written.append(site)
        real_write_site(root, site, data)

    monkeypatch.setattr(ome_zarr_writer, "write_site", failing_write_site)
    with pytest.raises(OSError, match="No space"):
        write_plate(sample, store, overwrite=True)
    assert _files(store) == before and _hidden_leftovers(tmp_path) == []
    kept = open_plate(store)
    np.testing.assert_array_equal(kept.read_site(next(kept.iter_sites())),
                                  sample.read_site(next(sample.iter_sites())))


def test_cancelled_first_write_leaves_nothing(tmp_path, sample):
    with pytest.raises(Cancelled):
        write_plate(sample, tmp_path / "new.zarr", cancel=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiffs"]
