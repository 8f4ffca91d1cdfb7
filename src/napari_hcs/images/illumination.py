"""Illumination correction per plate and channel, estimated from all sites, applied by division.

The CellProfiler-style function (``method="cellprofiler"``, the way
CorrectIlluminationCalculate builds one: "Regular" intensities over all images,
bright structures suppressed, averaged, smoothed, rescaled) is estimated per channel:

1. each site's channel is shrunk to a grid of about 128 x 128 blocks, each block
   taking a low percentile (default 10th) of its pixels, which keeps the background
   and drops cells and debris brighter than it;
2. the grids of all sites are averaged by their median (a plate of more than
   ``max_sites`` sites is sampled evenly);
3. the average is smoothed with a Gaussian (default sigma 1/32 of the grid side),
   interpolated back to the site's size and divided by its mean (or by its 2nd
   percentile, CellProfiler's "robust minimum", with ``scale="robust_minimum"``).

CorrectIlluminationApply is :func:`apply_illumination`: each channel divided by its
function (after the dark field is subtracted, for BaSiC), clipped to the range of
the image's dtype and returned in that dtype. ``method="basic"`` fits BaSiC
(flat field and dark field) with :mod:`basicpy`, see
:mod:`napari_hcs.images.basic_illumination`.

Functions are saved in the project under ``illumination/<method>/``: one ``.npy``
per channel (``flatfield_<i>.npy``, ``darkfield_<i>.npy`` for BaSiC) and
``illumination.json`` (channels, plate, sites used, options).

Examples
--------
>>> functions = estimate_illumination(plate, channels=["DAPI"])
>>> functions.channels, functions.flatfield.shape, round(float(functions.flatfield.mean()), 3)
(('DAPI',), (1, 540, 540), 1.0)
>>> image = plate.read_site(plate.site("B02"))[1:2]
>>> corrected = apply_illumination(image, functions)
>>> corrected.dtype == image.dtype, corrected.shape == image.shape
(True, True)
>>> folder = functions.save(tmp_path)
>>> load_illumination(tmp_path, "cellprofiler").channels
('DAPI',)
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..atomic import atomic_path, write_json_atomic
from ..cancel import check_cancel
from ..vocabulary import ILLUMINATION_METHODS

__all__ = [
    "IlluminationFunctions",
    "IlluminationOptions",
    "apply_illumination",
    "estimate_illumination",
    "illumination_dir",
    "load_illumination",
]

#: The side of the grid each site is shrunk to (blocks per axis, about).
GRID_SIDE = 128
META_FILE = "illumination.json"


@dataclass(frozen=True)
class IlluminationOptions:
    """How an illumination function is estimated.

    Attributes
    ----------
    blocks : int
        CellProfiler style: blocks along a site's long side (24: blocks of 45
        pixels on a 1080-pixel site), larger than a cell so that most hold some
        background.
    percentile : float
        Percentile of each block's pixels that stands for its background
        (CellProfiler style).
    sigma : float
        Gaussian smoothing, as a fraction of the grid's side.
    scale : str
        ``"mean"`` (the function averages 1: intensities keep their level) or
        ``"robust_minimum"`` (its 2nd percentile is 1, as CellProfiler rescales).
    max_sites : int
        Most sites read; a larger plate is sampled evenly.
    darkfield : bool
        BaSiC: fit a dark field too.
    """

    blocks: int = 24
    percentile: float = 10.0
    sigma: float = 1 / 32
    scale: str = "mean"
    max_sites: int = 1000
    darkfield: bool = True

    def __post_init__(self) -> None:
        if self.scale not in ("mean", "robust_minimum"):
            raise ValueError(f"scale must be 'mean' or 'robust_minimum'; got {self.scale!r}.")
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"percentile must be within 0 and 100; got {self.percentile}.")
        if self.max_sites < 1:
            raise ValueError(f"max_sites must be at least 1; got {self.max_sites}.")


@dataclass
class IlluminationFunctions:
    """The illumination functions of a plate, one per channel.

    Attributes
    ----------
    method : str
        One of :data:`~napari_hcs.vocabulary.ILLUMINATION_METHODS`.
    channels : tuple of str
        The channels, in the order of the first axis of ``flatfield``.
    flatfield : ndarray (C, Y, X) float32
        What each channel is divided by.
    darkfield : ndarray (C, Y, X) float32 or None
        What is subtracted first (BaSiC), in intensity units.
    provenance : dict
        Plate, sites used, options, CPU seconds.
    """

    method: str
    channels: tuple[str, ...]
    flatfield: np.ndarray
    darkfield: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        self.flatfield = np.asarray(self.flatfield, np.float32)
        if self.flatfield.ndim != 3 or self.flatfield.shape[0] != len(self.channels):
            raise ValueError(f"flatfield must be (C, Y, X) with C = {len(self.channels)} channels; "
                             f"got shape {self.flatfield.shape}.")
        if self.darkfield is not None:
            self.darkfield = np.asarray(self.darkfield, np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.flatfield.shape[1:])

    def select(self, channels: Sequence[str]) -> "IlluminationFunctions":
        """The functions of ``channels`` only, in that order.

        Raises
        ------
        KeyError
            Naming a channel that has no function.
        """
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise KeyError(f"No {self.method} illumination function for channel(s) {', '.join(missing)}; "
                           f"functions exist for {', '.join(self.channels)}.")
        index = [self.channels.index(c) for c in channels]
        dark = None if self.darkfield is None else self.darkfield[index]
        return IlluminationFunctions(self.method, tuple(channels), self.flatfield[index], dark, dict(self.provenance))

    def save(self, project_dir: str | os.PathLike) -> Path:
        """Write the functions to ``<project>/illumination/<method>/`` and return that folder."""
        folder = illumination_dir(project_dir, self.method)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for i, channel in enumerate(self.channels):
            files[channel] = {"flatfield": _save_npy(self.flatfield[i], folder / f"flatfield_{i}.npy")}
            if self.darkfield is not None:
                files[channel]["darkfield"] = _save_npy(self.darkfield[i], folder / f"darkfield_{i}.npy")
        meta = {"method": self.method, "channels": list(self.channels), "shape": list(self.shape),
                "files": files, "provenance": self.provenance}
        write_json_atomic(meta, folder / META_FILE)
        return folder


def _save_npy(array: np.ndarray, path: Path) -> str:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, np.asarray(array, np.float32))
    return path.name


def illumination_dir(project_dir: str | os.PathLike, method: str) -> Path:
    """``<project>/illumination/<method>``."""
    _check_method(method)
    return Path(project_dir) / "illumination" / method


def _check_method(method: str) -> None:
    if method not in ILLUMINATION_METHODS:
        raise ValueError(f"Unknown illumination method {method!r}; choose among {', '.join(ILLUMINATION_METHODS)}.")


def load_illumination(project_dir: str | os.PathLike, method: str) -> IlluminationFunctions:
    """Read the functions saved by :meth:`IlluminationFunctions.save`.

    Raises
    ------
    FileNotFoundError
        If the project holds no functions of that method (saying how to make them).
    """
    folder = illumination_dir(project_dir, method)
    meta_path = folder / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(
            f"No {method} illumination functions in {folder}; estimate them with "
            f"`napari-hcs illumination PLATE --project {project_dir} --illumination-method {method}`."
        )
    meta = json.loads(meta_path.read_text())
    channels = meta["channels"]
    flat = np.stack([np.load(folder / meta["files"][c]["flatfield"]) for c in channels])
    dark = None
    if all("darkfield" in meta["files"][c] for c in channels) and channels:
        dark = np.stack([np.load(folder / meta["files"][c]["darkfield"]) for c in channels])
    return IlluminationFunctions(meta["method"], tuple(channels), flat, dark, meta.get("provenance", {}))


def apply_illumination(image, functions: IlluminationFunctions, *, channels: Sequence[str] | None = None):
    """Divide each channel of ``image`` by its illumination function, keeping the dtype.

    Parameters
    ----------
    image : array (C, Y, X) or (Y, X)
        Pixels; with ``channels`` given, their names (else the functions' channels).
    functions : IlluminationFunctions
        The plate's functions.
    channels : sequence of str, optional
        The image's channels, when they are not exactly the functions' channels.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; integer images are rounded and clipped to the dtype's range.

    Raises
    ------
    ValueError
        If the image's size or channel count differs from the functions'.

    Examples
    --------
    >>> flat = np.array([[[0.5, 1.0], [1.5, 1.0]]], np.float32)
    >>> f = IlluminationFunctions("cellprofiler", ("DNA",), flat)
    >>> apply_illumination(np.array([[[100, 100], [300, 65535]]], np.uint16), f)
    array([[[  200,   100],
            [  200, 65535]]], dtype=uint16)
    """
    image = np.asarray(image)
    if channels is not None:
        functions = functions.select(channels)
    stack = image[None] if image.ndim == 2 else image
    if stack.ndim != 3 or stack.shape[0] != len(functions.channels) or stack.shape[1:] != functions.shape:
        raise ValueError(
            f"Illumination functions are {len(functions.channels)} channel(s) of {functions.shape[0]} x "
            f"{functions.shape[1]} ({', '.join(functions.channels)}); the image is {image.shape}."
        )
    values = stack.astype(np.float32)
    if functions.darkfield is not None:
        values = values - functions.darkfield
    values = values / np.maximum(functions.flatfield, 1e-6)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    out = values.astype(image.dtype)
    return out[0] if image.ndim == 2 else out


# -- estimation --------------------------------------------------------------------------------
def sample_sites(plate, max_sites: int) -> list:
    """Every site of ``plate``, or ``max_sites`` of them spread evenly over it."""
    sites = list(plate.iter_sites())
    if len(sites) <= max_sites:
        return sites
    index = np.unique(np.linspace(0, len(sites) - 1, max_sites).round().astype(int))
    return [sites[i] for i in index]


def block_size(shape: Sequence[int], blocks: int = GRID_SIDE) -> int:
    """Pixels per block side so that a site shrinks to about ``blocks`` blocks along its long side."""
    return max(1, int(np.ceil(max(shape) / blocks)))


def shrink(plane: np.ndarray, block: int, statistic: str | float = "mean") -> np.ndarray:
    """``plane`` shrunk by blocks of ``block`` x ``block`` pixels: their mean or a percentile.

    Examples
    --------
    >>> shrink(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    >>> shrink(np.arange(16.0).reshape(4, 4), 2, 0).tolist()
    [[0.0, 2.0], [8.0, 10.0]]
    """
    plane = np.asarray(plane, np.float32)
    y, x = (s // block * block for s in plane.shape)
    blocks = plane[:y, :x].reshape(y // block, block, x // block, block).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(y // block, x // block, block * block)
    if statistic == "mean":
        return blocks.mean(axis=-1, dtype=np.float32)
    return np.percentile(blocks, float(statistic), axis=-1).astype(np.float32)


def background_grid(plane: np.ndarray, block: int, percentile: float = 10.0, *,
                    min_fraction: float = 0.2) -> np.ndarray:
    """Each block's background: a percentile of its pixels below the plane's Otsu threshold (of log intensities).

    A block with less than ``min_fraction`` of background pixels (inside a cluster
    of cells) is NaN.

    Examples
    --------
    >>> plane = np.full((8, 8), 100.0); plane[:4, :4] = 5000      # a cell fills a block
    >>> background_grid(plane, 4).tolist()
    [[nan, 100.0], [100.0, 100.0]]
    """
    from skimage.filters import threshold_otsu

    plane = np.asarray(plane, np.float32)
    # Otsu on log intensities: the dim parts of cells fall above it, not only their bright cores.
    logs = np.log1p(np.maximum(plane, 0))
    threshold = np.expm1(threshold_otsu(logs)) if logs.max() > logs.min() else np.inf
    y, x = (s // block * block for s in plane.shape)
    blocks = plane[:y, :x].reshape(y // block, block, x // block, block).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(y // block, x // block, block * block)
    background = np.where(blocks <= threshold, blocks, np.nan)
    enough = np.isfinite(background).mean(axis=-1) >= min_fraction
    grid = np.full(enough.shape, np.nan, np.float32)
    if enough.any():
        grid[enough] = np.nanpercentile(background[enough], float(percentile), axis=-1)
    return grid


def read_site_grids(plate, channels: Sequence[str], sites: list, *, statistic, blocks: int = GRID_SIDE,
                    progress=None, cancel=None):
    """Each site's channels shrunk to a grid: an array (N, C, gy, gx) and the sites left out.

    A site that cannot be read, or holds NaN, is left out with its reason.
    """
    index = [plate.channel_index(c) for c in channels]
    block = block_size(plate.shape, blocks)
    grids, skipped = [], []
    for done, site in enumerate(sites, 1):
        check_cancel(cancel, f"Illumination estimate cancelled after {done - 1} of {len(sites)} sites.")
        try:
            pixels = np.asarray(plate.site_array(site)[index], np.float32)
        except Exception as error:  # a bad file must not stop the plate
            skipped.append(f"{site.name}: {error}")
            continue
        if not np.isfinite(pixels).all():
            skipped.append(f"{site.name}: NaN or infinite pixels")
            continue
        reduce = shrink if statistic == "mean" else background_grid
        grids.append(np.stack([reduce(p, block, statistic) for p in pixels]))
        if progress is not None:
            progress(done, len(sites))
    if not grids:
        raise ValueError(f"No site of plate {plate.name!r} could be read for illumination: {'; '.join(skipped)}.")
    return np.stack(grids), skipped


def upsample(grid: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A smooth (gy, gx) grid interpolated (bilinear) to ``shape``."""
    from skimage.transform import resize

    return resize(grid, tuple(shape), order=1, mode="edge", anti_aliasing=False).astype(np.float32)


def _cellprofiler(grids: np.ndarray, shape, options: IlluminationOptions) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # blocks without background in every site
        average = np.nanmedian(grids, axis=0)
    functions = []
    for plane in average:
        valid = np.isfinite(plane)
        if not valid.any():
            raise ValueError("No block of any site shows background (every block is covered by cells); "
                             "use more sites or fewer, larger blocks.")
        sigma = options.sigma * max(plane.shape)
        # Normalised convolution: blocks without background are filled from their neighbours.
        while True:
            weight = gaussian_filter(valid.astype(np.float32), sigma=sigma, mode="nearest")
            if (weight > 1e-3).all():
                break
            sigma *= 2
        smooth = gaussian_filter(np.where(valid, plane, 0), sigma=sigma, mode="nearest") / weight
        full = upsample(smooth, shape)
        level = full.mean() if options.scale == "mean" else np.percentile(full, 2)
        functions.append(full / max(float(level), 1e-12))
    return np.stack(functions)


def estimate_illumination(
    plate,
    *,
    channels: Sequence[str] | None = None,
    method: str = "cellprofiler",
    options: IlluminationOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> IlluminationFunctions:
    """Estimate the illumination function of each channel from a plate's sites.

    Parameters
    ----------
    plate : Plate
        The plate; its sites are read once (up to ``options.max_sites``).
    channels : sequence of str, optional
        Channels to estimate; default all.
    method : str
        ``"cellprofiler"`` (default) or ``"basic"`` (needs :mod:`basicpy`).
    options : IlluminationOptions, optional
    progress : callable, optional
        ``progress(done, total)`` after each site read.
    cancel : callable or Event, optional

    Raises
    ------
    ValueError
        For an unknown method or channel, or when no site can be read.
    ImportError
        For ``"basic"`` without basicpy, saying how to install it.
    """
    import time

    _check_method(method)
    options = options or IlluminationOptions()
    channels = tuple(plate.channels if channels is None else channels)
    for channel in channels:
        plate.channel_index(channel)
    if method == "basic":
        from .basic_illumination import require_basicpy

        require_basicpy()
    started = time.process_time()
    sites = sample_sites(plate, options.max_sites)
    cellprofiler = method == "cellprofiler"
    blocks = options.blocks if cellprofiler else GRID_SIDE
    grids, skipped = read_site_grids(plate, channels, sites, statistic=options.percentile if cellprofiler else "mean",
                                     blocks=blocks, progress=progress, cancel=cancel)
    read_seconds = time.process_time() - started
    dark = None
    if method == "cellprofiler":
        flat = _cellprofiler(grids, plate.shape, options)
    else:
        from .basic_illumination import fit_basic

        flat, dark = fit_basic(grids, plate.shape, darkfield=options.darkfield, cancel=cancel)
    provenance = {
        "plate": plate.name, "source": plate.source, "n_sites": int(len(grids)), "n_sites_on_plate": plate.n_sites(),
        "skipped": skipped, "options": asdict(options), "block": block_size(plate.shape, blocks),
        "cpu_seconds": round(time.process_time() - started, 3), "cpu_seconds_reading": round(read_seconds, 3),
    }
    return IlluminationFunctions(method, channels, flat, dark, provenance)
