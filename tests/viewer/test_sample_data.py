"""The sample-data contributions return real, drawable layers."""

import numpy as np

from napari_hcs.viewer import samples as _sample_data


def test_ht29_sample_is_three_named_channels():
    layers = _sample_data.ht29_sample()
    assert [kwargs["name"] for _, kwargs, _ in layers] == ["DNA", "PH3", "actin"]
    assert all(np.asarray(data).shape == (512, 512) for data, _, _ in layers)


def test_scportrait_sample_carries_its_plate_and_layout():
    layers = _sample_data.scportrait_plate_sample()
    names = [kwargs["name"] for _, kwargs, _ in layers]
    assert names == ["Alexa488", "DAPI", "mCherry"]
    plate = layers[0][1]["metadata"]["napari_hcs_plate"]
    assert plate.wells == ["B02", "B04"] and plate.n_sites() == 6
    assert plate.well_annotations("B04")["Treatment"] == "Stimulated"


def test_synthetic_sample_has_four_classes():
    layers = _sample_data.synthetic_plate_sample()
    plate = layers[0][1]["metadata"]["napari_hcs_plate"]
    assert sorted(set(plate.annotations["class"])) == ["control", "elongated", "enlarged", "spotty"]
    assert np.asarray(layers[0][0]).max() > 0
