"""The options of a training run, checked once: :class:`TrainConfig`.

Every option of :func:`napari_hcs.nn.training.train_model` that is not data (the
table, the crops, the labels, the split) or a callback lives here, with the
defaults that work on real data. The fields are plain values (str, int, float,
bool, None and one dict), so a form or a JSON file can fill a config, and
:meth:`TrainConfig.to_dict` / :meth:`TrainConfig.from_dict` carry it to JSON and
back; a trained model records its config in ``meta["hyperparameters"]``.

Examples
--------
>>> config = TrainConfig(model="cnn2", epochs=5)
>>> config.batch_size, config.schedule, config.normalisation
(128, 'cosine', 'plate')
>>> TrainConfig.from_dict(config.to_dict()) == config
True
>>> TrainConfig(schedule="step")
Traceback (most recent call last):
...
ValueError: TrainConfig.schedule must be one of cosine, onecycle, constant; got 'step'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from numbers import Integral, Real

import numpy as np

from ..vocabulary import INTENSITY_SCALES, MODEL_NAMES, MONITORS, NORMALISATIONS, RESIZE_MODES, SCHEDULES
from .device import check_device_name
from .models import hyperparameter_names

__all__ = ["TrainConfig"]

#: Hyper-parameters of a network that training sets from the data, not from the config.
DATA_HYPERPARAMETERS = ("in_channels", "num_classes", "crop_size")


@dataclass
class TrainConfig:
    """How to train a network on single-cell crops.

    Parameters
    ----------
    model : {"wrn", "cnn1", "cnn2", "cnn3", "ae"}
        Network (see :mod:`napari_hcs.nn.models`); ``"ae"`` learns without labels.
    depth, width : int
        Blocks (convolutions) per stage and widening factor. A wide ResNet of
        depth 1, width 2 scored at least as well as depth 2 on every real set of
        ``benchmarks/recipes.py``, at half the cost (docs/training.md).
    dropout : float
        Dropout rate, in [0, 1).
    model_options : dict
        Further hyper-parameters of the network (e.g. ``hidden``, ``embedding_dim``);
        they override ``depth``, ``width`` and ``dropout``.
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Cells per batch (per process when distributed).
    lr, weight_decay : float
        Adam learning rate and (L2) weight decay.
    schedule : {"cosine", "onecycle", "constant"}
        Learning-rate schedule, stepped every batch.
    balanced : bool
        Draw training cells with probability inversely proportional to their
        class size (each epoch draws as many cells as the train split holds).
    early_stopping : int
        Stop after this many epochs without a better validation score (0: never).
    monitor : {"balanced_accuracy", "loss"}
        The validation score that picks the epoch kept (and that early
        stopping watches): the balanced accuracy, the loss breaking ties, or the
        loss alone. Autoencoders always watch their loss.
    augment : bool
        Random flips, 90-degree rotations and pad-4 random crops.
    intensity_jitter : float
        Standard deviation of random per-channel gain and offset (0: none).
    input_size : int or None
        Network input side; crops are resized (or centre-cropped) to it. None
        keeps the crop size.
    resize_mode : {"resize", "center"}
        How crops reach ``input_size``.
    normalisation : {"plate", "global"}
        ``"plate"``: every crop is normalised with its own plate's per-channel
        statistics (the plate's control cells' with ``controls``; a new plate's
        are computed from its cells at prediction); ``"global"``: one mean and
        standard deviation from the training crops.
    controls : str, optional
        ``"COLUMN=VALUE[,VALUE]"`` naming each plate's control cells (e.g.
        ``"compound=DMSO"``), with ``normalisation="plate"``.
    normalise_within : str
        ``"COLUMN[,COLUMN]"``: columns dividing each plate into groups
        normalised on their own, with ``normalisation="plate"``;
        ``"timepoint"`` gives every timepoint of a time course its own
        statistics (a list of column names is read as the same text). Empty
        (default): whole plates.
    intensity : {"log", "linear"}, optional
        The scale of the crops' intensities before the per-plate statistics:
        ``log(1 + x)`` of each pixel (negative values as 0), which compresses
        the bright tail of each channel, so that a brighter plate or timepoint
        differs by an offset that the plate's statistics remove; or as stored.
        ``"log"`` needs ``normalisation="plate"``. None (default): ``"log"``
        with ``normalisation="plate"``, ``"linear"`` with ``"global"``.
    tta : bool or None
        Predict with test-time augmentation: class probabilities averaged over
        the 8 flips and 90-degree rotations of each crop. None: when it scores
        better on the validation cells than one view (on when there are none).
    ensemble : int
        Networks trained with seeds ``seed``, ``seed + 1``, ...; their class
        probabilities are averaged (:class:`~napari_hcs.nn.models.SeedEnsemble`).
    self_training : int
        Rounds of self-training (:mod:`napari_hcs.nn.self_training`): the cells
        of the test split and those without a label that the model classifies
        with at least ``self_training_confidence`` join the training cells with
        their predicted class, and the network is trained again (each round
        costs one more training). 0: none.
    self_training_confidence : float
        The lowest class probability that gives a cell a class in self-training.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    amp : bool
        Mixed precision: bfloat16 on CUDA (float16 with loss scaling where the GPU
        lacks bfloat16) and on CPUs with bfloat16 instructions (about 2x faster
        training there); float32 elsewhere (:mod:`napari_hcs.nn.precision`).
    channels_last : bool or None
        Channels-last memory format; None: on CUDA and CPU (1.1-1.3x faster
        training on CPU, see ``benchmarks/train_speed.py``), not on MPS.
    preload : bool or None
        Read the training crops into (device) memory once; None: when they take
        at most 4 GiB (and a quarter of the free GPU memory). Otherwise batches
        stream from the store in chunk order.
    deterministic : bool or None
        Deterministic kernels, so that a rerun with the same seed on the same
        machine gives the same model bit for bit. None: on CPU, where it costs
        nothing; off on GPUs, where deterministic cuDNN kernels are slower.
    seed : int
        Seeds the default split, the initial weights, the sampling and the augmentation.

    Raises
    ------
    ValueError
        When an option is out of range or of the wrong kind (naming the option,
        what it must be, and the value given).
    """

    model: str = "wrn"
    depth: int = 1
    width: int = 2
    dropout: float = 0.0
    model_options: dict = field(default_factory=dict)
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    balanced: bool = True
    early_stopping: int = 15
    monitor: str = "balanced_accuracy"
    augment: bool = True
    intensity_jitter: float = 0.0
    input_size: int | None = None
    resize_mode: str = "resize"
    normalisation: str = "plate"
    controls: str | None = None
    normalise_within: str = ""
    intensity: str | None = None
    tta: bool | None = None
    ensemble: int = 1
    self_training: int = 0
    self_training_confidence: float = 0.95
    device: str = "auto"
    amp: bool = True
    channels_last: bool | None = None
    preload: bool | None = None
    deterministic: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_choice("model", MODEL_NAMES)
        self._check_choice("schedule", SCHEDULES)
        self._check_choice("resize_mode", RESIZE_MODES)
        self._check_choice("normalisation", NORMALISATIONS)
        self._check_choice("monitor", MONITORS)
        self._check_controls()
        self._check_normalise_within()
        if self.intensity is None:
            self.intensity = "log" if self.normalisation == "plate" else "linear"
        self._check_choice("intensity", INTENSITY_SCALES)
        if self.intensity != "linear" and self.normalisation != "plate":
            raise ValueError("TrainConfig.intensity='log' needs normalisation='plate' (its statistics are the log's).")
        try:
            self.device = check_device_name(self.device)
        except ValueError as error:
            raise ValueError(f"TrainConfig.device: {error}") from None
        for name in ("depth", "width", "epochs", "batch_size", "ensemble"):
            self._check_integer(name, minimum=1)
        for name in ("early_stopping", "seed", "self_training"):
            self._check_integer(name, minimum=0)
        if self.input_size is not None:
            self._check_integer("input_size", minimum=1)
        self._check_number("lr", "a number above 0", lambda v: v > 0)
        self._check_number("weight_decay", "a number of at least 0", lambda v: v >= 0)
        self._check_number("intensity_jitter", "a number of at least 0", lambda v: v >= 0)
        self._check_number("dropout", "a number in [0, 1)", lambda v: 0 <= v < 1)
        self._check_number("self_training_confidence", "a number in (0, 1]", lambda v: 0 < v <= 1)
        for name in ("balanced", "augment", "amp"):
            self._check_flag(name, optional=False)
        for name in ("channels_last", "preload", "deterministic", "tta"):
            self._check_flag(name, optional=True)
        self._check_model_options()
        if self.ensemble > 1 and self.model == "ae":
            raise ValueError("TrainConfig.ensemble: an autoencoder learns no classes to average; use ensemble=1.")
        if self.self_training and self.model == "ae":
            raise ValueError("TrainConfig.self_training: an autoencoder gives cells no classes to train on; "
                             "use self_training=0.")

    # -- checks ------------------------------------------------------------------

    def _fail(self, name: str, expected: str) -> None:
        raise ValueError(f"TrainConfig.{name} must be {expected}; got {getattr(self, name)!r}.")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            self._fail(name, f"one of {', '.join(choices)}")

    def _check_integer(self, name: str, *, minimum: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            self._fail(name, f"an integer of at least {minimum}")
        setattr(self, name, int(value))

    def _check_number(self, name: str, expected: str, accept) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not accept(value):
            self._fail(name, expected)
        setattr(self, name, float(value))

    def _check_flag(self, name: str, *, optional: bool) -> None:
        value = getattr(self, name)
        if value is None and optional:
            return
        if not isinstance(value, (bool, np.bool_)):
            self._fail(name, "True, False or None" if optional else "True or False")
        setattr(self, name, bool(value))

    def _check_controls(self) -> None:
        if self.controls in (None, ""):
            self.controls = None
            return
        if not isinstance(self.controls, str):
            self._fail("controls", "COLUMN=VALUE[,VALUE] (e.g. compound=DMSO) or None")
        from ..learn.plates import controls_text  # the one reader of COLUMN=VALUE[,VALUE]

        try:
            self.controls = controls_text(self.controls)
        except ValueError as error:
            raise ValueError(f"TrainConfig.controls: {error}") from None
        if self.normalisation != "plate":
            raise ValueError("TrainConfig.controls needs normalisation='plate' (each plate against its controls).")

    def _check_normalise_within(self) -> None:
        from ..learn.plates import within_columns  # the one reader of COLUMN[,COLUMN]

        value = self.normalise_within
        listed = isinstance(value, (list, tuple)) and all(isinstance(column, str) for column in value)
        if not (value is None or isinstance(value, str) or listed):
            self._fail("normalise_within", "a text 'COLUMN[,COLUMN]' (e.g. 'timepoint') or column names")
        self.normalise_within = ",".join(within_columns(value))
        if self.normalise_within and self.normalisation != "plate":
            raise ValueError("TrainConfig.normalise_within needs normalisation='plate' (groups of each plate).")

    def _check_model_options(self) -> None:
        options = self.model_options
        if options is None:
            options = {}
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            self._fail("model_options", "a dict of hyper-parameter names to values")
        accepted = [n for n in hyperparameter_names(self.model) if n not in DATA_HYPERPARAMETERS]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(
                f"TrainConfig.model_options: model {self.model!r} does not take {', '.join(unknown)}; "
                f"it takes: {', '.join(accepted)}."
            )
        self.model_options = dict(options)

    # -- use -------------------------------------------------------------------

    @property
    def normalise_within_columns(self) -> tuple[str, ...]:
        """The columns of :attr:`normalise_within`.

        Examples
        --------
        >>> TrainConfig(normalise_within=" timepoint , batch").normalise_within_columns
        ('timepoint', 'batch')
        """
        return tuple(self.normalise_within.split(",")) if self.normalise_within else ()

    def network_options(self) -> dict:
        """Hyper-parameters for :func:`napari_hcs.nn.models.build_model` (besides the data's).

        Examples
        --------
        >>> TrainConfig(model="ae", width=1, model_options={"embedding_dim": 16}).network_options()
        {'width': 1, 'embedding_dim': 16}
        """
        if self.model == "ae":
            options = {"width": self.width}
        else:
            options = {"depth": self.depth, "width": self.width, "dropout": self.dropout}
        options.update(self.model_options)
        return options

    def to_dict(self) -> dict:
        """Every option as a JSON-ready dict (field name to value)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["model_options"] = dict(self.model_options)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config from :meth:`to_dict` output (missing options take their defaults).

        Raises
        ------
        ValueError
            When ``values`` names an option that does not exist, or holds a bad value.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"Unknown training option(s) {', '.join(unknown)}; options are: {', '.join(names)}.")
        return cls(**values)

    @classmethod
    def from_meta(cls, meta: dict) -> "TrainConfig":
        """The config a model was trained with, from its metadata (``meta["hyperparameters"]``).

        Entries that are no options (``world_size``) are left out; options that
        an older model does not record take their defaults.

        Examples
        --------
        >>> TrainConfig.from_meta({"hyperparameters": {"model": "cnn1", "world_size": 1}}).model
        'cnn1'
        """
        names = {f.name for f in fields(cls)}
        recorded = meta.get("hyperparameters", {})
        return cls(**{k: v for k, v in recorded.items() if k in names})
