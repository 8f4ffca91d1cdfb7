"""A synthetic vignetted plate (the flat-field test) and the measures of uneven illumination.

:func:`make_vignetted_plate` makes a plate whose every site is a uniform
fluorescent field times a vignette (brightest at the centre, falling towards the
corners, a little off-centre), plus a camera offset and shot noise, and optionally
bright "cells". :func:`flat_field_cv` is the coefficient of variation of a site
(0 for perfectly even illumination), :func:`corner_centre_ratio` the ratio of the
background (a low percentile) in the corner tiles to that in the centre tile.

Examples
--------
>>> plate = make_vignetted_plate(n_sites=2, shape=(64, 64), cells=0)
>>> image = plate.read_site(plate.site("A01"))
>>> image.dtype, image.shape
(dtype('uint16'), (2, 64, 64))
>>> flat_field_cv(image[0]) > 0.1, corner_centre_ratio(image[0]) < 0.8
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..plate import Plate, Site

__all__ = ["VignettedLoader", "corner_centre_ratio", "flat_field_cv", "make_vignetted_plate", "vignette"]


def vignette(shape, *, strength: float = 0.5, centre=(0.45, 0.55)) -> np.ndarray:
    """A smooth vignette of ``shape``: 1 at ``centre`` (fractions of the size), ``1 - strength`` at distance 1.

    Distances are relative to half the diagonal, so the far corner falls by a little
    more than ``strength``.
    """
    y, x = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    cy, cx = centre[0] * (shape[0] - 1), centre[1] * (shape[1] - 1)
    r2 = ((y - cy) ** 2 + (x - cx) ** 2) / (((shape[0] / 2) ** 2 + (shape[1] / 2) ** 2))
    return np.clip(1 - strength * r2, 0.05, None).astype(np.float32)


@dataclass(frozen=True)
class VignettedLoader:
    """``loader(site)``: a uniform field per channel times the vignette, offset, shot noise, cells."""

    shape: tuple[int, int]
    levels: tuple[float, ...]
    offset: float = 100.0
    cells: int = 20
    strength: float = 0.5
    seed: int = 0

    def render(self, site: Site, *, cells: int | None = None) -> np.ndarray:
        """The site's pixels (C, Y, X) uint16; ``cells=0`` renders the bare flat field."""
        key = sum(ord(c) * 31 ** i for i, c in enumerate(site.well)) + 1000 * site.field + site.timepoint
        rng = np.random.default_rng([self.seed, key])
        shade = vignette(self.shape, strength=self.strength)
        n_cells = self.cells if cells is None else cells
        planes = []
        for level in self.levels:
            signal = np.full(self.shape, level, np.float32)
            for _ in range(n_cells):
                cy, cx = rng.uniform(0, self.shape[0]), rng.uniform(0, self.shape[1])
                radius = rng.uniform(0.02, 0.04) * min(self.shape)
                y0, y1 = int(max(0, cy - radius)), int(min(self.shape[0], cy + radius + 1))
                x0, x1 = int(max(0, cx - radius)), int(min(self.shape[1], cx + radius + 1))
                yy, xx = np.mgrid[y0:y1, x0:x1]
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
                signal[y0:y1, x0:x1][inside] += 5 * level
            counts = rng.poisson(signal * shade).astype(np.float32) + self.offset
            planes.append(np.clip(counts, 0, 65535).astype(np.uint16))
        return np.stack(planes)

    def __call__(self, site: Site):
        import dask
        import dask.array as da

        shape = (len(self.levels), *self.shape)
        return da.from_delayed(dask.delayed(self.render)(site), shape=shape, dtype=np.uint16)


def make_vignetted_plate(*, n_sites: int = 8, shape=(256, 256), levels=(2000.0, 8000.0),
                         channels=("DNA", "GFP"), cells: int = 20, strength: float = 0.5, seed: int = 0) -> Plate:
    """A one-well plate (A01) of ``n_sites`` vignetted flat-field sites, uint16.

    Parameters
    ----------
    n_sites : int
        Fields of well A01.
    shape : (int, int)
        Site size.
    levels : tuple of float
        The uniform field's level in each channel (photons at the centre).
    channels : tuple of str
        Channel names, one per level.
    cells : int
        Bright discs per site (5x the field), which the estimate must ignore.
    strength : float
        How far the vignette falls (0.5: to about half at the edges).
    seed : int
    """
    if len(channels) != len(levels):
        raise ValueError(f"{len(channels)} channel names for {len(levels)} levels; give one level per channel.")
    loader = VignettedLoader(shape=tuple(shape), levels=tuple(levels), cells=cells, strength=strength, seed=seed)
    sites = {"A01": [Site("A01", field, 0) for field in range(1, n_sites + 1)]}
    return Plate(name="vignetted", channels=list(channels), sites=sites, loader=loader,
                 shape=tuple(shape), dtype=np.uint16)


def flat_field_cv(plane, *, offset: float = 0.0) -> float:
    """Coefficient of variation (std / mean) of a plane after subtracting ``offset``.

    Examples
    --------
    >>> flat_field_cv(np.array([[90.0, 110.0]]))
    0.1
    """
    values = np.asarray(plane, np.float64) - offset
    return float(values.std() / values.mean())


def corner_centre_ratio(plane, *, tiles: int = 5, percentile: float = 10.0) -> float:
    """Background in the four corner tiles over that in the centre tile (1 when even).

    The plane is cut into ``tiles`` x ``tiles`` tiles; each tile's background is its
    ``percentile``-th percentile; the corners' mean is divided by the centre's.

    Examples
    --------
    >>> corner_centre_ratio(np.ones((50, 50)))
    1.0
    """
    plane = np.asarray(plane, np.float64)
    ty, tx = plane.shape[0] // tiles, plane.shape[1] // tiles
    def tile(i, j):
        return float(np.percentile(plane[i * ty:(i + 1) * ty, j * tx:(j + 1) * tx], percentile))
    last, middle = tiles - 1, tiles // 2
    corners = np.mean([tile(0, 0), tile(0, last), tile(last, 0), tile(last, last)])
    return float(corners / tile(middle, middle))
