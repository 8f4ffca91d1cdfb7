"""Embedding cells with a convolutional autoencoder trained on their crops (no labels needed).

The autoencoder of :mod:`napari_hcs.nn.models.autoencoder` (model ``"ae"``) is
trained with :func:`napari_hcs.nn.training.train_model` to reconstruct the
crops, normalised per plate, shrunk to a small input (32 pixels by default);
the bottleneck of every cell is then its embedding. The model is kept in the
project as ``models/embedding-autoencoder.pt`` (an embedding model: the
classifier list leaves it out). On a CPU an epoch over a few thousand crops
takes seconds to a minute, so few epochs are the default there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..vocabulary import CROP_INDEX

__all__ = ["AUTOENCODER_FILE", "CPU_EPOCHS", "GPU_EPOCHS", "autoencoder_embedding", "default_epochs"]

#: The trained autoencoder, in the project's models folder.
AUTOENCODER_FILE = "embedding-autoencoder.pt"
#: Epochs when none are given, on a CPU and on a GPU.
CPU_EPOCHS = 5
GPU_EPOCHS = 30
#: Network input side when none is given.
DEFAULT_INPUT_SIZE = 32


def default_epochs(device: str) -> int:
    """Epochs of the autoencoder when none are given: few on a CPU.

    Examples
    --------
    >>> default_epochs("cpu")
    5
    """
    from ..nn.device import resolve_device

    return GPU_EPOCHS if resolve_device(device).type == "cuda" else CPU_EPOCHS


def autoencoder_embedding(project_dir, cells: pd.DataFrame, crops, *, channels: list[str], request,
                          progress: Callable[[int, int], None] | None = None,
                          cancel=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train the autoencoder on ``cells`` and return ``(crop_index, embeddings, info)``.

    Parameters
    ----------
    project_dir : path
        Project folder (the model is written to its models folder).
    cells : DataFrame
        ``crop_index``, ``well``, ``plate`` (and the controls column) of the cells.
    crops : zarr.Array
        The crop store.
    channels : list of str
        Its channel names.
    request : EmbedRequest
        ``dimensions`` (the bottleneck), ``epochs``, ``input_size``, ``seed``,
        ``device``, ``normalisation``, ``controls``, ``batch_size``.
    progress : callable, optional
        ``progress(done, total)`` in cells: each epoch counts the cells once,
        and so does embedding them afterwards.
    cancel : callable or threading.Event, optional
        Checked before each batch; when set, :class:`napari_hcs.cancel.Cancelled`
        is raised (after the first finished epoch the model of the best epoch so
        far is still written to the models folder).

    Returns
    -------
    crop_index, embeddings : ndarray
    info : dict
        ``model`` (file), ``epochs``, ``best_epoch``, ``reconstruction_mse``,
        ``training_seconds``, ``input_size``, ``width``, ``cancelled``.
    """
    from ..nn import TrainConfig, predict_cells, train_model

    epochs = request.epochs or default_epochs(request.device)
    input_size = min(request.input_size or DEFAULT_INPUT_SIZE, int(crops.shape[-1]))
    # Linear intensities, as the crop PCA embeds them: the two embeddings stay comparable.
    config = TrainConfig(model="ae", width=1, model_options={"embedding_dim": int(request.dimensions)},
                         epochs=int(epochs), early_stopping=0, seed=request.seed, device=request.device,
                         normalisation=request.normalisation, controls=request.controls, intensity="linear",
                         input_size=input_size, batch_size=min(128, max(2, len(cells) // 4)))
    n = len(cells)

    def epoch_done(epoch: int, total: int, row: dict) -> None:
        if progress is not None:
            progress(epoch * n, (total + 1) * n)

    started = time.perf_counter()
    path = Path(project_dir) / "models" / AUTOENCODER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    result = train_model(cells, crops, config, label_column=None, channels=channels, checkpoint_path=path,
                         progress=epoch_done, cancel=cancel)
    seconds = time.perf_counter() - started

    def embedded(done: int, total: int) -> None:
        if progress is not None:
            progress(epochs * n + done, (epochs + 1) * n)

    out = predict_cells(result.model, result.meta, crops, indices=cells[CROP_INDEX].to_numpy(),
                        batch_size=request.batch_size, device=request.device, channels=channels,
                        table=cells, progress=embedded, cancel=cancel)
    info = {"model": str(path), "epochs": int(epochs), "epochs_run": len(result.history),
            "best_epoch": result.meta.get("best_epoch"),
            "reconstruction_mse": _mse(result.metrics), "training_seconds": round(seconds, 1),
            "input_size": input_size, "width": 1, "cancelled": bool(result.cancelled)}
    return out.crop_index, out.embeddings, info


def _mse(metrics: dict):
    for split in ("val", "test", "train"):
        value = (metrics or {}).get(split)
        if isinstance(value, dict) and "reconstruction_mse" in value:
            return float(value["reconstruction_mse"])
    value = (metrics or {}).get("reconstruction_mse")
    return None if value is None else float(value)
