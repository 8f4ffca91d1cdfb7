"""Paths of the sample data bundled with the package (no Qt)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["SAMPLES", "sample_layout", "sample_path"]

#: Bundled samples: name -> path relative to the package's data folder.
SAMPLES = {
    "ht29": "ht29_D03.ome.tif",
    "scportrait_mini": "scportrait_mini",
}


def sample_path(name: str) -> Path:
    """Return the path of a bundled sample (``ht29`` or ``scportrait_mini``).

    Raises
    ------
    KeyError
        Naming the samples that exist.
    """
    if name not in SAMPLES:
        raise KeyError(f"No sample {name!r}; samples are: {', '.join(SAMPLES)}.")
    return Path(str(files("napari_hcs") / "samples" / "data" / SAMPLES[name]))


def sample_layout(name: str = "scportrait_mini") -> Path:
    """Return the plate layout table bundled with a sample plate."""
    return sample_path(name) / "plate_layout.tsv"
