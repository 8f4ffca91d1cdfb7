"""Nuclei of a nuclear-stain image: the expected diameter, and instance labels.

:func:`segment_nuclei` needs no training and no model weights. It smooths the
image and keeps the pixels above an automatic global threshold and above half
of their local peak (so every nucleus is cut at its own half-maximum), fills
holes, removes small objects, splits touching nuclei by a watershed whose seed
spacing follows the expected nucleus diameter (:func:`estimate_diameter` when
not given), and drops artefacts (objects far too large, too elongated or, on
request, too bright).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from ..vocabulary import SPLIT_METHODS
from ._artefacts import fibre_lookup, remove_artefacts
from ._images import (
    as_float_image,
    background_level,
    check_threshold,
    disc_area,
    is_flat,
    smooth,
    threshold_of,
)
from ._labels import drop_labels, fill_holes, relabel, remove_small_labels

__all__ = ["DEFAULT_DIAMETER", "NucleiOptions", "estimate_diameter", "segment_nuclei"]

#: Nucleus diameter (pixels) assumed when an image holds no usable object.
DEFAULT_DIAMETER = 20.0
#: Area-equivalent diameter of a nucleus over twice its largest inscribed radius
#: (measured on the Data Science Bowl 2018 nuclei: nuclei are mildly elliptic).
_EQUIVALENT_OVER_INSCRIBED = 1.18

# Scales of the nuclei pipeline, as fractions of the nucleus diameter (tuned on
# the Data Science Bowl 2018 and stardist nuclei; see docs/segmentation.md).
#: Size of the window in which the local peak intensity is taken.
_PEAK_WINDOW = 1.12
#: Gaussian sigma of the image the local peak is taken from.
_PEAK_SMOOTHING = 0.17
#: Smallest distance between two watershed seeds.
_SEED_SPACING = 0.34
#: Default smallest and largest nucleus areas, in expected nucleus areas.
_MIN_AREA = 0.12
_MAX_AREA = 10.0
#: Gaussian sigma (pixels) of the distance transform before seeds are found.
_DISTANCE_SMOOTHING = 0.5


def estimate_diameter(image: np.ndarray) -> float:
    """Estimate the typical nucleus diameter of a nuclear-stain image.

    The image is smoothed and Otsu-thresholded. For every foreground component
    the largest distance to the background is the radius of its widest nucleus,
    which stays right for clumps of touching nuclei where component areas would
    not. The estimate is twice the median of these radii, scaled to the
    area-equivalent diameter of a mildly elliptic nucleus.

    Parameters
    ----------
    image : ndarray
        2D grey image (any real dtype).

    Returns
    -------
    float
        Diameter in pixels; :data:`DEFAULT_DIAMETER` when the image holds no
        object (flat image).

    Examples
    --------
    >>> dapi = plate.read_site(plate.site("B02"))[plate.channel_index("DAPI")]
    >>> round(estimate_diameter(dapi))
    26
    >>> estimate_diameter(np.zeros((32, 32)))
    20.0
    """
    from skimage import morphology

    smoothed = smooth(as_float_image(image), 1.0)
    if is_flat(smoothed):
        return DEFAULT_DIAMETER
    mask = smoothed > threshold_of(smoothed, "otsu", None)
    mask = morphology.remove_small_objects(fill_holes(mask), max_size=8)
    labels, n = ndi.label(mask)
    if n == 0:
        return DEFAULT_DIAMETER
    distance = ndi.distance_transform_edt(mask)
    radii = np.zeros(n + 1)
    np.maximum.at(radii, labels[mask], distance[mask])
    radii = radii[1:]
    return float(max(2.0 * _EQUIVALENT_OVER_INSCRIBED * np.median(radii), 4.0))


@dataclass(frozen=True)
class NucleiOptions:
    """Options of :func:`segment_nuclei` (each can also be given to it by name).

    Attributes
    ----------
    diameter : float, optional
        Expected nucleus diameter in pixels; estimated with
        :func:`estimate_diameter` when not given. Sets the spacing of the
        watershed seeds, the local window and the default size limits.
    threshold : {'otsu', 'li', 'triangle', 'manual'}
        Global threshold method, or 'manual' with ``threshold_value``.
    threshold_value : float, optional
        Intensity threshold for ``threshold='manual'`` (in image units), used as is.
    smoothing : float
        Sigma (pixels) of the Gaussian smoothing before thresholding.
    min_area : float, optional
        Smallest nucleus area in pixels; default 12 % of the expected area.
    max_area : float, optional
        Largest nucleus area in pixels; default 10 times the expected area.
        Larger objects are artefacts (debris, out-of-focus blobs, clumps).
    exclude_border : bool
        Drop nuclei touching the image border.
    split : {'distance', 'intensity', 'none'}
        How touching nuclei are split: watershed of the distance transform
        (round nuclei), of the smoothed intensity (nuclei with dark gaps), or not.
    max_intensity_quantile : float, optional
        Drop objects whose mean intensity is more than twice this quantile of
        the objects' mean intensities (abnormally bright debris); off by
        default because mitotic nuclei are bright too.
    threshold_correction : float
        An automatic threshold is moved this fraction of the way from the
        background level to the threshold found (1 keeps it; lower keeps dim
        nuclei). Not applied to a manual threshold.
    local_contrast : float
        Fraction (0 to 1) of the local peak above background a pixel must
        reach; 0 turns the local rule off.

    Examples
    --------
    >>> NucleiOptions(diameter=30, split="none").split
    'none'
    >>> NucleiOptions(split="random")
    Traceback (most recent call last):
    ...
    ValueError: Unknown split method 'random'; choose one of distance, intensity, none.
    """

    diameter: float | None = None
    threshold: str = "otsu"
    threshold_value: float | None = None
    smoothing: float = 1.0
    min_area: float | None = None
    max_area: float | None = None
    exclude_border: bool = False
    split: str = "distance"
    max_intensity_quantile: float | None = None
    threshold_correction: float = 0.5
    local_contrast: float = 0.5

    def __post_init__(self) -> None:
        check_threshold(self.threshold, self.threshold_value)
        if self.split not in SPLIT_METHODS:
            raise ValueError(
                f"Unknown split method {self.split!r}; choose one of {', '.join(SPLIT_METHODS)}."
            )
        if not 0.0 <= self.local_contrast < 1.0:
            raise ValueError(f"local_contrast must be in [0, 1); got {self.local_contrast}.")
        if not 0.0 < self.threshold_correction <= 2.0:
            raise ValueError(f"threshold_correction must be in (0, 2]; got {self.threshold_correction}.")
        if self.diameter is not None and not self.diameter > 0:
            raise ValueError(f"diameter must be a positive number of pixels; got {self.diameter}.")
        quantile = self.max_intensity_quantile
        if quantile is not None and not 0.0 < quantile <= 1.0:
            raise ValueError(f"max_intensity_quantile must be in (0, 1]; got {quantile}.")


def segment_nuclei(image: np.ndarray, options: NucleiOptions | None = None, **settings) -> np.ndarray:
    """Segment the nuclei of a 2D nuclear-stain image into instance labels.

    A pixel is foreground when its smoothed intensity is above the global
    threshold and above ``local_contrast`` of the way from the background level
    to the brightest intensity within about one nucleus diameter. The local rule
    cuts every nucleus at its own half-maximum, whatever its brightness, and
    opens the dim valleys between touching nuclei. Holes are filled, small
    objects removed, touching nuclei split by a seeded watershed, and
    artefacts dropped.

    Parameters
    ----------
    image : ndarray
        2D grey image (uint8, uint16 or float). NaN pixels count as background.
    options : NucleiOptions, optional
        All options at once; the defaults when not given.
    **settings
        Options by name (the attributes of :class:`NucleiOptions`, such as
        ``diameter``, ``threshold`` or ``exclude_border``); they replace those
        of ``options``.

    Returns
    -------
    ndarray of int32
        Instance labels, 0 for background, 1..N for nuclei.

    Warns
    -----
    UserWarning
        When the image is empty (constant), or holds NaN pixels.

    Examples
    --------
    >>> dapi = plate.read_site(plate.site("B02"))[plate.channel_index("DAPI")]
    >>> labels = segment_nuclei(dapi)                   # all defaults
    >>> labels.dtype, int(labels.max())
    (dtype('int32'), 23)
    >>> inner = segment_nuclei(dapi, diameter=26, exclude_border=True)
    >>> int(inner.max()) < int(labels.max())
    True
    """
    options = replace(options or NucleiOptions(), **settings)
    pixels = as_float_image(image)
    if is_flat(pixels):
        warnings.warn(
            "The image is empty (all pixels have the same value); no nuclei found.", stacklevel=2
        )
        return np.zeros(pixels.shape, dtype=np.int32)
    diameter = estimate_diameter(pixels) if options.diameter is None else options.diameter
    expected_area = disc_area(diameter)
    min_area = _MIN_AREA * expected_area if options.min_area is None else float(options.min_area)
    max_area = _MAX_AREA * expected_area if options.max_area is None else float(options.max_area)

    smoothed = smooth(pixels, options.smoothing)
    mask = _foreground(pixels, smoothed, options, diameter=diameter, max_area=max_area)
    mask = _remove_small(fill_holes(mask), min_area)
    # Fibres go before splitting, which would cut them into nucleus-sized pieces.
    components, _ = ndi.label(mask)
    fibres = fibre_lookup(components, pixels, diameter=diameter, max_area=max_area)
    labels = _split_touching(drop_labels(components, fibres) > 0, smoothed, diameter, options.split)
    labels = remove_small_labels(labels, min_area)
    labels = remove_artefacts(
        labels, pixels, diameter=diameter, max_area=max_area,
        max_intensity_quantile=options.max_intensity_quantile,
    )
    if options.exclude_border:
        from skimage.segmentation import clear_border

        labels = clear_border(labels)
    return relabel(labels)


def _foreground(
    pixels: np.ndarray, smoothed: np.ndarray, options: NucleiOptions, *, diameter: float, max_area: float
) -> np.ndarray:
    """Foreground mask: above the (corrected) global threshold and the local half-maximum."""
    method = options.threshold
    threshold = threshold_of(smoothed, method, options.threshold_value)
    if method != "manual":
        threshold = _threshold_without_fibres(
            smoothed, pixels, diameter=diameter, method=method, threshold=threshold, max_area=max_area
        )
    background = background_level(smoothed, threshold)
    if method != "manual":
        threshold = background + options.threshold_correction * (threshold - background)
    mask = smoothed > threshold
    if options.local_contrast > 0:
        peak_source = smooth(pixels, max(_PEAK_SMOOTHING * diameter, 1.0))
        window = max(int(round(_PEAK_WINDOW * diameter)), 3)
        peak = ndi.maximum_filter(peak_source, size=window, mode="nearest")
        mask &= smoothed > background + options.local_contrast * (peak - background)
    return mask


def _threshold_without_fibres(
    smoothed: np.ndarray,
    pixels: np.ndarray,
    *,
    diameter: float,
    method: str,
    threshold: float,
    max_area: float,
) -> float:
    """Recompute an automatic threshold without the pixels of fibres and hairs.

    A bright fibre or hair covering much of the image pulls an automatic
    threshold up to its own level, and dim nuclei are lost; the threshold is
    found again on the pixels farther than a quarter diameter from the fibres
    found at the first one.
    """
    components, n = ndi.label(smoothed > threshold)
    if n == 0:
        return threshold
    fibres = fibre_lookup(components, pixels, diameter=diameter, max_area=max_area)[components]
    if not fibres.any():
        return threshold
    far = ndi.distance_transform_edt(~fibres) > diameter / 4.0
    if far.sum() < 0.5 * far.size:
        return threshold
    return threshold_of(smoothed[far], method, None)


def _remove_small(mask: np.ndarray, min_area: float) -> np.ndarray:
    from skimage import morphology

    return morphology.remove_small_objects(mask, max_size=max(int(np.ceil(min_area)) - 1, 0))


def _split_touching(mask: np.ndarray, smoothed: np.ndarray, diameter: float, split: str) -> np.ndarray:
    """Label a foreground mask, splitting touching nuclei by a seeded watershed."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    components, n = ndi.label(mask)
    if split == "none" or n == 0:
        return components
    if split == "distance":
        landscape = ndi.distance_transform_edt(mask).astype(np.float32)
        landscape = smooth(landscape, _DISTANCE_SMOOTHING)
    else:
        landscape = smooth(smoothed, max(diameter / 8.0, 1.0))
    peaks = peak_local_max(
        landscape,
        min_distance=max(int(round(_SEED_SPACING * diameter)), 1),
        labels=components,
        exclude_border=False,
    )
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    labels = watershed(-landscape, markers, mask=mask)
    # A component without a peak (a plateau) keeps its own label.
    unseeded = mask & (labels == 0)
    if unseeded.any():
        extra, _ = ndi.label(unseeded)
        labels[unseeded] = extra[unseeded] + labels.max()
    return labels
