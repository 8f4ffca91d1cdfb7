"""Plates stored as folders of TIFF files named by a filename pattern.

A pattern is a regular expression with named groups:

``well`` (or ``row`` and ``column``)
    The well, in any naming :func:`napari_hcs.plate.normalize_well_name` knows.
``channel``
    Channel name (or number); ``channel_index`` orders channels when present.
``field``, or groups named ``field_<anything>``
    The site (field of view); several ``field_*`` groups (tile row and column,
    say) are combined and numbered in order.
``timepoint``
    Optional time index.
``plane``
    Optional z plane; only the first plane is read.

Presets cover common instruments; see :data:`PRESETS`. The plate's loader
(:class:`TiffFolderLoader`) holds the file paths, so the plate pickles small.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import tifffile

from ..plate import Plate, PlateError, Site, SkippedItem, normalize_well_name

__all__ = [
    "PRESETS",
    "TiffFolderLoader",
    "match_files",
    "open_tiff_folder",
    "read_tiff_pixel_size",
    "resolve_pattern",
]

TIFF_SUFFIXES = (".tif", ".tiff")

#: Filename patterns of common instruments and data sets.
PRESETS: dict[str, str] = {
    # MetaXpress / ImageXpress: Plate1_B04_s2_w1.tif (an optional GUID may follow the channel)
    "imagexpress": r"^(?P<plate>.+?)_(?P<well>[A-Pa-p]\d{2})(?:_s(?P<field>\d+))?_w(?P<channel>\d+)"
    r"(?:[0-9A-Fa-f-]{36})?\.tiff?$",
    # Operetta / Opera Phenix (Harmony export): r01c01f01p01-ch1sk1fk1fl1.tiff
    "operetta": r"^r(?P<row>\d{2})c(?P<column>\d{2})f(?P<field>\d+)p(?P<plane>\d+)-ch(?P<channel>\d+)"
    r"sk(?P<timepoint>\d+)fk\d+fl\d+\.tiff?$",
    # scPortrait time course: Timepoint001_Row02_Well02_DAPI_zstack001_r000_c000.tif
    "scportrait": r"^Timepoint(?P<timepoint>\d+)_(?P<well>Row\d+_Well\d+)_(?P<channel>[^_]+)"
    r"_zstack(?P<plane>\d+)_r(?P<field_r>\d+)_c(?P<field_c>\d+)\.tiff?$",
    # NF1 Cell Painting (CytoDataFrame): D6_01_1_2_DAPI_001.tif = well, ?, channel index, site, channel
    "nf1": r"^(?P<well>[A-Pa-p]\d{1,2})_\d+_(?P<channel_index>\d+)_(?P<field>\d+)_(?P<channel>[A-Za-z0-9]+)"
    r"_\d+\.tiff?$",
    # Cellomics / CellProfiler examples: AS_09125_050116030001_D03f00d0.tif
    "cellomics": r"^(?P<plate>.*?)_?(?P<well>[A-Pa-p]\d{2})f(?P<field>\d+)(?P<channel>d\d+)\.tiff?$",
}


@dataclass(frozen=True)
class _Match:
    path: Path
    well: str
    field_key: tuple
    timepoint: int
    channel: str
    channel_order: tuple
    plane: int


def resolve_pattern(pattern: str) -> re.Pattern:
    """Return the compiled regular expression of a preset name or a user regex.

    Raises
    ------
    PlateError
        If the pattern is neither a preset nor a valid regex with a well group.
    """
    text = PRESETS.get(pattern.lower(), pattern) if pattern else pattern
    try:
        regex = re.compile(text)
    except re.error as error:
        raise PlateError(
            f"Pattern {pattern!r} is neither a preset ({', '.join(PRESETS)}) nor a valid "
            f"regular expression: {error}."
        ) from None
    groups = set(regex.groupindex)
    if "well" not in groups and not {"row", "column"} <= groups:
        raise PlateError(
            f"Pattern {pattern!r} needs a named group 'well' (or 'row' and 'column'); it has "
            f"{', '.join(sorted(groups)) or 'no named groups'}."
        )
    return regex


def _tiff_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in TIFF_SUFFIXES and p.is_file()
    )


def _natural_key(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))


def match_files(files: list[Path], regex: re.Pattern) -> tuple[list[_Match], list[SkippedItem]]:
    """Match file names against a pattern; return matches and files with unknown wells."""
    matches, skipped = [], []
    for path in files:
        found = regex.match(path.name)
        if found is None:
            continue
        groups = found.groupdict()
        try:
            if groups.get("well") is not None:
                well = normalize_well_name(groups["well"])
            else:
                well = normalize_well_name(f"r{groups['row']}c{groups['column']}")
        except PlateError as error:
            skipped.append(SkippedItem(str(path), str(error)))
            continue
        field_key = tuple(
            groups[g] or "" for g in sorted(regex.groupindex) if g == "field" or g.startswith("field_")
        )
        channel = groups.get("channel") or "0"
        order = (int(groups["channel_index"]),) if groups.get("channel_index") else ()
        matches.append(
            _Match(
                path=path,
                well=well,
                field_key=field_key,
                timepoint=int(groups.get("timepoint") or 0),
                channel=channel,
                channel_order=order + _natural_key(channel),
                plane=int(groups.get("plane") or 0),
            )
        )
    return matches, skipped


def _best_preset(files: list[Path], folder: Path) -> str:
    counts = {name: len(match_files(files, resolve_pattern(name))[0]) for name in PRESETS}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        examples = ", ".join(p.name for p in files[:3]) or "no TIFF files at all"
        raise PlateError(
            f"No file in {folder} matches a known naming ({', '.join(PRESETS)}); found "
            f"{len(files)} TIFF file(s), e.g. {examples}. Give --pattern with a regular "
            "expression with named groups (well, site/field, channel)."
        )
    return best


def _tiff_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return tuple(page.shape), np.dtype(page.dtype)


def read_tiff_pixel_size(path: str | os.PathLike) -> float | None:
    """Return the pixel size in micrometres stored in a TIFF's tags, or None."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            tags = page.tags
            if "XResolution" not in tags:
                return None
            numerator, denominator = tags["XResolution"].value
            if not numerator:
                return None
            per_unit = denominator / numerator
            unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2
            imagej_unit = (tif.imagej_metadata or {}).get("unit", "")
            if imagej_unit in ("micron", "um", "\\u00B5m", "µm"):
                return per_unit
            if int(unit) == 3:  # centimetre
                return per_unit * 1e4
            return None
    except Exception:  # pixel size is optional; a bad tag must not stop opening
        return None


