"""Small synthetic images and labels shared by the feature tests."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk

SCPORTRAIT_SITE = (
    "scportrait_timecourse/input_images/Row02_Well02_r000_c000/"
    "Timepoint001_Row02_Well02_{channel}_zstack001_r000_c000.tif"
)
SCPORTRAIT_CHANNELS = ("DAPI", "Alexa488", "mCherry")


def two_rectangles(seed: int = 0):
    """A random 2-channel image, two rectangular objects, and their slices by label."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 1000, size=(2, 40, 50)).astype(np.uint16)
    labels = np.zeros((40, 50), np.int32)
    labels[5:20, 5:25] = 1
    labels[25:38, 10:45] = 2
    slices = {1: (slice(5, 20), slice(5, 25)), 2: (slice(25, 38), slice(10, 45))}
    return image, labels, slices


def synthetic_crops(n: int = 6, size: int = 40):
    """Crops with a centred nucleus, a brighter neighbour in the corner, and a last empty crop."""
    crops = np.zeros((n, 2, size, size), np.float32)
    for k in range(n):
        crops[k, 0][disk((size // 2, size // 2), 6 + k % 3)] = 100 + 10 * k
        crops[k, 0][disk((5, 5), 4)] = 300
        crops[k, 1] = 10 + k
    crops[-1] = 0
    return crops
