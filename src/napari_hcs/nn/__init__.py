"""Neural networks on single-cell crops (torch): options, data, models, training, prediction.

Importing this package imports torch; the rest of the library does not need it.
"""

from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .config import TrainConfig
from .device import resolve_device
from .models import MODELS, build_model, model_names
from .predict import PredictResult, predict_cells, predict_project
from .training import TrainingError, TrainResult, train_model

__all__ = [
    "CheckpointError",
    "MODELS",
    "PredictResult",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "build_model",
    "load_checkpoint",
    "model_names",
    "predict_cells",
    "predict_project",
    "read_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train_model",
]
