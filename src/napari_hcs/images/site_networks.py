"""Learned site embeddings: per-channel autoencoders and a site classifier's penultimate layer.

Both train with :func:`napari_hcs.nn.training.train_model` on the downsampled
sites (one row per site, ``(sites, channels, size, size)``, from
:func:`napari_hcs.images.site_embeddings.site_stack`) as if they were crops, and
embed with :func:`napari_hcs.nn.predict.predict_cells`:

* :func:`autoencoder_embedding`: one :class:`~napari_hcs.nn.models.ConvAutoencoder`
  per channel, with one input channel, trained to reconstruct that channel; the
  bottlenecks are concatenated over channels, as the study did;
* :func:`classifier_embedding`: a plain CNN (``cnn2``: batch normalisation, max
  pooling) trained on the wells' labels; its hidden layer is the embedding.

Every site is a training site: there are few sites per well, and the embedding
is wanted for all of them. The classifier's batches are augmented (flips,
90-degree rotations, small shifts: a site's class does not depend on its
orientation); the autoencoders' are not, so that their bottleneck spends nothing
on orientation (on the six scPortrait sites, 30 epochs without augmentation reach
a reconstruction loss of about 0.3 and separate the two wells; with it, 0.85 and
one site in the wrong cluster).

Examples
--------
>>> from napari_hcs.images.site_embeddings import SiteEmbeddingOptions
>>> stack = np.random.default_rng(0).normal(size=(4, 2, 16, 16)).astype(np.float32)
>>> options = SiteEmbeddingOptions(source="autoencoder", size=16, dimensions=3, epochs=1, device="cpu")
>>> values, meta = autoencoder_embedding(stack, options, channels=["DNA", "GFP"])
>>> values.shape, [m["channel"] for m in meta["networks"]]
((4, 6), ['DNA', 'GFP'])
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["CLASSIFIER_MODEL", "autoencoder_embedding", "check_site_labels", "classifier_embedding"]

#: The network of the site classifier (see :mod:`napari_hcs.nn.models`).
CLASSIFIER_MODEL = "cnn2"
_BATCH = 32


def _config(options, *, model: str, model_options: dict, n_sites: int, augment: bool):
    from ..nn.config import TrainConfig

    return TrainConfig(model=model, depth=1, width=1, model_options=model_options, epochs=options.epochs,
                       batch_size=max(2, min(_BATCH, n_sites)), lr=2e-3, schedule="cosine", early_stopping=0,
                       normalisation="global", augment=augment, tta=False, device=options.device,
                       seed=options.seed)


def _epoch_progress(progress, offset: int, total: int):
    if progress is None:
        return None
    return lambda epoch, epochs, row: progress(offset + epoch, total)


def _summary(result, channel: str | None = None) -> dict:
    last = result.history[-1] if result.history else {}
    summary = {"model": result.meta["architecture"].get("name"), "epochs": len(result.history),
               "train_loss": last.get("train_loss")}
    if channel is not None:
        summary["channel"] = channel
    return summary


def autoencoder_embedding(stack: np.ndarray, options, *, channels: list[str],
                          progress: Callable[[int, int], None] | None = None, cancel=None) -> tuple[np.ndarray, dict]:
    """One autoencoder per channel; the bottlenecks concatenated over channels.

    Parameters
    ----------
    stack : ndarray
        ``(sites, channels, size, size)`` float32.
    options : SiteEmbeddingOptions
        ``dimensions`` (each channel's bottleneck), ``epochs``, ``device``, ``seed``.
    channels : list of str
        Channel names (recorded with each network).
    progress : callable, optional
        ``progress(done, total)`` after each epoch of each channel.
    cancel : callable or threading.Event, optional
        Checked before each batch.

    Returns
    -------
    values : ndarray of float32
        ``(sites, channels * dimensions)``, channel by channel.
    meta : dict
        ``networks``: per channel its model, epochs and last training loss.
    """
    from ..nn.predict import predict_cells
    from ..nn.training import train_model

    n = len(stack)
    table = pd.DataFrame({"crop_index": np.arange(n)})
    split = np.full(n, "train", dtype=object)
    parts, networks = [], []
    total = options.epochs * stack.shape[1]
    for c, channel in enumerate(channels):
        one = np.ascontiguousarray(stack[:, c:c + 1])
        config = _config(options, model="ae", model_options={"embedding_dim": options.dimensions}, n_sites=n,
                         augment=False)
        result = train_model(table, one, config, label_column=None, split=split, channels=[channel],
                             progress=_epoch_progress(progress, c * options.epochs, total), cancel=cancel)
        out = predict_cells(result.model, result.meta, one, device=options.device, channels=[channel],
                            cancel=cancel)
        parts.append(out.embeddings)
        networks.append(_summary(result, channel))
    return np.concatenate(parts, axis=1).astype(np.float32), {"networks": networks}


def check_site_labels(table: pd.DataFrame, column: str) -> pd.Series:
    """The sites' labels from well annotation ``column`` (None where a well has none), checked.

    Raises
    ------
    ValueError
        When the column is not a well annotation (naming those there are), or
        fewer than two classes are labelled.
    """
    if column not in table.columns:
        there = [c for c in table.columns if c not in ("site_index", "plate", "well", "field", "timepoint",
                                                       "site_key")]
        raise ValueError(f"The site classifier learns the well annotation {column!r}, which the plate's wells "
                         f"do not have; their annotations are: {', '.join(there) or 'none'} "
                         "(label wells in the dock, or give a layout table).")
    labels = table[column].where(table[column].notna(), None)
    if labels.dropna().nunique() < 2:
        raise ValueError(f"The site classifier needs sites of at least two classes in {column!r}; "
                         f"got {sorted(map(str, labels.dropna().unique()))}.")
    return labels


def classifier_embedding(stack: np.ndarray, table: pd.DataFrame, options, *, channels: list[str],
                         progress: Callable[[int, int], None] | None = None, cancel=None) -> tuple[np.ndarray, dict]:
    """Train a CNN on the sites' well labels; return its penultimate layer for every site.

    Parameters
    ----------
    stack : ndarray
        ``(sites, channels, size, size)`` float32.
    table : DataFrame
        The sites' rows, with the column ``options.labels_column`` (a well
        annotation); sites without a label are embedded but not trained on.
    options : SiteEmbeddingOptions
        ``labels_column``, ``hidden`` (embedding size), ``epochs``, ``device``, ``seed``.
    channels : list of str
        Channel names.
    progress, cancel
        As for :func:`autoencoder_embedding`.

    Returns
    -------
    values : ndarray of float32
        ``(sites, hidden)``.
    meta : dict
        ``networks`` (the model, epochs, last training loss and accuracy),
        ``classes`` and ``labels_column``.

    Raises
    ------
    ValueError
        When the label column is not a well annotation (naming those there are),
        or fewer than two classes are labelled.
    """
    from ..nn.predict import predict_cells
    from ..nn.training import train_model

    column = options.labels_column
    labels = check_site_labels(table, column)
    n = len(stack)
    frame = pd.DataFrame({"crop_index": np.arange(n), "well": table["well"].to_numpy(),
                          "label": labels.astype(object).to_numpy()})
    split = np.where(frame["label"].notna(), "train", "")
    config = _config(options, model=CLASSIFIER_MODEL, model_options={"hidden": options.hidden, "dropout": 0.2},
                     n_sites=n, augment=True)
    result = train_model(frame, stack, config, label_column="label", split=split, channels=list(channels),
                         progress=_epoch_progress(progress, 0, options.epochs), cancel=cancel)
    out = predict_cells(result.model, result.meta, stack, device=options.device, channels=list(channels),
                        tta=False, cancel=cancel)
    summary = _summary(result)
    summary["train_accuracy"] = (result.history[-1] if result.history else {}).get("train_accuracy")
    return out.embeddings.astype(np.float32), {"networks": [summary], "classes": list(result.meta["classes"]),
                                               "labels_column": column}
