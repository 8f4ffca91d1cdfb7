"""`napari-hcs train` and `compare` start from the same defaults as TrainConfig()."""

import pytest

from napari_hcs.cli import build_parser
from napari_hcs.nn import TrainConfig

#: Command-line option (argparse dest) -> TrainConfig field, where they share a default.
SHARED = {"model": "model", "depth": "depth", "width": "width", "dropout": "dropout", "epochs": "epochs",
          "batch_size": "batch_size", "lr": "lr", "weight_decay": "weight_decay", "schedule": "schedule",
          "early_stopping": "early_stopping", "monitor": "monitor", "intensity_jitter": "intensity_jitter",
          "resize_mode": "resize_mode", "device": "device", "ensemble": "ensemble", "seed": "seed",
          "self_training": "self_training", "self_training_confidence": "self_training_confidence"}


@pytest.mark.parametrize("command", ["train", "compare"])
def test_command_line_defaults_are_train_config_defaults(command):
    args = build_parser().parse_args([command, "--project", "p", "--label-column", "y"])
    defaults = TrainConfig()
    shown = {dest: getattr(args, dest) for dest in SHARED}
    assert shown == {dest: getattr(defaults, field) for dest, field in SHARED.items()}
    assert (not args.no_balance, not args.no_augment, not args.no_amp) == (defaults.balanced, defaults.augment,
                                                                           defaults.amp)
