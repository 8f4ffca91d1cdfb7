"""Per-plate intensity normalisation of crops: each plate by its own statistics, or its controls'.

A plate imaged brighter than another shifts every pixel of its cells, and a
network normalised with one set of statistics sees that shift as phenotype.
:class:`PlateNormaliser` holds, per plate, the per-channel mean and standard
deviation of its cells' crops (all cells, or the control cells named by
``controls="COLUMN=VALUE"``) and normalises every crop with its own plate's.
The statistics of the training plates are stored in the model
(``meta["normalisation"]``); a plate the model has not seen gets its statistics
from its own cells when it is predicted (:meth:`PlateNormaliser.extend`), which
is what makes a model trained on one plate transfer to another.

Examples
--------
>>> crops = np.concatenate([np.full((4, 1, 2, 2), 10.0), np.full((4, 1, 2, 2), 30.0)])
>>> crops[::2] += 2.0
>>> table = pd.DataFrame({"crop_index": range(8), "plate": ["P1"] * 4 + ["P2"] * 4})
>>> normaliser = PlateNormaliser.fit(table, crops)
>>> sorted(normaliser.stats), [round(s["mean"][0], 1) for s in normaliser.stats.values()]
(['P1', 'P2'], [11.0, 31.0])
>>> [round(float(v), 2) for v in normaliser(crops[[0, 4]], np.array([0, 4]))[:, 0, 0, 0]]
[0.97, 0.97]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cancel import check_cancel
from ..vocabulary import CROP_INDEX
from .crop_reader import CropReader
from .preprocess import Preprocess, channel_statistics

__all__ = ["MAX_CELLS_PER_PLATE", "PlateNormaliser", "negative_pixel_notes"]

#: Cells sampled per plate for its statistics (more change them by far less than a plate effect).
MAX_CELLS_PER_PLATE = 20_000


@dataclass
class PlateNormaliser:
    """Per-plate, per-channel mean and standard deviation, and the plate of each crop.

    Parameters
    ----------
    controls : str, optional
        ``"COLUMN=VALUE[,VALUE]"``: the statistics of a plate come from its
        control cells (e.g. ``"compound=DMSO"``); None: from all its cells.
    stats : dict
        ``{plate: {"mean": [...], "std": [...], "cells": n}}``.
    within : tuple of str
        Columns dividing each plate into groups with statistics of their own
        (``("timepoint",)``: each timepoint of a time course); the keys of
        ``stats`` are then ``"P1 (timepoint=3)"``
        (:func:`~napari_hcs.learn.plates.plate_keys`).
    intensity : {"linear", "log"}
        The crops as stored, or ``log(1 + x)`` of each pixel (negative ones as
        0) before the statistics and the normalisation.
    """

    controls: str | None = None
    stats: dict[str, dict] = field(default_factory=dict)
    within: tuple[str, ...] = ()
    intensity: str = "linear"

    def __post_init__(self) -> None:
        self._plate_of = np.full(0, -1, dtype=np.int64)
        self._moments = None

    # -- statistics ------------------------------------------------------------

    @classmethod
    def fit(cls, table: pd.DataFrame, crops, *, controls: str | None = None, within=(), intensity: str = "linear",
            seed: int = 0, cancel=None, describe=None) -> "PlateNormaliser":
        """Compute the statistics of every plate of ``table`` and map its crops to their plates.

        Parameters
        ----------
        table : DataFrame
            Cell table with ``crop_index`` (and ``plate``; without it all cells
            form one plate, and the ``controls`` column when given).
        crops : zarr.Array or numpy.ndarray
            The ``(N, C, S, S)`` crop store.
        controls : str, optional
            ``"COLUMN=VALUE[,VALUE]"`` naming each plate's control cells.
        within : sequence of str
            Columns dividing each plate into groups normalised on their own.
        intensity : {"linear", "log"}
            The scale of the intensities (see the class).
        seed : int
            Seed of the sample of at most :data:`MAX_CELLS_PER_PLATE` cells per plate.
        cancel : callable or threading.Event, optional
            Checked between batches.
        describe : callable, optional
            ``describe(crop_index) -> str`` naming a cell whose crop holds NaN pixels.

        Raises
        ------
        KeyError, ValueError
            A missing plate, ``within`` or controls column, control values
            that do not occur, a plate without control cells (naming it).
        """
        normaliser = cls(controls=controls, within=tuple(within), intensity=intensity)
        normaliser._add_plates(table, crops, seed=seed, cancel=cancel, describe=describe)
        normaliser.assign(table)
        return normaliser

    def extend(self, table: pd.DataFrame, crops, *, channels: list[int] | None = None, seed: int = 0,
               cancel=None) -> "PlateNormaliser":
        """A copy that also knows the plates of ``table`` it had not seen, and maps its crops.

        The plates of the model keep their stored statistics; every other plate
        gets its own, from its cells in ``table`` (its control cells when the
        model was trained against controls). ``channels`` picks the stored
        channels that are the model's, in its order.

        Examples
        --------
        >>> trained = PlateNormaliser(stats={"P1": {"mean": [10.0], "std": [2.0], "cells": 50}})
        >>> crops = np.full((3, 1, 2, 2), 40.0)
        >>> crops[0] += 2.0
        >>> table = pd.DataFrame({"crop_index": [0, 1, 2], "plate": ["P2"] * 3})
        >>> new = trained.extend(table, crops)
        >>> new.plates, round(new.stats["P2"]["mean"][0], 2), trained.plates
        (['P1', 'P2'], 40.67, ['P1'])
        """
        extended = PlateNormaliser(controls=self.controls, stats=dict(self.stats), within=self.within,
                                   intensity=self.intensity)
        plates = self.keys(table)
        new = ~plates.isin(list(self.stats))
        if new.any():
            extended._add_plates(table[new.to_numpy()], crops, seed=seed, cancel=cancel, channels=channels)
        extended.assign(table)
        return extended

    def _add_plates(self, table: pd.DataFrame, crops, *, seed: int, cancel, channels=None, describe=None) -> None:
        from ..learn.plates import control_mask

        plates = self.keys(table)
        use = control_mask(table, self.controls, within=self.within).to_numpy()
        crop_index = table[CROP_INDEX].to_numpy(dtype=np.int64)
        negative = _NegativePixels(counting=self.intensity == "log")
        reader = CropReader(crops, cache_chunks=2, channels=channels, describe=describe,
                            normalise=lambda raw, _: self.scaled(negative.count(raw)))
        identity = Preprocess(crop_size=int(crops.shape[-1]))
        rng = np.random.default_rng(seed)
        for plate in sorted(plates.unique()):
            check_cancel(cancel, "Computing the plate statistics was cancelled.")
            rows = np.unique(crop_index[use & (plates == plate).to_numpy()])
            if len(rows) > MAX_CELLS_PER_PLATE:
                rows = np.sort(rng.choice(rows, MAX_CELLS_PER_PLATE, replace=False))
            negative.reset()
            mean, std = channel_statistics(reader, rows, identity, cancel=cancel)
            self.stats[plate] = {"mean": mean, "std": std, "cells": int(len(rows)), **negative.share()}
            negative.warn(plate)

    def assign(self, table: pd.DataFrame) -> None:
        """Map the crops of ``table`` to their plates (every plate must have statistics)."""
        plates = self.keys(table)
        unknown = sorted(set(plates.unique()) - set(self.stats))
        if unknown:
            raise ValueError(f"No normalisation statistics for plate(s) {', '.join(unknown)}; "
                             "extend the normaliser with their cells first.")
        names = sorted(self.stats)
        codes = pd.Categorical(plates, categories=names).codes.astype(np.int64)
        crop_index = table[CROP_INDEX].to_numpy(dtype=np.int64)
        plate_of = np.full(int(crop_index.max()) + 1 if len(crop_index) else 0, -1, dtype=np.int64)
        plate_of[crop_index] = codes
        self._plate_of = plate_of
        mean = np.array([self.stats[n]["mean"] for n in names], dtype=np.float32)
        std = np.array([self.stats[n]["std"] for n in names], dtype=np.float32)
        self._moments = (mean[:, :, None, None], std[:, :, None, None])

    # -- use -------------------------------------------------------------------

    def __call__(self, raw: np.ndarray, crop_indices) -> np.ndarray:
        """Return the crops normalised with their plates' statistics, as float32."""
        crop_indices = np.asarray(crop_indices, dtype=np.int64)
        codes = np.full(len(crop_indices), -1, dtype=np.int64)
        inside = (crop_indices >= 0) & (crop_indices < len(self._plate_of))
        codes[inside] = self._plate_of[crop_indices[inside]]
        if (codes < 0).any():
            missing = int(crop_indices[np.argmax(codes < 0)])
            raise ValueError(f"Crop {missing} has no plate in the cell table given for normalisation.")
        mean, std = self._moments
        return ((self.scaled(raw) - mean[codes]) / std[codes]).astype(np.float32, copy=False)

    def scaled(self, raw: np.ndarray) -> np.ndarray:
        """The crops on the scale of the statistics, as float32 (``log(1 + x)`` with ``intensity="log"``).

        Examples
        --------
        >>> PlateNormaliser(intensity="log").scaled(np.array([-1.0, 0.0, np.e - 1])).round(3).tolist()
        [0.0, 0.0, 1.0]
        """
        values = raw.astype(np.float32)
        if self.intensity == "log":
            return np.log1p(np.maximum(values, 0.0, out=values), out=values)
        return values

    def keys(self, table: pd.DataFrame) -> pd.Series:
        """The plate (with ``within``, the plate and group) of each row of ``table``, as text."""
        from ..learn.plates import plate_keys

        return plate_keys(table, within=self.within).astype(str).reset_index(drop=True)

    @property
    def plates(self) -> list[str]:
        """The plates with statistics, sorted."""
        return sorted(self.stats)

    def to_meta(self) -> dict:
        """JSON-ready form, as stored in a model (``meta["normalisation"]``)."""
        return {"method": "plate", "controls": self.controls, "within": list(self.within), "intensity": self.intensity,
                "plates": {p: {"mean": [float(v) for v in s["mean"]], "std": [float(v) for v in s["std"]],
                               "cells": int(s.get("cells", 0)),
                               **({"negative_pixels": float(s["negative_pixels"])} if s.get("negative_pixels") else {})}
                           for p, s in sorted(self.stats.items())}}

    @classmethod
    def from_meta(cls, meta: dict | None) -> "PlateNormaliser | None":
        """Rebuild from :meth:`to_meta`; None for a model normalised globally (or trained before plates)."""
        if not meta or meta.get("method") != "plate":
            return None
        return cls(controls=meta.get("controls"), stats={p: dict(s) for p, s in meta.get("plates", {}).items()},
                   within=tuple(meta.get("within") or ()), intensity=meta.get("intensity") or "linear")


