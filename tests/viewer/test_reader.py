"""The napari reader and the layer helpers it is built on."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_hcs.viewer.reader import get_reader
from napari_hcs.viewer.layers import (
    META_NAME,
    META_PLATE,
    META_ROLE,
    META_SITE,
    apply_layer_data,
    channel_colormap,
    contrast_limits,
    site_layer_data,
)
from napari_hcs.plate import Site

from plates import make_plate


def test_channel_colormaps_follow_dye_names():
    assert channel_colormap("DAPI") == "blue"
    assert channel_colormap("Hoechst 33342") == "blue"
    assert channel_colormap("Alexa488") == "green"
    assert channel_colormap("GFP") == "green"
    assert channel_colormap("mCherry") == "magenta"
    assert channel_colormap("TRITC") == "magenta"
    assert [channel_colormap(f"d{i}", i) for i in range(3)] == ["gray", "cyan", "yellow"]


def test_contrast_limits_are_robust_and_never_flat():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 1100, size=(1000, 1000)).astype(np.uint16)
    image[rng.random(image.shape) < 0.0005] = 60000  # hot pixels do not set the upper limit
    low, high = contrast_limits(image)
    assert 100 <= low < 120 and 1080 < high < 1100
    assert contrast_limits(np.full((10, 10), 7)) == (7.0, 8.0)


def test_site_layer_data_has_one_image_per_channel_and_stored_labels():
    plate = make_plate(labels=True)
    site = plate.site("B03", 1)
    layers = site_layer_data(plate, site)
    assert [(kw["name"], kind) for _, kw, kind in layers] == [
        ("DAPI", "image"),
        ("GFP", "image"),
        ("nuclei", "labels"),
    ]
    data, kwargs, _ = layers[0]
    assert isinstance(data, np.ndarray) and data.shape == (40, 48)
    np.testing.assert_array_equal(data, plate.read_site(site)[0])
    assert kwargs["colormap"] == "blue" and kwargs["blending"] == "additive"
    assert kwargs["scale"] == (0.65, 0.65)
    low, high = kwargs["contrast_limits"]
    assert data.min() <= low < high <= data.max()
    assert kwargs["metadata"][META_PLATE] is plate
    assert kwargs["metadata"][META_SITE] == site
    assert layers[2][1]["metadata"][META_ROLE] == "labels"
    assert site_layer_data(plate, site, labels=False)[-1][2] == "image"


def test_apply_layer_data_updates_layers_in_place():
    plate = make_plate(labels=True)
    viewer = ViewerModel()
    first = apply_layer_data(viewer, site_layer_data(plate, plate.site("B02", 0)))
    first[0].contrast_limits = (5, 50)  # a user's choice survives site changes
    second_site = plate.site("B03", 1)
    second = apply_layer_data(viewer, site_layer_data(plate, second_site, labels=False))
    assert [layer.name for layer in viewer.layers] == ["DAPI", "GFP"]  # stale labels removed
    assert second[0] is first[0]
    np.testing.assert_array_equal(second[0].data, plate.read_site(second_site)[0])
    assert second[0].metadata[META_SITE] == second_site
    assert tuple(second[0].contrast_limits) == (5, 50)


def test_apply_layer_data_finds_layers_renamed_by_napari():
    plate = make_plate()
    viewer = ViewerModel()
    viewer.add_image(np.zeros((4, 4)), name="DAPI")  # someone else's layer takes the name
    apply_layer_data(viewer, site_layer_data(plate, plate.site("B02", 0)))
    apply_layer_data(viewer, site_layer_data(plate, plate.site("B03", 0)))
    names = sorted(layer.name for layer in viewer.layers)
    assert names == ["DAPI", "DAPI [1]", "GFP"]
    ours = [layer for layer in viewer.layers if layer.metadata.get(META_NAME) == "DAPI"]
    assert len(ours) == 1 and ours[0].metadata[META_SITE].well == "B03"


def test_reader_declines_what_is_not_a_plate(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    fake_tiff = tmp_path / "broken.tif"
    fake_tiff.write_bytes(b"not a tiff at all")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert get_reader(str(text)) is None
    assert get_reader(str(fake_tiff)) is None
    assert get_reader(str(empty)) is None
    assert get_reader(str(tmp_path / "missing")) is None
    assert get_reader([str(text), str(fake_tiff)]) is None


def test_reader_opens_the_scportrait_plate_at_its_first_site(scportrait_dir):
    reader = get_reader(str(scportrait_dir))
    assert callable(reader)
    layers = reader(str(scportrait_dir))
    assert [(kw["name"], kw["colormap"], kind) for _, kw, kind in layers] == [
        ("Alexa488", "green", "image"),
        ("DAPI", "blue", "image"),
        ("mCherry", "magenta", "image"),
    ]
    for data, kwargs, _ in layers:
        assert data.shape == (1080, 1080) and data.dtype == np.uint16
        low, high = kwargs["contrast_limits"]
        assert 0 <= low < high <= np.iinfo(np.uint16).max
        assert kwargs["metadata"][META_SITE] == Site("B02", 0, 1)
        assert kwargs["metadata"][META_PLATE].wells == ["B02", "B04"]


def test_reader_opens_a_single_tiff(shared_data):
    path = shared_data / "stardist_nuclei" / "img2d.tif"
    layers = get_reader(str(path))(str(path))
    assert len(layers) == 1
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.shape == (512, 512)
    assert kwargs["metadata"][META_SITE].well == "A01"


@pytest.mark.gui
def test_reader_layers_connect_the_plate_widget(
    make_napari_viewer, qtbot, scportrait_dir, tmp_path, monkeypatch
):
    from napari_hcs.viewer import session as session_module
    from napari_hcs.widgets.plate_widget import PlateWidget

    monkeypatch.setattr(session_module, "default_project_dir", lambda _: tmp_path / "project")
    viewer = make_napari_viewer()
    widget = PlateWidget(viewer)
    viewer.window.add_dock_widget(widget)
    reader = get_reader(str(scportrait_dir))
    with qtbot.waitSignal(widget.site_changed, timeout=10_000) as blocker:
        for data, kwargs, kind in reader(str(scportrait_dir)):
            getattr(viewer, f"add_{kind}")(data, **kwargs)
    plate, site = blocker.args
    assert widget.plate is plate and plate.source == str(scportrait_dir)
    assert site == Site("B02", 0, 1) and widget.current_site == site
    assert widget.project.folder == tmp_path / "project"
    assert [layer.name for layer in viewer.layers] == ["Alexa488", "DAPI", "mCherry"]


@pytest.mark.gui
def test_file_open_and_the_plugin_dock_widget_work_through_napari(
    make_napari_viewer, qtbot, scportrait_dir, tmp_path, monkeypatch
):
    from napari_hcs.viewer import session as session_module
    from napari_hcs.widgets import plate_widget

    monkeypatch.setattr(session_module, "default_project_dir", lambda _: tmp_path / "project")
    viewer = make_napari_viewer()
    layers = viewer.open(str(scportrait_dir), plugin="napari-hcs")
    assert [layer.name for layer in layers] == ["Alexa488", "DAPI", "mCherry"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcs", "Plate map")
    assert isinstance(widget, plate_widget.PlateWidget)
    qtbot.waitUntil(lambda: widget.plate is not None, timeout=5_000)
    assert widget.plate is layers[0].metadata[META_PLATE]
    assert widget.current_site == Site("B02", 0, 1)
    assert widget.plate_map.current_well == "B02"


def test_the_bundled_sample_opened_by_path_carries_its_layout_table():
    from napari_hcs.samples import sample_path

    path = str(sample_path("scportrait_mini"))
    layers = get_reader(path)(path)
    plate = layers[0][1]["metadata"][META_PLATE]
    assert plate.well_annotations("B04") == {"Genotype": "Genotype2", "Treatment": "Stimulated"}
    assert plate.well_annotations("B02")["Treatment"] == "Unstimulated"


def test_the_manifest_offers_the_reader_for_folders_and_tiffs_only():
    import yaml
    from importlib.resources import files

    manifest = yaml.safe_load((files("napari_hcs") / "napari.yaml").read_text())
    (reader,) = manifest["contributions"]["readers"]
    assert reader["accepts_directories"] is True
    assert sorted(reader["filename_patterns"]) == ["*.tif", "*.tiff"]


def test_a_folder_without_images_is_declined_without_opening_it(tmp_path, monkeypatch):
    from napari_hcs.viewer import reader as reader_module

    def must_not_open(*args, **kwargs):
        raise AssertionError("open_plate was called")

    monkeypatch.setattr(reader_module, "open_plate", must_not_open)
    (tmp_path / "notes.txt").write_text("no images here")
    assert get_reader(str(tmp_path)) is None
