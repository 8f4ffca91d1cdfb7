"""Every reader's plate pickles small, round-trips, and reads the same pixels."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile

from napari_hcs.io import open_plate, write_plate, write_site_labels
from napari_hcs.samples import make_synthetic_plate, sample_path


def _tiff_folder(tmp_path):
    folder = tmp_path / "tiffs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for well in ("A01", "B03"):
        for field in (1, 2):
            for channel in (1, 2):
                tifffile.imwrite(folder / f"P_{well}_s{field}_w{channel}.tif",
                                 rng.integers(0, 4000, (24, 32), dtype=np.uint16))
    return open_plate(folder)


def _multichannel_tiff(tmp_path):
    path = tmp_path / "movie.tif"
    data = np.random.default_rng(1).integers(0, 255, (3, 2, 20, 30), dtype=np.uint8)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    return open_plate(path)


def _channel_files(tmp_path):
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"channel{index}.tif")
        tifffile.imwrite(paths[-1], np.full((16, 20), index * 10, np.uint16))
    return open_plate(paths)


def _ome_zarr(version):
    def make(tmp_path):
        source = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=1, shape=(300, 300), n_cells=4)
        store = write_plate(source, tmp_path / "plate.zarr", version=version, chunk_size=128)
        labels = np.zeros((300, 300), np.uint16)
        labels[5:40, 5:40] = 2
        write_site_labels(store, source.site("A02"), "nuclei", labels)
        return open_plate(store)

    return make


READERS = {
    "tiff folder": _tiff_folder,
    "multichannel tiff": _multichannel_tiff,
    "channel files": _channel_files,
    "ome-zarr 0.4": _ome_zarr("0.4"),
    "ome-zarr 0.5": _ome_zarr("0.5"),
    "bundled ome-tiff": lambda tmp_path: open_plate(sample_path("ht29")),
    "bundled tiff folder": lambda tmp_path: open_plate(sample_path("scportrait_mini")),
    "synthetic": lambda tmp_path: make_synthetic_plate(n_rows=1, n_columns=2, n_sites=2, shape=(48, 48),
                                                       n_cells=3),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_plate_pickles_small_and_reads_the_same_pixels(reader, tmp_path):
    plate = READERS[reader](tmp_path)
    site = list(plate.iter_sites())[-1]
    expected = plate.read_site(site)  # reading first must not make the pickle heavier
    data = pickle.dumps(plate)
    assert len(data) < 20_000, f"{reader}: {len(data)} bytes"
    copy = pickle.loads(data)
    assert copy.summary() == plate.summary()
    for other in (site, next(plate.iter_sites())):
        np.testing.assert_array_equal(copy.read_site(other), plate.read_site(other))
    np.testing.assert_array_equal(copy.read_site(site), expected)
    assert [level.shape for level in copy.site_pyramid(site)] == [level.shape for level in plate.site_pyramid(site)]
    labels, copied = plate.site_labels(site), copy.site_labels(site)
    assert set(copied) == set(labels)
    for name in labels:
        np.testing.assert_array_equal(np.asarray(copied[name]), np.asarray(labels[name]))


def test_ome_zarr_plate_carries_its_labels_through_a_pickle(tmp_path):
    plate = pickle.loads(pickle.dumps(_ome_zarr("0.5")(tmp_path)))
    assert int(np.asarray(plate.site_labels(plate.site("A02"))["nuclei"]).max()) == 2
    assert plate.site_labels(plate.site("A01")) == {}
