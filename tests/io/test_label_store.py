"""The label store of a project, and the one label-dtype rule."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_hcs.io import LabelStore, label_dtype, site_key, write_label_image
from napari_hcs.plate import Site


def test_labels_of_a_site_go_to_one_folder_and_come_back(tmp_path):
    store = LabelStore(tmp_path)
    site = Site("C07", 2, 1)
    nuclei = np.zeros((30, 40), np.int32)
    nuclei[3:9, 4:12] = 5
    cells = np.where(nuclei > 0, 5, 0).astype(np.int32)
    cells[10:12] = 5
    store.write(site, {"nuclei": nuclei, "cells": cells})
    folder = tmp_path / "labels" / site_key("C07", 2, 1)
    assert sorted(p.name for p in folder.iterdir()) == ["cells.tif", "nuclei.tif"]
    assert store.names(site) == ["cells", "nuclei"]
    back = store.read(site)
    assert set(back) == {"nuclei", "cells"} and back["nuclei"].dtype == np.int32
    np.testing.assert_array_equal(back["cells"], cells)
    assert store.read(site, ["nuclei", "spots"]).keys() == {"nuclei"}
    assert store.read(Site("A01")) == {}


def test_label_dtype_widens_past_65535_objects(tmp_path):
    many = np.arange(70_000, dtype=np.int64).reshape(350, 200)
    assert label_dtype(many) == np.uint32 and label_dtype(many % 1000) == np.uint16
    assert write_label_image(many, tmp_path / "many.tif") == 69_999
    with tifffile.TiffFile(tmp_path / "many.tif") as tif:
        assert tif.pages[0].dtype == np.uint32 and tif.pages[0].compression != 1
    LabelStore(tmp_path).write(Site("A01"), {"nuclei": many})
    np.testing.assert_array_equal(LabelStore(tmp_path).read(Site("A01"))["nuclei"], many)
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert not leftovers
