"""Plate / Well / Site model of a high-content screening plate.

A :class:`Plate` knows its layout (rows x columns), wells, the sites (fields and
timepoints) of each well, its named channels and pixel size, and per-well
annotations. Pixels are read lazily: opening a plate reads no pixel, and
:meth:`Plate.site_array` returns a dask array of shape ``(C, Y, X)`` that reads
only when computed.

The readers give a plate loaders that are small frozen dataclasses holding paths
and plain values, so a plate pickles without pixels or dask graphs and worker
processes can read its sites.

Examples
--------
>>> import pickle
>>> copy = pickle.loads(pickle.dumps(plate))
>>> site = copy.site("B04", 2)
>>> bool((copy.read_site(site) == plate.read_site(site)).all())
True
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import pandas as pd

__all__ = [
    "MAX_SITE_PIXELS",
    "PLATE_LAYOUTS",
    "Plate",
    "PlateError",
    "Site",
    "SkippedItem",
    "infer_layout",
    "normalize_well_name",
    "row_label",
    "well_name",
    "well_position",
]

#: Standard plate formats: number of wells -> (rows, columns).
PLATE_LAYOUTS: dict[int, tuple[int, int]] = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
    1536: (32, 48),
}

_WELL_PATTERNS = (
    # A01, a1, AB12 (1536-well rows go past Z as AA, AB, ...)
    re.compile(r"^(?P<row>[A-Za-z]{1,2})[_-]?0*(?P<col>\d{1,3})$"),
    # Row02_Well04 (scPortrait), row 2 col 4, 1-based
    re.compile(r"^row[_-]?0*(?P<rownum>\d+)[_-]?(?:well|col(?:umn)?)[_-]?0*(?P<col>\d+)$", re.I),
    # r02c04 (Operetta / Opera Phenix)
    re.compile(r"^r0*(?P<rownum>\d+)c0*(?P<col>\d+)$", re.I),
)


class PlateError(ValueError):
    """Raised when a plate, well, site or channel is not what was expected."""


@dataclass(frozen=True)
class SkippedItem:
    """Something that could not be opened, and why.

    Attributes
    ----------
    where : str
        File, well or site that was skipped.
    reason : str
        What was wrong with it.
    """

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def row_label(row_index: int) -> str:
    """Return the letter(s) of a 0-based row index (0 -> 'A', 26 -> 'AA').

    Examples
    --------
    >>> row_label(0), row_label(15), row_label(31)
    ('A', 'P', 'AF')
    """
    letters = string.ascii_uppercase
    if row_index < 26:
        return letters[row_index]
    return letters[row_index // 26 - 1] + letters[row_index % 26]


def _row_index(label: str) -> int:
    label = label.upper()
    if len(label) == 1:
        return ord(label) - ord("A")
    return (ord(label[0]) - ord("A") + 1) * 26 + ord(label[1]) - ord("A")


def well_name(row_index: int, column_index: int) -> str:
    """Return the canonical name of a well from 0-based row and column indices.

    Examples
    --------
    >>> well_name(1, 3)
    'B04'
    """
    return f"{row_label(row_index)}{column_index + 1:02d}"


def normalize_well_name(name: str) -> str:
    """Map any common well naming to the canonical ``A01`` style.

    Accepts ``A1``, ``A01``, ``a001``, ``Row02_Well04`` (-> ``B04``) and
    ``r02c04`` (-> ``B04``).

    Raises
    ------
    PlateError
        If the name matches no known well naming.

    Examples
    --------
    >>> normalize_well_name("Row02_Well04"), normalize_well_name("r02c04")
    ('B04', 'B04')
    """
    text = str(name).strip()
    for pattern in _WELL_PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        if groups.get("row") is not None:
            row = _row_index(groups["row"])
        else:
            row = int(groups["rownum"]) - 1
        column = int(groups["col"]) - 1
        if row < 0 or column < 0:
            break
        return well_name(row, column)
    raise PlateError(
        f"Unknown well name {name!r}: expected a name like 'A01', 'Row02_Well04' or 'r02c04'."
    )


def well_position(name: str) -> tuple[int, int]:
    """Return the 0-based (row, column) of a well name in any known naming."""
    canonical = normalize_well_name(name)
    match = _WELL_PATTERNS[0].match(canonical)
    return _row_index(match["row"]), int(match["col"]) - 1


#: Plate formats used for screening, tried in order when a layout is inferred.
SCREENING_FORMATS = (96, 384, 1536)


def infer_layout(wells: list[str]) -> tuple[int, int]:
    """Return the smallest screening plate (96, 384 or 1536 wells) that holds all wells.

    Wells beyond a 1536-well plate give a layout just large enough to hold them.

    Examples
    --------
    >>> infer_layout(["B02", "B04"]), infer_layout(["P24"])
    ((8, 12), (16, 24))
    """
    if not wells:
        return PLATE_LAYOUTS[96]
    positions = [well_position(w) for w in wells]
    needed_rows = max(r for r, _ in positions) + 1
    needed_cols = max(c for _, c in positions) + 1
    for rows, cols in (PLATE_LAYOUTS[n] for n in SCREENING_FORMATS):
        if rows >= needed_rows and cols >= needed_cols:
            return rows, cols
    return needed_rows, needed_cols


#: Most pixels a site may have per channel (16384 x 16384): a site is read whole into
#: memory to be segmented, and larger images (a 30000 x 30000 TIFF compresses to a few MB)
#: would exhaust it.
MAX_SITE_PIXELS = 2**28


def _check_site_size(shape, where) -> None:
    y, x = (int(v) for v in shape)
    if y * x > MAX_SITE_PIXELS:
        raise PlateError(
            f"{where}: sites of {y} x {x} pixels are larger than napari-hcs reads whole "
            f"({MAX_SITE_PIXELS:,} pixels per channel, e.g. 16384 x 16384); tile the image into "
            "fields first."
        )


@dataclass(frozen=True)
class Site:
    """One imaged position of a well: a field at a timepoint.

    Attributes
    ----------
    well : str
        Canonical well name (``A01`` style).
    field : int
        Field (site) number within the well, as numbered by the source.
    timepoint : int
        Timepoint number, 0 when the plate has no time axis.
    """

    well: str
    field: int = 0
    timepoint: int = 0

    @property
    def name(self) -> str:
        """Short readable name, e.g. ``B04 f1 t2``."""
        return f"{self.well} f{self.field} t{self.timepoint}"


SiteLoader = Callable[[Site], "object"]  # returns a dask array (C, Y, X)


@dataclass
class Plate:
    """A multiwell plate with lazily readable sites.

    Parameters
    ----------
    name : str
        Plate name (e.g. the folder or store name).
    channels : list of str
        Channel names, in the order of the channel axis.
    sites : dict of str to list of Site
        Sites of each well, keyed by canonical well name.
    loader : callable
        ``loader(site) -> dask.array`` of shape ``(C, Y, X)``; called lazily.
        A picklable callable (a dataclass with ``__call__``) lets the plate
        travel to worker processes.
    shape : tuple of int
        ``(Y, X)`` shape of every site.
    dtype : numpy.dtype
        Pixel type.
    layout : tuple of int, optional
        ``(rows, columns)``; inferred from the wells when not given.
    pixel_size : float, optional
        Pixel size in micrometres, when known.
    source : str, optional
        Path the plate was read from.
    skipped : list of SkippedItem, optional
        Files, wells or sites that could not be opened.
    label_loader : callable, optional
        ``label_loader(site) -> dict[name, dask.array (Y, X)]`` of stored labels.
    pyramid_loader : callable, optional
        ``pyramid_loader(site) -> list of dask.array (C, Y, X)``, full resolution
        first, for sources that store a multiscale pyramid.
    annotations : DataFrame, optional
        Per-well annotations, indexed by canonical well name.
    layout_source : str, optional
        The layout table the annotations were read from.
    """

    name: str
    channels: list[str]
    sites: dict[str, list[Site]]
    loader: SiteLoader
    shape: tuple[int, int]
    dtype: np.dtype
    layout: tuple[int, int] | None = None
    pixel_size: float | None = None
    source: str | None = None
    skipped: list[SkippedItem] = field(default_factory=list)
    label_loader: Callable[[Site], dict] | None = None
    pyramid_loader: Callable[[Site], list] | None = None
    annotations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(index=pd.Index([], name="well")))
    layout_source: str | None = None

    def __post_init__(self) -> None:
        _check_site_size(self.shape, self.source or self.name)
        self.sites = {normalize_well_name(w): s for w, s in self.sites.items()}
        self.sites = dict(sorted(self.sites.items(), key=lambda kv: well_position(kv[0])))
        if self.layout is None:
            self.layout = infer_layout(list(self.sites))
        self.dtype = np.dtype(self.dtype)
        if self.annotations.index.name != "well":
            self.annotations.index.name = "well"

    # -- layout -------------------------------------------------------------
    @property
    def wells(self) -> list[str]:
        """Canonical names of the wells that hold at least one site, row-major."""
        return list(self.sites)

    @property
    def n_rows(self) -> int:
        return self.layout[0]

    @property
    def n_columns(self) -> int:
        return self.layout[1]

    @property
    def timepoints(self) -> list[int]:
        """Sorted timepoints present on the plate."""
        return sorted({s.timepoint for sites in self.sites.values() for s in sites})

    def iter_sites(self, wells: list[str] | None = None) -> Iterator[Site]:
        """Yield every site of the plate (or of the given wells), row-major."""
        for well in self._checked_wells(wells):
            yield from self.sites[well]

    def n_sites(self) -> int:
        """Total number of sites on the plate."""
        return sum(len(s) for s in self.sites.values())

    def site(self, well: str, index: int = 0) -> Site:
        """Return the ``index``-th site of a well.

        Raises
        ------
        PlateError
            If the well is not on the plate or has no such site.
        """
        sites = self.sites[self._checked_wells([well])[0]]
        if not -len(sites) <= index < len(sites):
            raise PlateError(
                f"Well {well} has {len(sites)} site(s); site index {index} does not exist."
            )
        return sites[index]

    def _checked_wells(self, wells: list[str] | None) -> list[str]:
        if wells is None:
            return self.wells
        checked = []
        for w in wells:
            name = normalize_well_name(w)
            if name not in self.sites:
                raise PlateError(
                    f"Well {w!r} is not on plate {self.name!r}; wells with images: "
                    f"{', '.join(self.wells) or 'none'}."
                )
            checked.append(name)
        return checked

    # -- channels -----------------------------------------------------------
    def channel_index(self, channel: str | int) -> int:
        """Return the index of a channel given by name or index.

        Raises
        ------
        PlateError
            Naming the channels that exist, when the channel is unknown.
        """
        if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
            if 0 <= channel < len(self.channels):
                return int(channel)
        elif channel in self.channels:
            return self.channels.index(channel)
        elif str(channel).isdigit() and int(channel) < len(self.channels):
            return int(channel)
        raise PlateError(
            f"Channel {channel!r} is not on plate {self.name!r}; channels are: "
            f"{', '.join(self.channels)}."
        )

    # -- pixels -------------------------------------------------------------
    def site_array(self, site: Site):
        """Return the lazy ``(C, Y, X)`` dask array of a site (reads nothing)."""
        return self.loader(site)

    def site_pyramid(self, site: Site) -> list:
        """Return the site's multiscale levels, full resolution first (lazy).

        Sources without a stored pyramid give a single level.
        """
        if self.pyramid_loader is None:
            return [self.site_array(site)]
        return self.pyramid_loader(site)

    def read_site(self, site: Site) -> np.ndarray:
        """Read the pixels of a site as a ``(C, Y, X)`` numpy array."""
        return np.asarray(self.site_array(site))

    def site_labels(self, site: Site) -> dict:
        """Return stored label images of a site, name -> lazy ``(Y, X)`` array."""
        if self.label_loader is None:
            return {}
        return self.label_loader(site)

    # -- annotations --------------------------------------------------------
    def annotate(self, well: str, **values) -> None:
        """Set annotation columns of a well, e.g. ``annotate('B04', class_='treated')``.

        A trailing underscore in a keyword is dropped, so ``class_`` sets ``class``.
        """
        name = self._checked_wells([well])[0]
        for column, value in values.items():
            self.annotations.loc[name, column.rstrip("_")] = value
        self.annotations.index.name = "well"

    def well_annotations(self, well: str) -> dict:
        """Return the annotations of one well as a dict (empty when none)."""
        name = normalize_well_name(well)
        if name not in self.annotations.index:
            return {}
        row = self.annotations.loc[name]
        return {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}

    def summary(self) -> dict:
        """Return a JSON-ready summary: wells, sites, channels, shape, dtype, annotations.

        Examples
        --------
        >>> summary = plate.summary()
        >>> summary["sites"], summary["layout_source"].endswith("plate_layout.tsv")
        ({'B02': 3, 'B04': 3}, True)
        """
        return {
            "name": self.name,
            "source": self.source,
            "layout": list(self.layout),
            "wells": self.wells,
            "sites": {w: len(s) for w, s in self.sites.items()},
            "timepoints": self.timepoints,
            "channels": list(self.channels),
            "shape": list(self.shape),
            "dtype": str(self.dtype),
            "pixel_size_um": self.pixel_size,
            "annotations": {w: self.well_annotations(w) for w in self.annotations.index},
            "layout_source": self.layout_source,
            "skipped": [str(s) for s in self.skipped],
        }
