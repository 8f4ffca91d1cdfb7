"""The whole-image path (no Qt): preprocessing, illumination correction, quality control, site embeddings.

:mod:`~napari_hcs.images.site_exclusions` records the sites quality control keeps
out of training and profiles.
"""

from .site_exclusions import SiteExclusions, drop_excluded_cells

__all__ = ["SiteExclusions", "drop_excluded_cells"]
