"""Generated plates with known phenotype classes, for tests and demos at any size.

Each well gets a class; cells of different classes differ in nucleus size and
shape, cytoplasm intensity and the texture (spots) of a marker channel, so that
both classical features and CNNs can tell the classes apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..plate import Plate, Site, well_name

__all__ = ["DEFAULT_CLASSES", "PhenotypeClass", "SyntheticLoader", "make_synthetic_plate", "render_site"]


@dataclass(frozen=True)
class PhenotypeClass:
    """Appearance of the cells of one class.

    Attributes
    ----------
    name : str
    nucleus_radius : float
        Mean nucleus radius in pixels.
    elongation : float
        Major / minor axis ratio of nuclei and cells.
    cytoplasm_intensity : float
        Mean cytoplasm brightness (0-1).
    spots : int
        Number of bright spots per cell in the marker channel (texture).
    """

    name: str
    nucleus_radius: float
    elongation: float
    cytoplasm_intensity: float
    spots: int


DEFAULT_CLASSES = (
    PhenotypeClass("control", 7.0, 1.1, 0.30, 0),
    PhenotypeClass("enlarged", 10.0, 1.2, 0.45, 2),
    PhenotypeClass("elongated", 7.0, 2.2, 0.25, 6),
    PhenotypeClass("spotty", 6.0, 1.0, 0.60, 12),
)
CHANNELS = ["DNA", "cytoplasm", "marker"]


def render_site(
    phenotype: PhenotypeClass,
    *,
    shape: tuple[int, int] = (256, 256),
    n_cells: int = 30,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one site of cells of a class.

    Returns
    -------
    image : ndarray
        ``(3, Y, X)`` uint16 image: DNA, cytoplasm, marker.
    nuclei : ndarray
        ``(Y, X)`` int32 ground-truth nucleus labels.
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    nuclei = np.zeros(shape, np.int32)
    cytoplasm = np.zeros(shape, np.float32)
    marker = np.zeros(shape, np.float32)
    centres = []
    spacing = phenotype.nucleus_radius * 2.6 * max(phenotype.elongation, 1.0) ** 0.5
    for _ in range(n_cells * 20):
        if len(centres) == n_cells:
            break
        centre = rng.uniform(phenotype.nucleus_radius, np.array(shape) - phenotype.nucleus_radius)
        if centres and np.min(np.hypot(*(np.array(centres) - centre).T)) < spacing:
            continue
        centres.append(centre)
        label = len(centres)
        radius = phenotype.nucleus_radius * rng.uniform(0.85, 1.15)
        angle = rng.uniform(0, np.pi)
        dy, dx = ys - centre[0], xs - centre[1]
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        a, b = radius * phenotype.elongation**0.5, radius / phenotype.elongation**0.5
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        nuclei[inside & (nuclei == 0)] = label
        cell = (u / (2 * a)) ** 2 + (v / (2 * b)) ** 2 <= 1
        cytoplasm[cell] = np.maximum(cytoplasm[cell], phenotype.cytoplasm_intensity * rng.uniform(0.8, 1.2))
        for _ in range(phenotype.spots):
            r = rng.uniform(0, 1.6 * a)
            t = rng.uniform(0, 2 * np.pi)
            sy = int(np.clip(centre[0] + r * np.sin(t), 0, shape[0] - 1))
            sx = int(np.clip(centre[1] + r * np.cos(t), 0, shape[1] - 1))
            marker[sy, sx] += 1.0
    dna = ndi.gaussian_filter((nuclei > 0).astype(np.float32), 1.0) * 0.8
    marker = ndi.gaussian_filter(marker, 1.5) * 12 + 0.2 * ndi.gaussian_filter(cytoplasm, 2)
    cytoplasm = ndi.gaussian_filter(cytoplasm, 1.5)
    image = np.stack([dna, cytoplasm, marker])
    image += rng.normal(0.02, 0.01, image.shape).astype(np.float32)
    image = np.clip(image, 0, 1) * 60000
    return image.astype(np.uint16), nuclei


def _render_pixels(phenotype: PhenotypeClass, shape: tuple[int, int], n_cells: int, seed: int) -> np.ndarray:
    return render_site(phenotype, shape=shape, n_cells=n_cells, seed=seed)[0]


@dataclass(frozen=True)
class SyntheticLoader:
    """``loader(site)``: a site of a generated plate, drawn when computed.

    Attributes
    ----------
    classes : dict of str to PhenotypeClass
        The class of each well, in well order.
    shape : (int, int)
        ``(Y, X)`` of every site.
    n_cells : int
        Cells per site.
    seed : int
        Seed of the plate; each site draws from its own seed derived from it.
    """

    classes: dict[str, PhenotypeClass]
    shape: tuple[int, int]
    n_cells: int
    seed: int

    def site_seed(self, site: Site) -> int:
        return self.seed * 1_000_003 + list(self.classes).index(site.well) * 1009 + site.field

    def __call__(self, site: Site) -> da.Array:
        render = dask.delayed(_render_pixels)(
            self.classes[site.well], self.shape, self.n_cells, self.site_seed(site)
        )
        return da.from_delayed(render, shape=(3, *self.shape), dtype=np.uint16)


def make_synthetic_plate(
    *,
    n_rows: int = 2,
    n_columns: int = 4,
    n_sites: int = 2,
    shape: tuple[int, int] = (256, 256),
    n_cells: int = 30,
    classes: tuple[PhenotypeClass, ...] = DEFAULT_CLASSES,
    layout: tuple[int, int] = (8, 12),
    seed: int = 0,
) -> Plate:
    """Return a lazily rendered plate whose wells carry known classes.

    Wells ``A01``.. are filled row-major for ``n_rows`` x ``n_columns``; the class
    of a well cycles through ``classes`` by column, and is stored in the
    annotation column ``class``. Pixels are drawn only when a site is read.

    Examples
    --------
    >>> plate = make_synthetic_plate(n_rows=1, n_columns=2, n_sites=1)
    >>> plate.wells, plate.annotations["class"].tolist()
    (['A01', 'A02'], ['control', 'enlarged'])
    """
    wells = [well_name(r, c) for r in range(n_rows) for c in range(n_columns)]
    well_class = {w: classes[i % n_columns % len(classes)] for i, w in enumerate(wells)}
    sites = {w: [Site(w, f, 0) for f in range(n_sites)] for w in wells}
    annotations = pd.DataFrame({"class": [well_class[w].name for w in wells]},
                               index=pd.Index(wells, name="well"))
    return Plate(
        name="synthetic",
        channels=list(CHANNELS),
        sites=sites,
        loader=SyntheticLoader(classes=well_class, shape=tuple(shape), n_cells=n_cells, seed=seed),
        shape=shape,
        dtype=np.uint16,
        layout=layout,
        pixel_size=0.65,
        source=None,
        annotations=annotations,
    )