def _read_plane(path: str) -> np.ndarray:
    try:
        data = tifffile.imread(path, key=0)
    except Exception as error:
        raise PlateError(f"Could not read TIFF {path}: {error}") from error
    return np.asarray(data)


@dataclass(frozen=True)
class TiffFolderLoader:
    """``loader(site)``: the TIFF of each channel of a site, stacked as ``(C, Y, X)``.

    Attributes
    ----------
    files : dict of Site to tuple of str
        The file of each channel of each site, in channel order.
    shape : (int, int)
        ``(Y, X)`` of every file.
    dtype : str
        Pixel type.
    """

    files: dict[Site, tuple[str, ...]]
    shape: tuple[int, int]
    dtype: str

    def __call__(self, site: Site) -> da.Array:
        return da.stack([
            da.from_delayed(dask.delayed(_read_plane)(path), shape=self.shape, dtype=self.dtype)
            for path in self.files[site]
        ])


def open_tiff_folder(
    folder: str | os.PathLike, *, pattern: str | None = None, name: str | None = None
) -> Plate:
    """Open a folder of TIFFs as a plate, reading only TIFF headers.

    Sites whose files are unreadable, whose channels differ in shape, or that miss
    a channel are left out and listed in ``plate.skipped`` with the reason.

    Parameters
    ----------
    folder : path
        Folder searched recursively for ``.tif``/``.tiff`` files.
    pattern : str, optional
        Preset name (see :data:`PRESETS`) or a regular expression with named
        groups; the best-matching preset when not given.
    name : str, optional
        Plate name; the folder name by default.

    Raises
    ------
    PlateError
        If no file matches, or no site could be opened (with the reasons).

    Examples
    --------
    >>> plate = open_tiff_folder(sample_path("scportrait_mini"), pattern="scportrait")
    >>> plate.n_sites(), plate.timepoints, plate.channels
    (6, [1, 2, 3], ['Alexa488', 'DAPI', 'mCherry'])
    """
    folder = Path(folder)
    files = _tiff_files(folder)
    pattern = pattern or _best_preset(files, folder)
    regex = resolve_pattern(pattern)
    matches, skipped = match_files(files, regex)
    if not matches:
        examples = ", ".join(p.name for p in files[:3]) or "no TIFF files at all"
        raise PlateError(
            f"No file in {folder} matches pattern {pattern!r}; found {len(files)} TIFF "
            f"file(s), e.g. {examples}."
        )
    first_plane = min(m.plane for m in matches)
    matches = [m for m in matches if m.plane == first_plane]
    channel_orders = {}
    for m in matches:
        channel_orders.setdefault(m.channel, m.channel_order)
    channels = sorted(channel_orders, key=channel_orders.get)

    by_site: dict[tuple, dict[str, Path]] = defaultdict(dict)
    for m in matches:
        by_site[(m.well, m.field_key, m.timepoint)][m.channel] = m.path

    headers: dict[Path, tuple] = {}
    for m in matches:
        try:
            headers[m.path] = _tiff_header(m.path)
        except Exception as error:
            headers[m.path] = error
    good_shapes = Counter(h for h in headers.values() if not isinstance(h, Exception))
    if not good_shapes:
        reasons = "; ".join(f"{p.name}: {h}" for p, h in list(headers.items())[:3])
        raise PlateError(f"No TIFF in {folder} could be read: {reasons}")
    (shape, dtype), _ = good_shapes.most_common(1)[0]

    field_numbers = _number_fields(by_site)
    site_files: dict[Site, tuple[str, ...]] = {}
    sites: dict[str, list[Site]] = defaultdict(list)
    for key in sorted(by_site, key=lambda k: (k[0], k[2], k[1])):
        well, field_key, timepoint = key
        site = Site(well, field_numbers[key], timepoint)
        problem = _site_problem(site, by_site[key], channels, headers, (shape, dtype))
        if problem:
            skipped.append(SkippedItem(f"{folder.name}/{site.name}", problem))
            continue
        site_files[site] = tuple(str(by_site[key][c]) for c in channels)
        sites[well].append(site)
    if not sites:
        reasons = "; ".join(str(s) for s in skipped[:5])
        raise PlateError(f"No site of {folder} could be opened: {reasons}")
    for well_sites in sites.values():
        well_sites.sort(key=lambda s: (s.timepoint, s.field))
    first = next(iter(site_files.values()))[0]
    return Plate(
        name=name or folder.name,
        channels=channels,
        sites=dict(sites),
        loader=TiffFolderLoader(site_files, tuple(shape), np.dtype(dtype).str),
        shape=shape[-2:] if len(shape) > 2 else shape,
        dtype=dtype,
        pixel_size=read_tiff_pixel_size(first),
        source=str(folder),
        skipped=skipped,
    )


