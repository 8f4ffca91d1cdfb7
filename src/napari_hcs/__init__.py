"""napari-hcs: interactive phenotyping of high-content screening plates."""

__version__ = "0.1.0"

from .plate import Plate, PlateError, Site, normalize_well_name  # noqa: E402

__all__ = ["Plate", "PlateError", "Site", "normalize_well_name", "__version__"]
