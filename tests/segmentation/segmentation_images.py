"""Synthetic nuclear-stain images with known nuclei (importable by the segmentation tests)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def discs(shape, centres, radius, *, value=200.0, background=10.0, noise=3.0, seed=0):
    """Float image of bright discs on a noisy background, and their true labels."""
    rows, cols = np.indices(shape)
    image = np.full(shape, background, dtype=np.float64)
    truth = np.zeros(shape, dtype=np.int32)
    for label, (r, c) in enumerate(centres, start=1):
        inside = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
        image[inside] = value
        truth[inside & (truth == 0)] = label
    image = ndi.gaussian_filter(image, 1.0)
    image += np.random.default_rng(seed).normal(0, noise, shape)
    return image, truth


def two_cells():
    """Nuclei image and cytoplasm image of two cells far apart."""
    nuclei_image, _ = discs((120, 200), [(60, 50), (60, 150)], 10)
    cell_image, _ = discs((120, 200), [(60, 50), (60, 150)], 30, value=80.0)
    return nuclei_image, cell_image
