"""What the OME-Zarr reader and writer share: NGFF versions and where metadata lives.

NGFF 0.4 stores its metadata as plain attributes of Zarr format 2 groups; NGFF
0.5 stores it under the ``ome`` attribute of Zarr format 3 groups.

Examples
--------
>>> sorted(NGFF_FORMATS) == sorted(NGFF_VERSIONS)
True
>>> ngff_format("0.5").zarr_format
3
"""

from __future__ import annotations

import os

from typing import TYPE_CHECKING

import zarr

from ..vocabulary import NGFF_VERSIONS

if TYPE_CHECKING:
    from ome_zarr.format import Format

__all__ = ["NGFF_FORMATS", "axis_names", "is_ome_zarr_plate", "ngff_format", "ome_attrs"]

#: NGFF version -> name of the ome-zarr-py format that writes it (imported on use:
#: ome-zarr-py loads scikit-image and dask, which reading a plate does not need).
NGFF_FORMATS: dict[str, str] = {"0.4": "FormatV04", "0.5": "FormatV05"}


def ngff_format(version: str) -> Format:
    """Return the ome-zarr-py format of an NGFF version.

    Raises
    ------
    ValueError
        Naming the versions that can be written.
    """
    if version not in NGFF_FORMATS:
        raise ValueError(
            f"NGFF version must be one of {', '.join(map(repr, NGFF_VERSIONS))}, not {version!r}."
        )
    from ome_zarr import format as formats

    return getattr(formats, NGFF_FORMATS[version])()


def ome_attrs(group: zarr.Group) -> tuple[dict, str | None]:
    """Return a group's NGFF metadata and its version (None for NGFF 0.4 and older)."""
    attrs = group.attrs.asdict()
    if "ome" in attrs:
        return attrs["ome"], attrs["ome"].get("version", "0.5")
    return attrs, None


def axis_names(multiscale: dict) -> list[str]:
    """Return the axis names of a multiscale (axes given as names or as dicts)."""
    return [a["name"] if isinstance(a, dict) else a for a in multiscale["axes"]]


def is_ome_zarr_plate(path: str | os.PathLike) -> bool:
    """Return True when ``path`` is a Zarr group holding NGFF plate metadata."""
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:
        return False
    return "plate" in ome_attrs(group)[0]
