"""A missing or corrupt chunk, or corrupt metadata, fails naming the file (plate and crop stores)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from napari_hcs.chunks import CorruptChunkError, MissingChunkError
from napari_hcs.cli import main
from napari_hcs.io import open_plate, site_key, write_plate
from napari_hcs.nn.crop_reader import CropReader
from napari_hcs.plate import PlateError
from napari_hcs.project.cell_store import CellStore
from napari_hcs.samples import make_synthetic_plate, sample_path


@dataclasses.dataclass(frozen=True)
class BlackSites:
    """A loader giving every site as zeros (a picklable wrapper of another loader)."""

    loader: object

    def __call__(self, site):
        return self.loader(site) * 0


@pytest.fixture(scope="module")
def zarr_plate(tmp_path_factory):
    out = tmp_path_factory.mktemp("plate") / "plate.zarr"
    write_plate(open_plate(sample_path("scportrait_mini")), out)
    return out


@pytest.fixture
def damaged(zarr_plate, tmp_path):
    copy = tmp_path / "plate.zarr"
    shutil.copytree(zarr_plate, copy)
    return copy


def _chunk_files(plate_path, site):
    plate = open_plate(plate_path)
    image = plate.loader.sites.image_path(site)
    folder = plate_path / image / "0"
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs"))


def test_an_intact_plate_reads_as_before(zarr_plate):
    plate = open_plate(zarr_plate)
    site = plate.sites[plate.wells[0]][0]
    original = open_plate(sample_path("scportrait_mini"))
    np.testing.assert_array_equal(plate.loader(site).compute(), np.asarray(original.loader(site)))


def test_a_missing_plate_chunk_is_named_with_its_site(damaged):
    plate = open_plate(damaged)
    site = plate.sites[plate.wells[1]][1]
    files = _chunk_files(damaged, site)
    files[-1].unlink()  # the last timepoint's chunk; the array keeps the others
    site = next(s for s in plate.sites[site.well] if s.field == site.field and s.timepoint == max(
        t.timepoint for t in plate.sites[site.well]))
    with pytest.raises(MissingChunkError) as info:
        plate.loader(site).compute()
    message = str(info.value)
    assert str(damaged) in message and f"well {site.well}" in message and "missing" in message
    other = plate.sites[plate.wells[0]][0]
    assert plate.loader(other).compute().any()  # other sites still read


def test_a_corrupt_plate_chunk_is_named(damaged):
    plate = open_plate(damaged)
    site = plate.sites[plate.wells[0]][0]
    for chunk in _chunk_files(damaged, site):
        chunk.write_bytes(b"\x28\xb5\x2f\xfd garbage that is no zstd frame")
    with pytest.raises(CorruptChunkError) as info:
        plate.loader(site).compute()
    assert "Cannot decode" in str(info.value) and str(damaged) in str(info.value)


@pytest.mark.parametrize("where", ["root", "well"])
def test_corrupt_metadata_is_named(damaged, where):
    plate = open_plate(damaged)
    well_path = plate.loader.sites.well_paths[plate.wells[0]]
    folder = damaged if where == "root" else damaged / well_path
    meta = next(folder / n for n in ("zarr.json", ".zattrs") if (folder / n).exists())
    meta.write_bytes(b"{\"attributes\": broken")
    with pytest.raises(PlateError) as info:
        open_plate(damaged)
    assert str(meta) in str(info.value)


def test_the_cli_prints_corrupt_metadata_in_one_line(damaged, capsys):
    meta = next(damaged / n for n in ("zarr.json", ".zattrs") if (damaged / n).exists())
    meta.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["info", str(damaged)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(meta) in err and "Traceback" not in err


def _crop_store(tmp_path, n=5):
    store = CellStore.create(tmp_path / "project", channels=["a"], crop_size=4, cells_per_chunk=2)
    rows = pd.DataFrame({"well": ["B02"] * n, "label": range(1, n + 1)})
    store.append_site(site_key("B02", 0, 0), rows, np.zeros((n, 1, 4, 4), np.float32))
    return store


def test_zero_crops_are_stored_and_read(tmp_path):
    store = _crop_store(tmp_path)
    assert len(list((store.folder / "crops.zarr" / "c").rglob("*"))) > 0
    assert CropReader(store.crops).read([0, 4]).shape == (2, 1, 4, 4)


def test_a_missing_crop_chunk_is_named_with_its_range(tmp_path):
    store = _crop_store(tmp_path)
    (store.folder / "crops.zarr" / "c" / "1" / "0" / "0" / "0").unlink()
    reader = CropReader(store.crops)
    assert reader.read([0, 1, 4]).shape == (3, 1, 4, 4)
    with pytest.raises(MissingChunkError) as info:
        reader.read([3])
    message = str(info.value)
    assert "crops.zarr/c/1/0/0/0" in message and "crops 2..3" in message


def test_a_corrupt_crop_chunk_is_named(tmp_path):
    store = _crop_store(tmp_path)
    (store.folder / "crops.zarr" / "c" / "0" / "0" / "0" / "0").write_bytes(b"not a chunk")
    with pytest.raises(CorruptChunkError, match=r"crops\.zarr/c/0/0/0/0"):
        CropReader(store.crops).read([0])


def test_a_black_site_written_by_napari_hcs_is_not_taken_for_a_missing_one(tmp_path):
    from napari_hcs.io import open_plate, write_plate

    plate = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=1, shape=(64, 64), n_cells=3)
    black = dataclasses.replace(plate, loader=BlackSites(plate.loader), sites=dict(plate.sites))
    write_plate(black, tmp_path / "black.zarr")
    reopened = open_plate(tmp_path / "black.zarr")
    assert not reopened.read_site(reopened.site("A01")).any()


def test_chunks_another_writer_left_out_read_as_fill_value(tmp_path):
    import zarr

    from napari_hcs.chunks import read_checked

    array = zarr.create_array(tmp_path / "a.zarr", shape=(4, 4), chunks=(2, 2), dtype="u2", fill_value=0)
    array[:2, :2] = 1  # zarr leaves the other, all-zero chunks out
    assert read_checked(array, (slice(None), slice(None)), what="test", require_stored=False).sum() == 4
