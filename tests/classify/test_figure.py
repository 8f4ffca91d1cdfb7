"""The prediction figure on the real sample: outlines in class colours, legend, confusion matrix, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from napari_hcs.classify.figure import DPI, class_colors, model_evaluation, prediction_figure, _outlined
from napari_hcs.io.outputs import OutputRefused
from napari_hcs.plate import PlateError, Site
from napari_hcs.project import CellStore, Project

from predicted_sample import (CLASSES, plausible_predictions, save_cnn_checkpoint, save_forest_model,
                              segmented_sample)

FIRST_SITE = Site("B02", 0, 1)


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    return segmented_sample(tmp_path_factory.mktemp("sample") / "project")


@pytest.fixture
def project(segmented, tmp_path):
    shutil.copytree(segmented, tmp_path / "project")
    return Project(tmp_path / "project")


def _pixels_of(image: np.ndarray, color: str, tolerance: int = 3) -> int:
    rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image[..., :3].astype(int) - rgb).max(axis=-1) <= tolerance).sum())


def test_figure_outlines_every_cell_in_its_class_colour(project, tmp_path):
    project.save_classes([{"name": "Stimulated", "color": "#d55e00"}])  # one colour chosen by the user
    predictions = plausible_predictions(project)
    save_forest_model(project)
    out = prediction_figure(project, out=tmp_path / "figure.png")
    assert out == tmp_path / "figure.png" and not list(tmp_path.glob(".*.tmp"))
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1] == 14 * DPI and image.shape[0] > 6 * DPI
    colors = dict(zip(CLASSES, class_colors(CLASSES, project.read_classes())))
    assert colors["Stimulated"] == "#d55e00" and len(set(colors.values())) == 3
    cells = project.cell_store().cells().merge(predictions, on="crop_index")
    on_site = cells[(cells.well == "B02") & (cells.timepoint == 1)]["pred_class"].value_counts()
    legend_patch = 1500  # a legend entry's coloured square, in pixels
    for name, color in colors.items():
        found = _pixels_of(image, color)
        if on_site.get(name, 0) >= 3:
            assert found > 3 * legend_patch, (name, found)
        else:  # no cell of this class on the site: only its legend entry shows the colour
            assert found < legend_patch, (name, found)


def test_outline_pixels_hold_their_cells_class_colour():
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[5:15, 5:15], labels[20:35, 20:35], labels[5:15, 25:35] = 1, 2, 3
    site_cells = pd.DataFrame({"label": [1, 2], "pred_class": ["b", "a"]})
    rgb = np.zeros((40, 40, 3), dtype=np.float32)
    drawn = _outlined(rgb, labels, site_cells, ["a", "b"], ["#ff0000", "#00ff00"])
    assert drawn[5, 10].tolist() == [0, 1, 0] and drawn[14, 14].tolist() == [0, 1, 0]  # cell 1: class b
    assert drawn[20, 27].tolist() == [1, 0, 0]  # cell 2: class a
    assert drawn[5, 30].tolist() == pytest.approx([0.741, 0.741, 0.741], abs=0.01)  # cell 3: no prediction
    assert drawn[10, 10].tolist() == [0, 0, 0] and drawn[0, 0].tolist() == [0, 0, 0]  # inside, background


def test_confusion_matrix_from_evaluation_or_checkpoint_metrics(project):
    save_forest_model(project)
    forest = model_evaluation(project, "quick")
    assert forest.split == "test" and forest.classes == CLASSES and forest.counts.sum() == 60
    assert forest.accuracy == pytest.approx(np.trace(forest.counts) / 60)
    save_cnn_checkpoint(project)
    cnn = model_evaluation(project, "wrn")
    assert cnn.split == "test" and cnn.counts.tolist() == [[20, 4], [6, 10]]
    assert (cnn.accuracy, cnn.balanced_accuracy) == (0.75, 0.7)


def test_chosen_model_and_site(project, tmp_path):
    save_cnn_checkpoint(project)
    plausible_predictions(project, model="wrn")
    out = prediction_figure(project, model="wrn", site="B04/0/2", out=tmp_path / "b04.png")
    assert Image.open(out).size[0] == 14 * DPI
    prediction_figure(project.folder, site="b4", out=tmp_path / "b04.png")  # a well in any naming; replaced


def test_clear_errors(project, tmp_path):
    out = tmp_path / "f.png"
    with pytest.raises(ValueError, match="holds no predictions; run 'napari-hcs predict' first"):
        prediction_figure(project, out=out)
    save_forest_model(project)
    predictions = plausible_predictions(project)
    with pytest.raises(ValueError, match=r"No model named 'resnet' in .*models; models are: quick"):
        prediction_figure(project, model="resnet", out=out)
    save_cnn_checkpoint(project)
    with pytest.raises(ValueError, match="made by model quick, not 'wrn'"):
        prediction_figure(project, model="wrn", out=out)
    with pytest.raises(PlateError, match="Well C07 is not on plate 'scportrait_mini'; wells: B02, B04"):
        prediction_figure(project, site="C07", out=out)
    with pytest.raises(PlateError, match="its sites: B02/0/1, B02/0/2, B02/0/3"):
        prediction_figure(project, site="B02/0/9", out=out)
    with pytest.raises(ValueError, match="give a well"):
        prediction_figure(project, site="B02/0", out=out)
    shutil.rmtree(project.label_store().site_folder(FIRST_SITE))
    with pytest.raises(ValueError, match="Site B02 f0 t1 has no label image in .*B02_f000_t001"):
        prediction_figure(project, out=out)
    CellStore(project.folder).write_columns("predictions", predictions[predictions.crop_index > 200])
    with pytest.raises(ValueError, match="No cell of well B02 has a prediction; sites with predictions: B04/0/3"):
        prediction_figure(project, site="B02", out=out)
    with pytest.raises(OutputRefused, match="is the input"):
        prediction_figure(project, out=project.folder / "cells.json")
    with pytest.raises(OutputRefused, match="lies inside the input"):
        prediction_figure(project, out=project.folder / "labels" / "f.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prediction_figure(tmp_path / "nowhere", out=out)
    assert not out.exists()