def _number_fields(by_site: dict[tuple, dict]) -> dict[tuple, int]:
    """Number the fields of each well: a plain site number keeps its value,
    composite keys (tile row and column) are numbered in natural order."""
    per_well = defaultdict(set)
    for well, field_key, _ in by_site:
        per_well[well].add(field_key)
    numbering = {}
    for key in by_site:
        well, field_key, _ = key
        if len(field_key) == 1 and field_key[0].isdigit():
            numbering[key] = int(field_key[0])
        else:
            ordered = sorted(per_well[well], key=lambda k: tuple(map(_natural_key, k)))
            numbering[key] = ordered.index(field_key)
    return numbering


def _site_problem(site, channel_files, channels, headers, expected) -> str | None:
    missing = [c for c in channels if c not in channel_files]
    if missing:
        return f"missing channel(s) {', '.join(missing)} (have {', '.join(channel_files)})"
    for channel in channels:
        path = channel_files[channel]
        header = headers[path]
        if isinstance(header, Exception):
            return f"unreadable TIFF {path}: {header}"
        if len(header[0]) != 2:
            return f"{path} has shape {header[0]}; expected one 2-D plane per file"
    shapes = {c: headers[channel_files[c]][0] for c in channels}
    if len(set(shapes.values())) > 1 or next(iter(shapes.values())) != expected[0]:
        listing = ", ".join(f"{c} {s}" for c, s in shapes.items())
        return f"channels differ in shape ({listing}); plate shape is {expected[0]}"
    return None
