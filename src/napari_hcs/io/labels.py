"""The one label store: segmentation labels of each site, kept in the project folder.

:class:`LabelStore` keeps one zlib-compressed TIFF per site and label name,
``<project>/labels/<site key>/<name>.tif``, written atomically. Labels are
stored as ``uint16``, or ``uint32`` past 65,535 objects (:func:`label_dtype`),
and read back as ``int32``. Labels that a plate carries itself (the NGFF
image-labels of an OME-Zarr input) belong to the plate and are read with
``plate.site_labels(site)``.

Examples
--------
>>> store = LabelStore(tmp_path)
>>> nuclei = np.zeros((4, 6), dtype=np.int32)
>>> nuclei[1:3, 1:3] = 7
>>> store.write(Site("B04", 1, 2), {"nuclei": nuclei})
>>> store.path(Site("B04", 1, 2), "nuclei").relative_to(tmp_path).as_posix()
'labels/B04_f001_t002/nuclei.tif'
>>> int(store.read(Site("B04", 1, 2))["nuclei"].max())
7
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from ..plate import Site
from ..atomic import atomic_path

__all__ = ["LabelStore", "label_dtype", "read_label_image", "site_key", "write_label_image"]

_UINT16_MAX = np.iinfo(np.uint16).max


def site_key(well: str, field: int, timepoint: int) -> str:
    """Return the file-name key of a site, e.g. ``B04_f001_t000``.

    Examples
    --------
    >>> site_key("B04", 1, 0)
    'B04_f001_t000'
    """
    return f"{well}_f{int(field):03d}_t{int(timepoint):03d}"


def label_dtype(labels: np.ndarray) -> np.dtype:
    """Return the storage type of a label image: uint16, or uint32 past 65,535 objects.

    Examples
    --------
    >>> label_dtype(np.array([0, 65535])), label_dtype(np.array([0, 65536]))
    (dtype('uint16'), dtype('uint32'))
    """
    largest = int(np.asarray(labels).max(initial=0))
    return np.dtype(np.uint32 if largest > _UINT16_MAX else np.uint16)


def write_label_image(labels: np.ndarray, path: str | os.PathLike) -> int:
    """Write instance labels as a zlib-compressed TIFF, atomically; return the largest label.

    Examples
    --------
    >>> write_label_image(np.array([[0, 3], [3, 5]]), tmp_path / "nuclei.tif")
    5
    """
    labels = np.asarray(labels)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(label_dtype(labels)), compression="zlib")
    return int(labels.max(initial=0))


def read_label_image(path: str | os.PathLike) -> np.ndarray:
    """Read a label TIFF as an ``int32`` array."""
    return tifffile.imread(path).astype(np.int32)


class LabelStore:
    """Label images of the sites of a project, one TIFF per site and name.

    Parameters
    ----------
    folder : path
        The project folder; labels go under its ``labels`` folder.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @property
    def root(self) -> Path:
        """The folder holding one subfolder per site."""
        return self.folder / "labels"

    def site_folder(self, site: Site) -> Path:
        return self.root / site_key(site.well, site.field, site.timepoint)

    def path(self, site: Site, name: str) -> Path:
        """Return the file of one label image of a site (whether it exists or not)."""
        return self.site_folder(site) / f"{name}.tif"

    def names(self, site: Site) -> list[str]:
        """Return the names of the label images stored for a site, sorted."""
        folder = self.site_folder(site)
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.tif") if not p.name.startswith("."))

    def write(self, site: Site, labels: dict[str, np.ndarray]) -> None:
        """Store label images of a site, name -> ``(Y, X)`` instance labels (replacing them)."""
        for name, array in labels.items():
            write_label_image(array, self.path(site, name))

    def read(self, site: Site, names: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Return stored label images of a site, name -> ``(Y, X)`` int32 array.

        Parameters
        ----------
        site : Site
            The site.
        names : sequence of str, optional
            Only these names (those not stored are left out); every stored one by default.
        """
        wanted = self.names(site) if names is None else [n for n in names if self.path(site, n).is_file()]
        return {name: read_label_image(self.path(site, name)) for name in wanted}
