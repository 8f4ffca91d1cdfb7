"""The CNN form: its "within" field, offered columns and saved settings put back."""

from __future__ import annotations

import pytest

from napari_hcs.widgets.training_plot import cnn_form, form_config, form_widgets, set_form_config, set_within_choices

pytestmark = pytest.mark.gui


@pytest.fixture
def form(qtbot):
    return cnn_form()


def test_within_defaults_to_the_whole_plate_and_keeps_a_choice_while_offered(form):
    within = form_widgets(form)["normalise_within"]
    assert within.choices == ("",) and form_config(form).normalise_within == ""
    set_within_choices(form, ["timepoint", "batch"])
    within.value = "batch"
    assert form_config(form).normalise_within == "batch"
    set_within_choices(form, ["batch"])  # another plate, one timepoint
    assert within.value == "batch"
    set_within_choices(form, ["timepoint"])  # a plate without the batch column
    assert within.value == "" and within.choices == ("", "timepoint")


def test_a_saved_model_within_columns_are_offered_and_shown(form):
    within = form_widgets(form)["normalise_within"]
    set_form_config(form, {"normalise_within": ["timepoint", "batch"], "epochs": 12})
    assert within.value == "timepoint,batch" and form_widgets(form)["epochs"].value == 12
    assert form_config(form).normalise_within_columns == ("timepoint", "batch")
    set_form_config(form, {"normalise_within": ""})
    assert within.value == ""


def test_the_intensity_scale_reaches_the_config_and_comes_back(form):
    intensity = form_widgets(form)["intensity"]
    assert intensity.value == "log"
    intensity.value = "linear"
    assert form_config(form).intensity == "linear"
    set_form_config(form, {"intensity": "log"})
    assert intensity.value == "log"
    set_form_config(form, {"epochs": 12})  # a model saved before the option kept the crops as stored
    assert intensity.value == "linear"
