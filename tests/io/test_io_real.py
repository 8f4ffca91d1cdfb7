"""Readers on the real data sets, and the OME-Zarr round trip."""

import json

import numpy as np
import pytest

from napari_hcs.cli import main
from napari_hcs.io import open_plate, write_plate, write_site_labels
from napari_hcs.samples import sample_layout, sample_path


@pytest.fixture(scope="module")
def scportrait(shared_data):
    root = shared_data / "scportrait_timecourse"
    return open_plate(root, pattern="scportrait", layout=root / "plate_layout.tsv")


def test_scportrait_opens_as_two_wells_three_timepoints(scportrait):
    assert scportrait.wells == ["B02", "B04"]
    assert {w: len(s) for w, s in scportrait.sites.items()} == {"B02": 3, "B04": 3}
    assert scportrait.timepoints == [1, 2, 3]
    assert scportrait.channels == ["Alexa488", "DAPI", "mCherry"]
    assert scportrait.shape == (1080, 1080)
    assert scportrait.well_annotations("B04") == {"Genotype": "Genotype2", "Treatment": "Stimulated"}
    image = scportrait.read_site(scportrait.site("B04", 2))
    assert image.shape == (3, 1080, 1080) and image.dtype == np.uint16 and image.max() > 0


def test_scportrait_preset_is_detected(shared_data):
    plate = open_plate(shared_data / "scportrait_timecourse")
    assert plate.channels == ["Alexa488", "DAPI", "mCherry"] and plate.n_sites() == 6


def test_nf1_cellpainting_opens_with_channels_in_index_order(shared_data):
    plate = open_plate(shared_data / "nf1_cellpainting" / "Plate_2_images", pattern="nf1")
    # The shared set holds one well (D6) of the five its README describes.
    assert plate.channels == ["DAPI", "GFP", "RFP"]
    assert plate.wells == ["D06"]
    assert plate.read_site(plate.site("D06")).shape == (3, 904, 1224)


def test_example_human_opens_as_one_site_three_channels(shared_data):
    plate = open_plate(shared_data / "example_human")
    assert plate.wells == ["D03"] and plate.n_sites() == 1
    assert plate.channels == ["d0", "d1", "d2"]
    assert plate.read_site(plate.site("D03")).shape == (3, 512, 512)


def test_one_tiff_per_channel_is_a_one_well_plate(shared_data):
    files = sorted((shared_data / "example_human").glob("*.tif"))
    plate = open_plate(files, channel_names=["DNA", "PH3", "actin"])
    assert plate.channels == ["DNA", "PH3", "actin"] and plate.n_sites() == 1


def test_bundled_samples_open():
    ht29 = open_plate(sample_path("ht29"))
    assert ht29.channels == ["DNA", "PH3", "actin"] and ht29.shape == (512, 512)
    mini = open_plate(sample_path("scportrait_mini"), layout=sample_layout())
    assert mini.wells == ["B02", "B04"] and mini.n_sites() == 6 and mini.shape == (540, 540)
    assert mini.well_annotations("B02")["Treatment"] == "Unstimulated"
    by_path = open_plate(sample_path("scportrait_mini"))  # the folder's own layout table
    assert by_path.well_annotations("B02") == mini.well_annotations("B02")
    assert by_path.summary()["layout_source"] == str(sample_layout())


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_convert_round_trip_keeps_pixels_and_annotations(scportrait, tmp_path, version):
    out = write_plate(scportrait, tmp_path / "plate.zarr", version=version, chunk_size=512)
    back = open_plate(out)
    assert back.wells == scportrait.wells and back.channels == scportrait.channels
    assert list(back.iter_sites()) == list(scportrait.iter_sites())
    for site in scportrait.iter_sites():
        np.testing.assert_array_equal(back.read_site(site), scportrait.read_site(site))
    for well in scportrait.wells:
        assert back.well_annotations(well) == scportrait.well_annotations(well)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_reads_the_written_plate_and_labels(scportrait, tmp_path, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    out = write_plate(scportrait, tmp_path / "plate.zarr", version=version)
    site = scportrait.site("B02", 1)
    labels = np.zeros(scportrait.shape, np.uint16)
    labels[100:200, 100:200] = 7
    write_site_labels(out, site, "nuclei", labels)
    nodes = list(Reader(parse_url(str(out)))())
    assert nodes and nodes[0].specs[0].__class__.__name__ == "Plate"
    tiled = nodes[0].data[0]
    assert tiled.shape[-2:] == (1080 * 1, 1080 * 2) or tiled.shape[-2] >= 1080
    stored = open_plate(out).site_labels(site)["nuclei"]
    np.testing.assert_array_equal(np.asarray(stored), labels)
    assert open_plate(out).site_labels(scportrait.site("B02", 0))["nuclei"].max() == 0


def test_napari_ome_zarr_reads_the_written_plate(scportrait, tmp_path):
    napari_ome_zarr = pytest.importorskip("napari_ome_zarr")
    from napari_ome_zarr._reader import napari_get_reader

    out = write_plate(scportrait, tmp_path / "plate.zarr")
    reader = napari_get_reader(str(out))
    assert reader is not None
    layers = reader(str(out))
    assert layers and layers[0][0] is not None
    assert napari_ome_zarr is not None


def test_cli_info_json_and_convert(shared_data, tmp_path, capsys):
    root = shared_data / "scportrait_timecourse"
    assert main(["info", str(root), "--pattern", "scportrait",
                 "--layout", str(root / "plate_layout.tsv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["wells"] == ["B02", "B04"]
    assert info["sites"] == {"B02": 3, "B04": 3}
    assert info["channels"] == ["Alexa488", "DAPI", "mCherry"]
    assert info["shape"] == [1080, 1080] and info["dtype"] == "uint16"
    assert info["annotations"]["B02"]["Genotype"] == "Genotype1"
    out = tmp_path / "plate.zarr"
    assert main(["convert", str(sample_path("scportrait_mini")), str(out),
                 "--layout", str(sample_layout())]) == 0
    assert open_plate(out).n_sites() == 6


def test_ome_zarr_sites_are_shown_as_lazy_pyramids(scportrait, tmp_path):
    from napari_hcs.viewer.layers import site_layer_data

    plate = open_plate(write_plate(scportrait, tmp_path / "plate.zarr"))
    site = plate.site("B04", 1)
    pyramid = plate.site_pyramid(site)
    assert [level.shape[-1] for level in pyramid] == [1080, 540, 270]
    image_layers = [layer for layer in site_layer_data(plate, site) if layer[2] == "image"]
    data, kwargs, _ = image_layers[1]
    assert kwargs["multiscale"] and kwargs["name"] == "DAPI"
    np.testing.assert_array_equal(np.asarray(data[0]), scportrait.read_site(site)[1])
