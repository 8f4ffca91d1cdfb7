"""BaSiC illumination correction (flat field and dark field) through :mod:`basicpy`.

BaSiC (Peng et al. 2017) models every image of a channel as ``I = B * F + D``: a
flat field ``F`` and a dark field ``D`` shared by all sites, found by sparse and
low-rank decomposition of the stack of sites. :func:`fit_basic` fits one
:class:`basicpy.BaSiC` per channel on the sites shrunk to about 128 x 128 (block
means; BaSiC works at 128 x 128 anyway) and interpolates the fields back to the
site's size. The flat field is scaled to mean 1.

basicpy is optional. Its own requirements pin ``scipy<1.13`` (and so an older
numpy), while it runs with the numpy and scipy napari-hcs uses; install it without
its pins::

    pip install --no-deps basicpy torch-dct "hyperactive<5" gradient-free-optimizers

(torch, pydantic, pooch, scikit-image and dask come with napari-hcs already).

Examples
--------
>>> isinstance(basicpy_available(), bool)
True
>>> BASICPY_INSTALL.split()[:3]
['pip', 'install', '--no-deps']
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np

from ..cancel import check_cancel

__all__ = ["BASICPY_INSTALL", "basicpy_available", "fit_basic", "require_basicpy"]

#: How to install basicpy alongside napari-hcs's numpy and scipy.
BASICPY_INSTALL = 'pip install --no-deps basicpy torch-dct "hyperactive<5" gradient-free-optimizers'


def basicpy_available() -> bool:
    """True when basicpy imports."""
    try:
        require_basicpy()
    except ImportError:
        return False
    return True


def require_basicpy():
    """Return basicpy's ``BaSiC`` class, or raise ImportError saying how to install it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from basicpy import BaSiC
    except ImportError as error:
        raise ImportError(
            f"The 'basic' illumination method needs basicpy, which is not installed ({error}). "
            f"Install it with: {BASICPY_INSTALL}  -- or use --illumination-method cellprofiler."
        ) from error
    return BaSiC


def fit_basic(grids: np.ndarray, shape, *, darkfield: bool = True, cancel=None):
    """Fit BaSiC on each channel of shrunk sites; return the flat and dark fields at ``shape``.

    Parameters
    ----------
    grids : ndarray (N, C, gy, gx)
        The sites of the plate, shrunk by block means.
    shape : (int, int)
        The site's size.
    darkfield : bool
        Fit the dark field too (else it is zero).
    cancel : callable or Event, optional
        Checked between channels.

    Returns
    -------
    flatfield, darkfield : ndarray (C, Y, X) float32
        The flat field scaled to mean 1, and the dark field in intensity units.
    """
    from .illumination import upsample

    BaSiC = require_basicpy()
    logging.getLogger("basicpy").setLevel(logging.WARNING)
    flats, darks = [], []
    for channel in range(grids.shape[1]):
        check_cancel(cancel, f"BaSiC cancelled before channel {channel + 1} of {grids.shape[1]}.")
        stack = np.asarray(grids[:, channel], np.float64)
        model = BaSiC(get_darkfield=darkfield, working_size=list(stack.shape[1:]), device="cpu")
        model.fit(stack)
        flat = np.asarray(model.flatfield, np.float32).reshape(stack.shape[1:])
        dark = np.asarray(model.darkfield, np.float32).reshape(stack.shape[1:]) if darkfield \
            else np.zeros(stack.shape[1:], np.float32)
        level = float(flat.mean())
        flats.append(upsample(flat / max(level, 1e-12), shape))
        # The dark field is additive: it keeps its units whatever the flat field's scale.
        darks.append(upsample(dark, shape))
    return np.stack(flats), np.stack(darks)
