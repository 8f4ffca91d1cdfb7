"""Sample plates: the real samples bundled with the package, and generated plates."""

from .bundled import SAMPLES, sample_layout, sample_path
from .synthetic import make_synthetic_plate

__all__ = ["SAMPLES", "make_synthetic_plate", "sample_layout", "sample_path"]