class _NegativePixels:
    """Counts the negative pixels that log intensities read as 0, to tell the user of a plate that has them."""

    def __init__(self, *, counting: bool):
        self.counting = counting
        self.reset()

    def reset(self) -> None:
        self.negative = self.total = 0

    def count(self, raw: np.ndarray) -> np.ndarray:
        if self.counting:
            self.negative += int(np.count_nonzero(raw < 0))
            self.total += int(raw.size)
        return raw

    def share(self) -> dict:
        """``{"negative_pixels": fraction}`` when the plate had any, else nothing (stored with its statistics)."""
        return {"negative_pixels": self.negative / self.total} if self.negative else {}

    def warn(self, plate: str) -> None:
        if self.negative:
            warnings.warn(_negative_words(plate, self.negative / self.total), UserWarning, stacklevel=2)


def negative_pixel_notes(meta: dict | None) -> list[str]:
    """What to tell the user of the plates whose negative pixels log intensities read as 0.

    Parameters
    ----------
    meta : dict or None
        A model's ``meta["normalisation"]`` (:meth:`PlateNormaliser.to_meta`).

    Examples
    --------
    >>> notes = negative_pixel_notes({"plates": {"P1": {"negative_pixels": 0.25}, "P2": {}}})
    >>> len(notes), notes[0][:37]
    (1, 'Plate P1: 25.0% of the pixels sampled')
    """
    plates = (meta or {}).get("plates") or {}
    return [_negative_words(plate, stats["negative_pixels"]) for plate, stats in sorted(plates.items())
            if stats.get("negative_pixels")]


def _negative_words(plate: str, fraction: float) -> str:
    return (f"Plate {plate}: {fraction:.1%} of the pixels sampled for its statistics are negative; "
            "log intensities read them as 0 (intensity='linear' keeps them).")
