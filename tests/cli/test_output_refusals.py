"""No command writes over its input, loses unrelated files, or lets a data name leave the project."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_hcs.cli import main
from napari_hcs.io import ome_zarr_writer, open_plate
from napari_hcs.io.ome_zarr_writer import is_napari_hcs_plate
from napari_hcs.nn.checkpoint import read_checkpoint
from napari_hcs.project import CellStore
from napari_hcs.samples import sample_path


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tiffs(tmp_path):
    """A copy of the bundled scPortrait sample (2 wells x 3 timepoints), safe to damage."""
    folder = tmp_path / "tiffs"
    shutil.copytree(sample_path("scportrait_mini"), folder)
    return folder


def _convert(*arguments) -> int:
    return main(["convert", *map(str, arguments), "--pattern", "scportrait"])


# -- convert -------------------------------------------------------------------


def test_convert_keeps_a_folder_of_unrelated_files(tmp_path, tiffs, capsys):
    out = tmp_path / "results"
    (out / "figures").mkdir(parents=True)
    (out / "notes.txt").write_text("keep")
    (out / "figures" / "plot.png").write_bytes(b"png")
    before = _files(out)
    assert _convert(tiffs, out) == 1
    error = capsys.readouterr().err
    assert "napari-hcs convert: error:" in error and str(out) in error and "--overwrite" in error
    assert _files(out) == before
    assert _convert(tiffs, out, "--overwrite") == 0
    assert is_napari_hcs_plate(out) and open_plate(out).n_sites() == 6


def test_convert_onto_its_input_is_refused_and_the_input_kept(tmp_path, tiffs, capsys):
    sources = _files(tiffs)
    assert _convert(tiffs, tiffs, "--overwrite") == 1
    assert "is the input" in capsys.readouterr().err and _files(tiffs) == sources

    store = tmp_path / "plate.zarr"
    assert _convert(tiffs, store) == 0
    written = _files(store)
    for extra in ([], ["--overwrite"]):
        assert main(["convert", str(store), str(store), *extra]) == 1
        assert "is the input" in capsys.readouterr().err
        assert _files(store) == written


def test_convert_into_or_over_its_input_is_refused(tmp_path, tiffs, capsys):
    sources = _files(tiffs)
    assert _convert(tiffs, tiffs / "plate.zarr") == 1
    assert "lies inside the input" in capsys.readouterr().err
    assert _convert(tiffs, tmp_path, "--overwrite") == 1
    assert "would delete the input" in capsys.readouterr().err
    layout = tmp_path / "layout.csv"
    layout.write_text("well,class\nB02,a\nB04,b\n")
    assert _convert(tiffs, layout, "--layout", layout, "--overwrite") == 1
    assert "is the input" in capsys.readouterr().err
    assert _files(tiffs) == sources and layout.read_text().startswith("well,class")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout.csv", "tiffs"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_convert_replaces_an_earlier_napari_hcs_plate(tmp_path, tiffs, overwrite):
    store = tmp_path / "plate.zarr"
    assert _convert(tiffs, store, "--ngff-version", "0.5") == 0
    assert (store / "zarr.json").exists()
    assert _convert(tiffs, store, *overwrite) == 0
    assert (store / ".zattrs").exists() and not (store / "zarr.json").exists()
    assert open_plate(store).n_sites() == 6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_convert_leaves_the_output_as_it_was(tmp_path, tiffs, monkeypatch, capsys):
    store = tmp_path / "plate.zarr"
    assert _convert(tiffs, store) == 0
    before = _files(store)
    real_write_site = ome_zarr_writer.write_site
    written = []

    def interrupted(root, site, data):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(site)
        real_write_site(root, site, data)

    monkeypatch.setattr(ome_zarr_writer, "write_site", interrupted)
    assert _convert(tiffs, store, "--ngff-version", "0.5") == 130
    assert f"{store} is left as it was" in capsys.readouterr().err
    assert _files(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate.zarr", "tiffs"]

    written.clear()
    assert _convert(tiffs, tmp_path / "new.zarr") == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plate.zarr", "tiffs"]


# -- segment-image -------------------------------------------------------------


@pytest.fixture
def image(tmp_path):
    planes = np.zeros((2, 64, 64), dtype=np.uint16)
    planes[0, 10:22, 10:22] = 1000
    planes[0, 40:52, 36:50] = 1000
    planes[1, 6:26, 6:26] = 500
    planes[1, 36:56, 32:54] = 500
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, planes, metadata={"axes": "CYX"})
    return path


def test_segment_image_never_writes_over_its_image(tmp_path, image, capsys, monkeypatch):
    original = image.read_bytes()
    (tmp_path / "alias.tif").symlink_to(image)
    monkeypatch.chdir(tmp_path)
    cases = [
        ["--out", str(image)],
        ["--out", "./image.tif"],
        ["--out", "alias.tif"],
        ["--out", "labels.tif", "--cells-channel", "1", "--cells-out", str(image)],
        ["--out", "image.tif", "--cells-channel", "1"],
    ]
    for options in cases:
        assert main(["segment-image", str(image), *options]) == 1, options
        assert "is the input" in capsys.readouterr().err
        assert image.read_bytes() == original
    assert main(["segment-image", str(image), "--out", "a.tif", "--cells-channel", "1", "--cells-out", "a.tif"]) == 1
    assert "are the same file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.tif", "image.tif"]

    assert main(["segment-image", str(image), "--out", "labels.tif", "--cells-channel", "1"]) == 0
    assert tifffile.imread(tmp_path / "labels.tif").max() == 2
    assert (tmp_path / "labels_cells.tif").exists() and image.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_segment_image_checks_the_cells_channel_before_writing(tmp_path, image, capsys):
    out = tmp_path / "labels.tif"
    assert main(["segment-image", str(image), "--out", str(out), "--cells-channel", "5"]) == 1
    assert "--cells-channel 5 is out of range" in capsys.readouterr().err and not out.exists()


# -- train and compare ---------------------------------------------------------


def _project(folder, label_column: str = "cls", n: int = 48):
    """A project cell store: two separable classes over six wells."""
    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    crops = rng.normal(100.0, 10.0, (n, 3, 16, 16)).astype(np.float32)
    crops[labels == "b", 0, 4:-4, 4:-4] += 60.0
    wells = [f"{'A' if c == 'a' else 'B'}{i // 2 % 3 + 1:02d}" for i, c in enumerate(labels)]
    table = pd.DataFrame({"plate": "P1", "well": wells, "site": 1, label_column: labels})
    store = CellStore.create(folder, channels=["DNA", "tubulin", "actin"], crop_size=16, cells_per_chunk=16)
    for well, part in table.groupby("well", sort=True):
        store.append_site(f"{well}_f001_t000", part, crops[part.index.to_numpy()])
    cells = store.cells()
    is_b = (cells[label_column] == "b").to_numpy()
    store.write_features("all", pd.DataFrame({
        "crop_index": cells.crop_index, "feat_centre": is_b * 2.0 + rng.normal(0, 0.5, n),
    }))
    return folder


TRAIN = ["--model", "cnn2", "--depth", "1", "--width", "1", "--epochs", "1", "--batch-size", "16",
         "--device", "cpu"]


def test_train_does_not_overwrite_a_model_without_overwrite(tmp_path, capsys):
    project = _project(tmp_path / "proj")
    model = tmp_path / "model.pt"
    model.write_bytes(b"an earlier model")
    command = ["train", "--project", str(project), "--label-column", "cls", "--out", str(model), *TRAIN]
    assert main(command) == 1
    error = capsys.readouterr().err
    assert f"Model file {model} exists" in error and "--overwrite" in error
    assert model.read_bytes() == b"an earlier model" and not (tmp_path / "model_confusion.json").exists()
    assert main([*command, "--overwrite"]) == 0
    assert read_checkpoint(model)[1]["label_column"] == "cls"

    default = ["train", "--project", str(project), "--label-column", "cls", *TRAIN]
    assert main(default) == 0
    assert main(default) == 1 and "cnn2_cls.pt exists" in capsys.readouterr().err
    for over_the_store in ("cells.json", "crops.zarr/x.pt", "cells"):
        assert main([*default, "--out", str(project / over_the_store), "--overwrite"]) == 1
    assert CellStore(project).crops.shape == (48, 3, 16, 16)


@pytest.mark.filterwarnings("ignore:Class.*single training well:UserWarning")
@pytest.mark.parametrize("label_column", ["x/../../y", "../../../../escaped"])
def test_label_column_names_never_leave_the_project(tmp_path, capsys, label_column):
    project = _project(tmp_path / "a" / "b" / "proj", label_column)
    outside = {p for p in tmp_path.rglob("*") if project not in p.parents and p != project}
    assert main(["train", "--project", str(project), "--label-column", label_column, *TRAIN]) == 0
    assert main(["compare", "--project", str(project), "--label-column", label_column, "--json", *TRAIN]) == 0
    assert {p for p in tmp_path.rglob("*") if project not in p.parents and p != project} == outside
    models = sorted(p.name for p in (project / "models").iterdir())
    assert all("/" not in name and not name.startswith(".") for name in models)
    assert [p for p in (project / "models").iterdir() if p.is_dir()] == []
    assert any(name.startswith("cnn2_") and name.endswith(".pt") for name in models)
    assert any(name.startswith("compare_cnn2_") and name.endswith(".pt") for name in models)
