"""Import of crops cut elsewhere: store, features, resumption, errors, command line, real data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk

from napari_hcs.project.cell_store import CROP_INDEX, CellStore, feature_columns
from napari_hcs.cli import main
from napari_hcs.project.crop_import import import_crops
from napari_hcs.project.folder import Project


def _write_crops(folder, n=10, channels=2, size=32, wells=("A1", "B02")):
    rng = np.random.default_rng(0)
    crops = rng.integers(100, 200, size=(n, channels, size, size)).astype(np.uint16)
    for k in range(n):
        crops[k, 0][disk((size // 2, size // 2), 5 + k % 4)] += 1000
    meta = pd.DataFrame(
        {
            "plate": ["P1"] * n,
            "well": [wells[k % len(wells)] for k in range(n)],
            "site": [1] * n,
            "compound": ["DMSO" if k % 2 else "drug" for k in range(n)],
        }
    )
    crops_path, meta_path = folder / "crops.npz", folder / "crops.csv"
    np.savez(crops_path, crops=crops)
    meta.to_csv(meta_path, index=False)
    return crops, meta, crops_path, meta_path


def test_import_writes_cells_crops_and_features(tmp_path):
    crops, meta, crops_path, meta_path = _write_crops(tmp_path)
    seen = []
    store = import_crops(
        crops_path,
        meta_path,
        tmp_path / "project",
        channels=["DNA", "actin"],
        chunk_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert store.done_sites() == {"import_00000", "import_00001", "import_00002"}
    table = store.table()
    assert len(table) == 10 and list(table[CROP_INDEX]) == list(range(10))
    assert list(table.well) == ["A01", "B02"] * 5  # well names normalised
    assert list(table.compound) == list(meta.compound) and list(table.source_row) == list(range(10))
    features = feature_columns(table)
    assert "feat_nucleus_area" in features and "feat_crop_mean_actin" in features
    assert not table[features].isna().any().any()
    np.testing.assert_array_equal(store.crops[:], crops.astype(np.float32))
    assert store.channels == ["DNA", "actin"] and store.crop_size == 32
    meta_json = Project(tmp_path / "project").read_meta()
    assert meta_json["source"] == "import" and meta_json["crops"] == str(crops_path.resolve())
    assert meta_json["n_crops"] == 10


def test_import_resumes_after_cancel_without_duplicates(tmp_path):
    _, _, crops_path, meta_path = _write_crops(tmp_path, n=9)
    chunks_done = []

    def cancel_after_first_chunk():
        return len(chunks_done) >= 1

    with pytest.raises(InterruptedError, match="re-run to resume"):
        import_crops(
            crops_path,
            meta_path,
            tmp_path / "p",
            chunk_size=4,
            progress=lambda done, total: chunks_done.append(done),
            cancel=cancel_after_first_chunk,
        )
    assert len(CellStore(tmp_path / "p")) == 4
    store = import_crops(crops_path, meta_path, tmp_path / "p", chunk_size=4)
    table = store.table()
    assert list(table[CROP_INDEX]) == list(range(9)) and list(table.source_row) == list(range(9))
    assert not table[feature_columns(table)].isna().any().any()
    again = import_crops(crops_path, meta_path, tmp_path / "p", chunk_size=4)  # nothing left to do
    assert len(again) == 9
    with pytest.raises(ValueError, match="chunks of 4"):
        import_crops(crops_path, meta_path, tmp_path / "p", chunk_size=5)


def test_missing_features_are_measured_on_resume(tmp_path):
    _, _, crops_path, meta_path = _write_crops(tmp_path, n=6)
    store = import_crops(crops_path, meta_path, tmp_path / "p", chunk_size=3)
    (store.folder / "features" / "import_00001.parquet").unlink()
    table = import_crops(crops_path, meta_path, tmp_path / "p", chunk_size=3).table()
    assert not table[feature_columns(table)].isna().any().any()


def test_crop_size_centre_crops_or_pads(tmp_path):
    crops, _, crops_path, meta_path = _write_crops(tmp_path, n=3, size=32)
    small = import_crops(crops_path, meta_path, tmp_path / "small", crop_size=20)
    np.testing.assert_array_equal(small.crops[:], crops[:, :, 6:26, 6:26].astype(np.float32))
    large = import_crops(crops_path, meta_path, tmp_path / "large", crop_size=40)
    stored = large.crops[:]
    np.testing.assert_array_equal(stored[:, :, 4:36, 4:36], crops.astype(np.float32))
    assert stored[:, :, :4].sum() == 0


def test_mismatched_inputs_are_named(tmp_path):
    _, meta, crops_path, meta_path = _write_crops(tmp_path, n=5)
    short = tmp_path / "short.csv"
    meta.iloc[:3].to_csv(short, index=False)
    with pytest.raises(ValueError, match=r"short\.csv has 3 rows but .*crops\.npz holds 5 crops"):
        import_crops(crops_path, short, tmp_path / "p")
    with pytest.raises(ValueError, match="3 channel name.*2 channel"):
        import_crops(crops_path, meta_path, tmp_path / "p", channels=["a", "b", "c"])
    bad_key = tmp_path / "bad.npz"
    np.savez(bad_key, images=np.zeros((5, 1, 8, 8)))
    with pytest.raises(ValueError, match="no 'crops' array; it holds: images"):
        import_crops(bad_key, meta_path, tmp_path / "p")
    wells = meta.assign(well=["A01", "A02", "nowhere", "A04", "A05"])
    wells.to_csv(tmp_path / "wells.csv", index=False)
    with pytest.raises(ValueError, match="wells.csv, row 3"):
        import_crops(crops_path, tmp_path / "wells.csv", tmp_path / "p")
    not_square = tmp_path / "rect.npz"
    np.savez(not_square, crops=np.zeros((5, 1, 8, 10)))
    with pytest.raises(ValueError, match="not square"):
        import_crops(not_square, meta_path, tmp_path / "p")


def test_other_imports_are_refused(tmp_path):
    _, _, crops_path, meta_path = _write_crops(tmp_path, n=4)
    import_crops(crops_path, meta_path, tmp_path / "p")
    other = tmp_path / "other.npz"
    np.savez(other, crops=np.zeros((4, 2, 32, 32), np.uint16))
    with pytest.raises(ValueError, match="already holds 4 crops"):
        import_crops(other, meta_path, tmp_path / "p")


def test_command_line_prints_a_summary(tmp_path, capsys):
    _, _, crops_path, meta_path = _write_crops(tmp_path, n=5)
    code = main(
        ["import-crops", str(crops_path), str(meta_path), "--project", str(tmp_path / "p"), "--channels", "DNA,actin"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"] == 5 and summary["channels"] == ["DNA", "actin"]
    assert summary["crop_size"] == 32 and summary["features"] > 100
    code = main(["import-crops", str(crops_path), str(meta_path), "--project", str(tmp_path / "q"), "--channels", "x"])
    assert code == 1
    assert "1 channel name(s) given" in capsys.readouterr().err


def test_real_bbbc021_crops_import(shared_data, tmp_path):
    folder = shared_data / "bbbc021_crops"
    crops = np.load(folder / "bbbc021_crops.npz")["crops"]
    meta = pd.read_csv(folder / "bbbc021_crops.csv")
    subset = np.arange(0, len(crops), 12)  # every 12th crop: all plates, wells and doses
    np.savez(tmp_path / "subset.npz", crops=crops[subset])
    meta.iloc[subset].to_csv(tmp_path / "subset.csv", index=False)
    store = import_crops(
        tmp_path / "subset.npz", tmp_path / "subset.csv", tmp_path / "bbbc021", channels=["DNA", "tubulin", "actin"]
    )
    table = Project(tmp_path / "bbbc021").cell_table()
    assert len(table) == len(subset)
    assert set(table.well) == {"B02", "B03", "B04", "B05"} and set(table.moa) == {"DMSO", "Protein synthesis"}
    features = feature_columns(table)
    assert len(features) == 164 and not table[features].isna().any().any()
    assert (table.feat_nucleus_area > 100).mean() > 0.95
    np.testing.assert_array_equal(store.crops[:5], crops[subset[:5]].astype(np.float32))


def test_crops_with_nan_pixels_are_refused_by_name(tmp_path):
    _, meta, _, meta_path = _write_crops(tmp_path)
    crops = np.ones((10, 2, 32, 32), dtype=np.float32)
    crops[3, 1, 5, 5] = np.nan
    crops_path = tmp_path / "bad.npz"
    np.savez(crops_path, crops=crops)
    with pytest.raises(ValueError, match=r"bad\.npz: crops 0 to 9 hold 1 NaN"):
        import_crops(crops_path, meta_path, project_dir=tmp_path / "project")
