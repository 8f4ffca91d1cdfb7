"""Neural networks for single-cell crops, built by name.

=========  ===============================================================
name       model
=========  ===============================================================
``wrn``    pre-activation wide ResNet (:class:`WideResNet`)
``cnn1``   plain CNN, max pooling (:class:`PlainCNN` variant 1)
``cnn2``   plain CNN, max pooling + batch norm (variant 2)
``cnn3``   plain CNN, batch norm + strided convolutions (variant 3)
``ae``     convolutional autoencoder, embeddings only (:class:`ConvAutoencoder`)
=========  ===============================================================

Training with several seeds (``TrainConfig.ensemble``) gives a
:class:`SeedEnsemble` of one of them; :func:`build_model` rebuilds it from its
config (name ``"ensemble"``, not a network one picks).

Classifiers return logits from ``forward(x)`` and ``(logits, embedding)`` from
``forward(x, return_embedding=True)``; every model has ``embed(x)`` (the
penultimate layer), ``embedding_dim`` and ``task`` (``"classification"`` or
``"embedding"``). :func:`build_model` records the full configuration in
``model.config`` so a checkpoint can rebuild the same network.
"""

from __future__ import annotations

import inspect
from functools import partial

from torch import nn

from .autoencoder import ConvAutoencoder
from .cnn import PlainCNN
from .ensemble import ENSEMBLE, SeedEnsemble
from .wide_resnet import WideResNet

__all__ = [
    "MODELS",
    "ConvAutoencoder",
    "PlainCNN",
    "SeedEnsemble",
    "WideResNet",
    "build_model",
    "hyperparameter_names",
    "model_names",
    "model_task",
]

#: Registry of model names to constructors (keys: :data:`napari_hcs.vocabulary.MODEL_NAMES`).
MODELS = {
    "wrn": WideResNet,
    "cnn1": partial(PlainCNN, variant=1),
    "cnn2": partial(PlainCNN, variant=2),
    "cnn3": partial(PlainCNN, variant=3),
    "ae": ConvAutoencoder,
}


def model_names() -> list[str]:
    """Return the registered model names."""
    return list(MODELS)


def model_task(name: str) -> str:
    """Return ``"classification"`` or ``"embedding"`` (autoencoder) for a registered name."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; models are: {', '.join(MODELS)}.")
    constructor = MODELS[name]
    return (constructor.func if isinstance(constructor, partial) else constructor).task


def _accepted(constructor) -> dict[str, inspect.Parameter]:
    target = constructor.func if isinstance(constructor, partial) else constructor
    fixed = constructor.keywords if isinstance(constructor, partial) else {}
    params = dict(inspect.signature(target).parameters)
    return {k: p for k, p in params.items() if k not in fixed and k != "self"}


def hyperparameter_names(name: str) -> list[str]:
    """Return the hyper-parameters :func:`build_model` accepts for a registered name.

    Examples
    --------
    >>> hyperparameter_names("ae")
    ['in_channels', 'crop_size', 'width', 'embedding_dim', 'num_classes']
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; models are: {', '.join(MODELS)}.")
    return list(_accepted(MODELS[name]))


def build_model(name: str, **hp) -> nn.Module:
    """Build a registered network.

    Parameters
    ----------
    name : str
        One of :func:`model_names` (``wrn``, ``cnn1``, ``cnn2``, ``cnn3``, ``ae``).
    **hp
        Hyper-parameters: ``in_channels`` (required), ``num_classes`` (required
        for classifiers), ``crop_size``, ``depth``, ``width``, ``dropout``, ...;
        see each model class. Unknown names raise an error listing the accepted ones.

    Returns
    -------
    torch.nn.Module
        The model, with ``model.config`` holding ``name`` and every hyper-parameter.

    Examples
    --------
    >>> model = build_model("wrn", in_channels=4, num_classes=8, depth=2, width=2)
    >>> model.config["width"]
    2
    """
    if name == ENSEMBLE and set(hp) == {"members"}:
        return SeedEnsemble([build_model(**dict(member)) for member in hp["members"]])
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; models are: {', '.join(MODELS)}.")
    constructor = MODELS[name]
    accepted = _accepted(constructor)
    unknown = sorted(set(hp) - set(accepted))
    if unknown:
        raise ValueError(
            f"Model {name!r} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}."
        )
    missing = [k for k, p in accepted.items() if p.default is inspect.Parameter.empty and k not in hp]
    if missing:
        raise ValueError(f"Model {name!r} needs {', '.join(missing)}.")
    model = constructor(**hp)
    config = {k: p.default for k, p in accepted.items() if p.default is not inspect.Parameter.empty}
    config.update(hp)
    model.config = {"name": name, **config}
    return model
