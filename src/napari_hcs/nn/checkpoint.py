"""Saving and loading trained models: one ``.pt`` file, no pickled objects.

A checkpoint is a ``torch.save`` of a plain dict::

    {"format": "napari-hcs-model", "format_version": 1,
     "state_dict": {name: tensor, ...},      # the network's weights and buffers
     "meta_json": "{...}"}                   # everything else, as a JSON string

so :func:`torch.load` opens it with ``weights_only=True`` and never runs code
from the file; a SHA-256 of the weights (``weights_sha256``) detects damaged files.
The metadata holds the architecture and hyper-parameters (enough
to rebuild the network with :func:`napari_hcs.nn.models.build_model`), the channel
names, crop size and preprocessing (input size, per-channel mean and std),
the class names, the training options (``hyperparameters``: the
:class:`~napari_hcs.nn.config.TrainConfig` as run), the training history, the
split counts and the metrics.

Examples
--------
>>> model = build_model("cnn1", in_channels=1, num_classes=2, depth=1, width=1, hidden=8)
>>> path = save_checkpoint(tmp_path / "model.pt", model, {"classes": ["a", "b"]})
>>> loaded, meta = load_checkpoint(path)
>>> meta["architecture"]["name"], meta["classes"]
('cnn1', ['a', 'b'])
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from .models import build_model

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "napari-hcs-model"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """Raised when a file is not a readable napari-hcs model checkpoint."""


def _plain(value):
    """Convert numpy scalars/arrays (and tuples) into JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _weights_digest(state_dict: dict) -> str:
    """SHA-256 of the tensor names, shapes, dtypes and bytes (detects damaged files)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tuple(state_dict[name].shape)}|{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: dict) -> Path:
    """Write a model and its metadata to one file (atomically).

    Parameters
    ----------
    path : path
        Destination, conventionally ``*.pt``; parent folders are created.
    model : torch.nn.Module
        A model from :func:`napari_hcs.nn.models.build_model` (it has ``config``);
        a ``DistributedDataParallel`` wrapper is unwrapped.
    meta : dict
        JSON-ready metadata (numpy values are converted). ``architecture`` is
        set from ``model.config``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    model = getattr(model, "module", model)
    if not hasattr(model, "config"):
        raise ValueError("Only models made by napari_hcs.nn.models.build_model can be saved (no .config).")
    meta = _plain({**meta, "architecture": dict(model.config)})
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": state_dict,
        "weights_sha256": _weights_digest(state_dict),
        "meta_json": json.dumps(meta, allow_nan=False),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """Return ``(state_dict, meta)`` of a checkpoint without building the model.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    CheckpointError
        If the file is corrupt, not a torch file, or not a napari-hcs checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} does not exist.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a napari-hcs model: it is not a torch checkpoint archive "
            "(corrupt, truncated or another kind of file)."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, TypeError) as error:
        reason = str(error).split(". ")[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable napari-hcs model (corrupt or truncated): {reason}."
        ) from error
    except Exception as error:  # weights_only refuses pickled objects with its own error types
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain values; napari-hcs does not load it "
            f"({type(error).__name__})."
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a torch file but not a napari-hcs model (no {CHECKPOINT_FORMAT!r} format marker); "
            "train one with 'napari-hcs train'."
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this napari-hcs reads up to {FORMAT_VERSION}."
        )
    try:
        meta = json.loads(payload["meta_json"])
        state_dict = dict(payload["state_dict"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is a napari-hcs model with damaged metadata: {error}") from error
    if payload.get("weights_sha256") != _weights_digest(state_dict):
        raise CheckpointError(f"{path} is damaged: its weights do not match their recorded checksum.")
    if "architecture" not in meta or "name" not in meta["architecture"]:
        raise CheckpointError(f"{path} does not record the model architecture.")
    return state_dict, meta


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a saved model in evaluation mode.

    Parameters
    ----------
    path : path
        File written by :func:`save_checkpoint`.
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    model : torch.nn.Module
        The network with its weights, in ``eval()`` mode.
    meta : dict
        The metadata (architecture, channels, preprocessing, classes, history, ...).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    CheckpointError
        If the file is corrupt or foreign, or its weights do not fit its architecture.
    """
    state_dict, meta = read_checkpoint(path)
    architecture = dict(meta["architecture"])
    name = architecture.pop("name")
    try:
        model = build_model(name, **architecture)
        model.load_state_dict(state_dict)
    except (ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: the stored weights do not fit model {name!r}: {error}") from error
    return model.to(device).eval(), meta
