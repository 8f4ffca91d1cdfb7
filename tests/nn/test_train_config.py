"""TrainConfig: today's defaults, clear messages for bad options, JSON and checkpoint round trips."""

from __future__ import annotations

import dataclasses
import json

import pytest

from napari_hcs.nn.config import TrainConfig
from napari_hcs.vocabulary import MODEL_NAMES, RESIZE_MODES, SCHEDULES


def test_defaults_are_the_recipe():
    config = TrainConfig()
    assert (config.model, config.depth, config.width, config.dropout) == ("wrn", 1, 2, 0.0)
    assert (config.epochs, config.batch_size, config.lr, config.weight_decay) == (60, 128, 1e-3, 5e-4)
    assert (config.schedule, config.balanced, config.early_stopping, config.augment) == ("cosine", True, 15, True)
    assert (config.monitor, config.normalisation, config.controls) == ("balanced_accuracy", "plate", None)
    assert (config.tta, config.ensemble) == (None, 1)
    assert (config.input_size, config.resize_mode, config.device, config.amp) == (None, "resize", "auto", True)
    assert (config.channels_last, config.preload, config.deterministic, config.seed) == (None, None, None, 0)
    assert config.model_options == {} and config.intensity_jitter == 0.0


def test_fields_are_plain_values_a_form_can_fill():
    plain = {"str", "int", "float", "bool", "dict", "int | None", "bool | None", "str | None"}
    for field in dataclasses.fields(TrainConfig):
        assert field.type in plain, field.name


@pytest.mark.parametrize("name, choices", [("model", MODEL_NAMES), ("schedule", SCHEDULES),
                                           ("resize_mode", RESIZE_MODES)])
def test_every_choice_of_the_vocabulary_is_accepted(name, choices):
    for choice in choices:
        assert getattr(TrainConfig(**{name: choice}), name) == choice


@pytest.mark.parametrize("options, message", [
    ({"model": "resnet50"}, "TrainConfig.model must be one of wrn, cnn1, cnn2, cnn3, ae; got 'resnet50'."),
    ({"schedule": "step"}, "TrainConfig.schedule must be one of cosine, onecycle, constant; got 'step'."),
    ({"resize_mode": "crop"}, "TrainConfig.resize_mode must be one of resize, center; got 'crop'."),
    ({"epochs": 0}, "TrainConfig.epochs must be an integer of at least 1; got 0."),
    ({"batch_size": 12.5}, "TrainConfig.batch_size must be an integer of at least 1; got 12.5."),
    ({"depth": True}, "TrainConfig.depth must be an integer of at least 1; got True."),
    ({"early_stopping": -1}, "TrainConfig.early_stopping must be an integer of at least 0; got -1."),
    ({"input_size": 0}, "TrainConfig.input_size must be an integer of at least 1; got 0."),
    ({"lr": 0}, "TrainConfig.lr must be a number above 0; got 0."),
    ({"weight_decay": float("nan")}, "TrainConfig.weight_decay must be a number of at least 0; got nan."),
    ({"dropout": 1.0}, r"TrainConfig.dropout must be a number in [0, 1); got 1.0."),
    ({"intensity_jitter": -0.1}, "TrainConfig.intensity_jitter must be a number of at least 0; got -0.1."),
    ({"augment": "no"}, "TrainConfig.augment must be True or False; got 'no'."),
    ({"preload": 1}, "TrainConfig.preload must be True, False or None; got 1."),
    ({"device": "tpu"}, "TrainConfig.device: Unknown device 'tpu'; expected one of auto, cpu, cuda, mps (or cuda:N)."),
    ({"model_options": {"kernel": 5}}, "model 'wrn' does not take kernel; it takes: depth, width, dropout."),
])
def test_bad_options_say_what_is_expected(options, message):
    with pytest.raises(ValueError) as info:
        TrainConfig(**options)
    assert message in str(info.value)


def test_values_are_normalised():
    config = TrainConfig(lr=1, device="CUDA:1", model_options=None)
    assert isinstance(config.lr, float) and config.device == "cuda:1" and config.model_options == {}


def test_json_round_trip():
    config = TrainConfig(model="ae", width=1, model_options={"embedding_dim": 16}, input_size=32, preload=False)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert dataclasses.replace(config, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="Unknown training option.* epoch; options are: model, depth"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        dataclasses.replace(config, batch_size=0)


def test_config_of_a_model_from_its_metadata_old_and_new():
    # The hyper-parameters a model trained before TrainConfig recorded.
    older = {"model": "cnn2", "depth": 1, "width": 1, "dropout": 0.0, "model_options": {}, "epochs": 4,
             "batch_size": 16, "lr": 0.003, "weight_decay": 0.0005, "schedule": "cosine", "balanced": True,
             "early_stopping": 5, "augment": True, "intensity_jitter": 0.0, "amp": True, "seed": 0,
             "deterministic": True, "input_size": 16, "resize_mode": "resize", "channels_last": False,
             "preload": True, "world_size": 1, "device": "cpu"}
    config = TrainConfig.from_meta({"hyperparameters": older})
    assert (config.model, config.epochs, config.lr, config.device, config.preload) == ("cnn2", 4, 0.003, "cpu", True)
    assert TrainConfig.from_meta({}) == TrainConfig()


def test_network_options():
    assert TrainConfig(depth=1, width=3, dropout=0.2).network_options() == {"depth": 1, "width": 3, "dropout": 0.2}
    assert TrainConfig(model="cnn1", model_options={"hidden": 32}).network_options()["hidden"] == 32
    assert TrainConfig(model="ae", depth=4).network_options() == {"width": 2}
