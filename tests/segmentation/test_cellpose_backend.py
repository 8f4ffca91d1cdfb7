"""The cellpose backend against a stand-in ``cellpose`` module (cellpose is optional)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from napari_hcs.segmentation import SegmentationParams, expand_nuclei, segment_site
from napari_hcs.segmentation.cellpose_backend import _load_model

from segmentation_images import discs


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    _load_model.cache_clear()
    yield
    _load_model.cache_clear()


@pytest.fixture
def fake_cellpose(monkeypatch):
    """A ``cellpose`` module whose model returns known nuclei and cells; records its calls."""
    nuclei_image, truth = discs((120, 200), [(60, 50), (60, 150)], 10)
    record = types.SimpleNamespace(built=[], evals=[], image=nuclei_image)

    class FakeModel:
        def __init__(self, gpu=False, pretrained_model="cpsam", device=None, **options):
            record.built.append(
                {"gpu": gpu, "device": device, "pretrained_model": pretrained_model, **options}
            )

        def eval(self, x, **options):
            record.evals.append({"shape": x.shape, **options})
            if x.shape[options["channel_axis"]] == 1:
                return truth, [], []
            cells = expand_nuclei(truth, 20)
            return np.where(cells > 0, 10 - cells, 0), [], []  # other ids than the nuclei

    fake = types.ModuleType("cellpose")
    fake.models = types.ModuleType("cellpose.models")
    fake.models.CellposeModel = FakeModel
    monkeypatch.setitem(sys.modules, "cellpose", fake)
    monkeypatch.setitem(sys.modules, "cellpose.models", fake.models)
    return record


def test_cellpose_backend_needs_cellpose(monkeypatch):
    monkeypatch.setitem(sys.modules, "cellpose", None)
    params = SegmentationParams(nuclei_channel="DNA", backend="cellpose", cellpose_model="w.pt")
    with pytest.raises(RuntimeError, match="cellpose is not installed; pip install cellpose"):
        segment_site(np.zeros((1, 32, 32)), params, ["DNA"])


def test_cellpose_backend_uses_local_model(fake_cellpose):
    image = np.stack([fake_cellpose.image, fake_cellpose.image])
    params = SegmentationParams(
        nuclei_channel="DNA", cell_channel="actin", backend="cellpose", cellpose_model="w.pt"
    )
    nuclei, cells = segment_site(image, params, ["DNA", "actin"])
    assert [b["pretrained_model"] for b in fake_cellpose.built] == ["w.pt"]
    assert nuclei.max() == 2
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    assert set(np.unique(cells)) == {0, 1, 2}
    with pytest.raises(ValueError, match="model weights"):
        segment_site(image, SegmentationParams(nuclei_channel="DNA", backend="cellpose"), ["DNA", "actin"])


def test_cellpose_model_built_once_with_current_api(fake_cellpose):
    from napari_hcs.nn.device import resolve_device

    image = np.stack([fake_cellpose.image, fake_cellpose.image])
    with_cells = SegmentationParams(
        nuclei_channel="DNA", cell_channel="actin", backend="cellpose", cellpose_model="w.pt", diameter=20
    )
    grown = SegmentationParams(nuclei_channel="DNA", backend="cellpose", cellpose_model="w.pt")
    for params in (with_cells, with_cells, grown, with_cells):
        segment_site(image, params, ["DNA", "actin"])
    assert len(fake_cellpose.built) == 1
    built = fake_cellpose.built[0]
    assert built["device"] == resolve_device("auto")
    assert built["gpu"] == (built["device"].type != "cpu")
    assert len(fake_cellpose.evals) == 7
    for call in fake_cellpose.evals:
        assert "channels" not in call
        assert call["channel_axis"] == -1
        assert call["shape"][:2] == image.shape[1:]
    assert [call["shape"][-1] for call in fake_cellpose.evals[:2]] == [1, 2]
    assert fake_cellpose.evals[0]["diameter"] == 20
    segment_site(image, SegmentationParams(nuclei_channel="DNA", backend="cellpose", cellpose_model="v.pt"),
                 ["DNA", "actin"])
    assert [b["pretrained_model"] for b in fake_cellpose.built] == ["w.pt", "v.pt"]


def test_cellpose_cells_without_nucleus_are_dropped(fake_cellpose):
    from napari_hcs.segmentation.cellpose_backend import _cells_with_nucleus_ids

    nuclei = np.array([[1, 1, 0, 0, 2, 0]])
    cells = np.array([[4, 4, 4, 6, 6, 0]])
    cells[0, 5] = 9  # a cell without a nucleus
    assert _cells_with_nucleus_ids(cells, nuclei).tolist() == [[1, 1, 1, 2, 2, 0]]
    params = SegmentationParams(
        nuclei_channel="DNA", backend="cellpose", cellpose_model="w.pt", exclude_border=True
    )
    image = np.stack([fake_cellpose.image])
    nuclei, cells = segment_site(image, params, ["DNA"])
    assert nuclei.max() == 2 and np.all(np.bincount(cells.ravel())[1:] > np.bincount(nuclei.ravel())[1:])
