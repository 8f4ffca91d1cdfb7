"""The OME-Zarr writer (metadata through ome-zarr-py) and reader, on a generated plate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from napari_hcs.io import open_plate, write_plate, write_site_labels
from napari_hcs.samples import make_synthetic_plate


@pytest.fixture(scope="module")
def source():
    plate = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=2, shape=(520, 600), n_cells=4)
    plate.annotate("A02", compound="taxol", dose=2.5)
    return plate


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_round_trip_keeps_pixels_pyramids_labels_and_annotations(source, tmp_path, version):
    store = write_plate(source, tmp_path / "plate.zarr", version=version, chunk_size=128)
    site = source.site("A02", 1)
    labels = np.zeros(source.shape, np.uint16)
    labels[50:90, 40:80] = 9
    write_site_labels(store, site, "nuclei", labels)
    write_site_labels(store, site, "nuclei", labels)  # written again: listed once
    back = open_plate(store)
    assert back.summary() | {"source": None} == source.summary() | {"source": None}
    for each in source.iter_sites():
        np.testing.assert_array_equal(back.read_site(each), source.read_site(each))
    assert [level.shape[-2:] for level in back.site_pyramid(site)] == [(520, 600), (260, 300)]
    np.testing.assert_array_equal(np.asarray(back.site_labels(site)["nuclei"]), labels)
    image = zarr.open_group(str(store / "A" / "2" / "1"), mode="r")
    attrs = image.attrs.asdict()
    meta = attrs["ome"] if version == "0.5" else attrs
    assert image.metadata.zarr_format == (3 if version == "0.5" else 2)
    assert [c["label"] for c in meta["omero"]["channels"]] == source.channels
    assert meta["multiscales"][0]["axes"][-1] == {"name": "x", "type": "space", "unit": "micrometer"}
    labels_meta = zarr.open_group(str(store / "A" / "2" / "1" / "labels"), mode="r").attrs.asdict()
    assert (labels_meta.get("ome") or labels_meta)["labels"] == ["nuclei"]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_reads_what_was_written(source, tmp_path, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    store = write_plate(source, tmp_path / "plate.zarr", version=version)
    write_site_labels(store, source.site("A01"), "cells", np.ones(source.shape, np.uint16))
    nodes = list(Reader(parse_url(str(store)))())
    assert nodes[0].specs[0].__class__.__name__ == "Plate"
    image_nodes = list(Reader(parse_url(str(store / "A" / "1" / "0")))())
    assert any(node.specs[0].__class__.__name__ == "Multiscales" for node in image_nodes)
    assert any("Label" in type(spec).__name__ for node in image_nodes for spec in node.specs)


def test_a_plate_version_that_does_not_exist_is_refused(source, tmp_path):
    with pytest.raises(ValueError, match="'0.4', '0.5'"):
        write_plate(source, tmp_path / "plate.zarr", version="0.6")


def test_annotations_are_kept_under_the_napari_hcs_attribute(source, tmp_path):
    store = write_plate(source, tmp_path / "plate.zarr", version="0.5")
    root = json.loads((store / "zarr.json").read_text())
    assert root["attributes"]["ome"]["version"] == "0.5"
    assert root["attributes"]["napari_hcs"]["annotations"]["A02"] == {"class": "enlarged", "compound": "taxol",
                                                                      "dose": 2.5}
