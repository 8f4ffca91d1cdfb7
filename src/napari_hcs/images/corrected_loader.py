"""Illumination-corrected pixels on the fly: a picklable loader around a plate's own.

:func:`corrected_plate` returns a copy of a plate whose loader divides every
channel read by its illumination function (saved in the project under
``illumination/<method>/``), so segmentation, crops, training and display all see
corrected pixels. The loader holds only the inner loader, the folder of the
functions and channel names: the plate still pickles small and worker processes
read the functions from the folder (once per process). Channels without a
function pass through unchanged. A corrected plate has no stored pyramid (the
display reads full resolution).

Whether the project's plate is corrected is recorded in project.json under
``illumination`` (``{"method": ..., "applied": true}``; off by default), see
:func:`record_illumination`; :meth:`napari_hcs.project.Project.open_plate` honours it.

Examples
--------
>>> import pickle
>>> from napari_hcs.images.illumination import estimate_illumination
>>> estimate_illumination(plate).save(tmp_path)
PosixPath(...)
>>> corrected = corrected_plate(plate, tmp_path, "cellprofiler")
>>> copy = pickle.loads(pickle.dumps(corrected))
>>> site = plate.site("B02")
>>> pixels = copy.read_site(site)
>>> pixels.dtype == plate.dtype, bool((pixels != plate.read_site(site)).any())
(True, True)
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..vocabulary import ILLUMINATION_METHODS
from .illumination import META_FILE, IlluminationFunctions, illumination_dir, load_illumination

__all__ = ["CorrectedLoader", "corrected_plate", "illumination_setting", "raw_plate", "record_illumination",
           "with_project_illumination"]


@functools.lru_cache(maxsize=8)
def _functions(folder: str, method: str, version: float) -> IlluminationFunctions:
    # ``version`` (the file's mtime) makes functions saved again be read again.
    return load_illumination(Path(folder).parents[1], method)


def _current(folder: str, method: str) -> IlluminationFunctions:
    meta = Path(folder) / META_FILE
    try:
        version = meta.stat().st_mtime
    except FileNotFoundError:
        raise FileNotFoundError(f"Illumination functions {meta} are missing; estimate them again.") from None
    return _functions(folder, method, version)


def _correct_block(block: np.ndarray, *, folder: str, method: str, channels: tuple[str, ...],
                   block_info=None) -> np.ndarray:
    from .illumination import apply_illumination

    functions = _current(folder, method)
    (c0, c1), (y0, y1), (x0, x1) = block_info[0]["array-location"]
    out = np.array(block, copy=True)
    for local, channel in enumerate(channels[c0:c1]):
        if channel in functions.channels:
            single = functions.select([channel])
            sliced = IlluminationFunctions(
                method, (channel,), single.flatfield[:, y0:y1, x0:x1],
                None if single.darkfield is None else single.darkfield[:, y0:y1, x0:x1],
            )
            out[local] = apply_illumination(block[local:local + 1], sliced)[0]
    return out


@dataclass(frozen=True)
class CorrectedLoader:
    """``loader(site)``: the inner loader's ``(C, Y, X)`` pixels divided by the illumination functions.

    Attributes
    ----------
    loader : callable
        The plate's own loader.
    folder : str
        ``<project>/illumination/<method>``.
    method : str
        The method the functions were made with.
    channels : tuple of str
        The plate's channels, in order.
    """

    loader: Callable
    folder: str
    method: str
    channels: tuple[str, ...]

    def __call__(self, site):
        array = self.loader(site)
        correct = functools.partial(_correct_block, folder=self.folder, method=self.method, channels=self.channels)
        return array.map_blocks(correct, dtype=array.dtype)


def corrected_plate(plate, project_dir: str | os.PathLike, method: str = "cellprofiler"):
    """A copy of ``plate`` that reads illumination-corrected pixels (same dtype).

    Raises
    ------
    FileNotFoundError
        If the project holds no functions of ``method``.
    ValueError
        If the functions were made for sites of another size, or for none of the
        plate's channels.
    """
    functions = load_illumination(project_dir, method)
    folder = illumination_dir(project_dir, method)
    if functions.shape != tuple(plate.shape):
        raise ValueError(
            f"Illumination functions in {folder} are {functions.shape[0]} x {functions.shape[1]}; the sites of "
            f"plate {plate.name!r} are {plate.shape[0]} x {plate.shape[1]}. Estimate them again for this plate."
        )
    if not set(functions.channels) & set(plate.channels):
        raise ValueError(f"Illumination functions in {folder} are for channels {', '.join(functions.channels)}; "
                         f"plate {plate.name!r} has {', '.join(plate.channels)}.")
    loader = CorrectedLoader(plate.loader, str(folder.resolve()), method, tuple(plate.channels))
    return dataclasses.replace(plate, loader=loader, pyramid_loader=None)


def raw_plate(plate):
    """The plate as read without correction (``plate`` itself when it is not corrected)."""
    if isinstance(plate.loader, CorrectedLoader):
        return dataclasses.replace(plate, loader=plate.loader.loader)
    return plate


def illumination_setting(meta: dict) -> dict:
    """The project's illumination setting (project.json ``illumination``), off by default.

    Examples
    --------
    >>> illumination_setting({})
    {'method': 'cellprofiler', 'applied': False}
    """
    setting = dict(meta.get("illumination") or {})
    return {"method": setting.get("method", ILLUMINATION_METHODS[0]), "applied": bool(setting.get("applied", False))}


def record_illumination(project_dir: str | os.PathLike, *, method: str, applied: bool) -> dict:
    """Record in project.json whether the project's plate is read corrected, and by which method.

    Raises
    ------
    FileNotFoundError
        When ``applied`` but the project holds no functions of ``method``.
    """
    from ..project import Project

    if applied and not (illumination_dir(project_dir, method) / META_FILE).exists():
        load_illumination(project_dir, method)  # raises, saying how to make them
    return Project(project_dir).update_meta(illumination={"method": method, "applied": bool(applied)})


def with_project_illumination(plate, project_dir: str | os.PathLike, meta: dict):
    """``plate`` corrected (once) when project.json records illumination applied, else its raw pixels."""
    setting = illumination_setting(meta)
    if not setting["applied"]:
        return raw_plate(plate)
    if isinstance(plate.loader, CorrectedLoader):  # corrected already: never twice
        return plate
    return corrected_plate(plate, project_dir, setting["method"])
