"""Nuclei and cell segmentation of fluorescence images, and instance-matching metrics.

The classical pipeline needs no training and no model weights:

1. :func:`segment_nuclei` smooths a nuclear-stain image and keeps the pixels
   above an automatic global threshold and above half of their local peak (so
   every nucleus is cut at its own half-maximum), fills holes, removes small
   objects, splits touching nuclei by a watershed whose seed spacing follows the
   expected nucleus diameter (estimated with :func:`estimate_diameter` when not
   given), and drops artefacts (objects that are far too large, too elongated
   or, on request, too bright).
2. :func:`segment_cells` grows every nucleus into its cell on a cytoplasm or
   membrane channel by a seeded watershed limited to that channel's foreground;
   :func:`expand_nuclei` is the fallback when there is no such channel.
3. :func:`segment_site` runs both on a ``(C, Y, X)`` site, choosing channels by
   name from a :class:`SegmentationParams`.

:func:`match_instances`, :func:`instance_f1`, :func:`average_precision` and
:func:`foreground_iou` score a segmentation against ground truth (the metric of
the 2018 Data Science Bowl).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "SegmentationParams",
    "average_precision",
    "estimate_diameter",
    "expand_nuclei",
    "foreground_iou",
    "instance_f1",
    "match_instances",
    "segment_cells",
    "segment_nuclei",
    "segment_site",
]

THRESHOLD_METHODS = ("otsu", "li", "triangle", "manual")
SPLIT_METHODS = ("distance", "intensity", "none")
BACKENDS = ("classical", "cellpose")

#: Nucleus diameter (pixels) assumed when an image holds no usable object.
DEFAULT_DIAMETER = 20.0
#: Objects more elongated than this (major / minor axis) and either thinner than
#: half the expected diameter or larger than the largest nucleus are treated as
#: fibres or hairs.
MAX_ELONGATION = 5.0


# -- input handling ----------------------------------------------------------
def _as_float_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return a finite float32 copy of a 2D image; NaN/inf pixels become background."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(
            f"The {what} must be a 2D (Y, X) grey image; got shape {array.shape}. "
            "Pick one channel of a multichannel image first."
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.number)) or np.iscomplexobj(array):
        raise ValueError(f"The {what} must hold real numbers; got dtype {array.dtype}.")
    result = array.astype(np.float32, copy=True)
    finite = np.isfinite(result)
    if not finite.all():
        n_bad = int(result.size - finite.sum())
        fill = float(result[finite].min()) if finite.any() else 0.0
        warnings.warn(
            f"The {what} has {n_bad} NaN or infinite pixel(s); they are treated as background.",
            stacklevel=3,
        )
        result[~finite] = fill
    return result


def _is_flat(image: np.ndarray) -> bool:
    return image.size == 0 or float(image.max()) == float(image.min())


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image
    return ndi.gaussian_filter(image, sigma, mode="nearest")


def _threshold(image: np.ndarray, method: str, value: float | None) -> float:
    """Return the automatic (or manual) foreground threshold of an image."""
    from skimage import filters

    if method not in THRESHOLD_METHODS:
        raise ValueError(
            f"Unknown threshold method {method!r}; choose one of {', '.join(THRESHOLD_METHODS)}."
        )
    if method == "manual":
        if value is None:
            raise ValueError("threshold='manual' needs threshold_value (an intensity).")
        return float(value)
    if value is not None:
        raise ValueError(
            f"threshold_value is only used with threshold='manual' (got threshold={method!r})."
        )
    function = {
        "otsu": filters.threshold_otsu,
        "li": filters.threshold_li,
        "triangle": filters.threshold_triangle,
    }[method]
    return float(function(image))


def _disc_area(diameter: float) -> float:
    return float(np.pi * (diameter / 2.0) ** 2)


# -- diameter ----------------------------------------------------------------
#: Area-equivalent diameter of a nucleus over twice its largest inscribed radius
#: (measured on the Data Science Bowl 2018 nuclei: nuclei are mildly elliptic).
_EQUIVALENT_OVER_INSCRIBED = 1.18


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
    """
    from skimage import morphology

    smoothed = _smooth(_as_float_image(image), 1.0)
    if _is_flat(smoothed):
        return DEFAULT_DIAMETER
    mask = smoothed > _threshold(smoothed, "otsu", None)
    mask = morphology.remove_small_objects(_fill_holes(mask), max_size=8)
    labels, n = ndi.label(mask)
    if n == 0:
        return DEFAULT_DIAMETER
    distance = ndi.distance_transform_edt(mask)
    radii = np.zeros(n + 1)
    np.maximum.at(radii, labels[mask], distance[mask])
    radii = radii[1:]
    return float(max(2.0 * _EQUIVALENT_OVER_INSCRIBED * np.median(radii), 4.0))


# -- nuclei ------------------------------------------------------------------
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


def segment_nuclei(
    image: np.ndarray,
    *,
    diameter: float | None = None,
    threshold: str = "otsu",
    threshold_value: float | None = None,
    smoothing: float = 1.0,
    min_area: float | None = None,
    max_area: float | None = None,
    exclude_border: bool = False,
    split: str = "distance",
    max_intensity_quantile: float | None = None,
    threshold_correction: float = 0.5,
    local_contrast: float = 0.5,
) -> np.ndarray:
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
    >>> labels = segment_nuclei(dapi)                   # all defaults
    >>> labels = segment_nuclei(dapi, diameter=30, exclude_border=True)
    """
    if split not in SPLIT_METHODS:
        raise ValueError(f"Unknown split method {split!r}; choose one of {', '.join(SPLIT_METHODS)}.")
    if not 0.0 <= local_contrast < 1.0:
        raise ValueError(f"local_contrast must be in [0, 1); got {local_contrast}.")
    if not 0.0 < threshold_correction <= 2.0:
        raise ValueError(f"threshold_correction must be in (0, 2]; got {threshold_correction}.")
    pixels = _as_float_image(image)
    if _is_flat(pixels):
        warnings.warn(
            "The image is empty (all pixels have the same value); no nuclei found.", stacklevel=2
        )
        return np.zeros(pixels.shape, dtype=np.int32)
    if diameter is None:
        diameter = estimate_diameter(pixels)
    if not diameter > 0:
        raise ValueError(f"diameter must be a positive number of pixels; got {diameter}.")
    expected_area = _disc_area(diameter)
    min_area = _MIN_AREA * expected_area if min_area is None else float(min_area)
    max_area = _MAX_AREA * expected_area if max_area is None else float(max_area)

    smoothed = _smooth(pixels, smoothing)
    mask = _foreground(
        pixels,
        smoothed,
        diameter,
        threshold,
        threshold_value,
        threshold_correction,
        local_contrast,
        max_area,
    )
    mask = _remove_small(_fill_holes(mask), min_area)
    # Fibres go before splitting, which would cut them into nucleus-sized pieces.
    components, _ = ndi.label(mask)
    mask = _drop_labels(components, _fibre_lookup(components, pixels, diameter, max_area)) > 0
    labels = _split_touching(mask, smoothed, diameter, split)
    labels = _remove_by_area(labels, min_area, None)
    labels = _remove_artefacts(labels, pixels, diameter, max_area, max_intensity_quantile)
    if exclude_border:
        from skimage.segmentation import clear_border

        labels = clear_border(labels)
    return _relabel(labels)


def _background_level(smoothed: np.ndarray, threshold: float) -> float:
    below = smoothed[smoothed < threshold]
    return float(np.median(below)) if below.size else float(smoothed.min())


def _foreground(
    pixels: np.ndarray,
    smoothed: np.ndarray,
    diameter: float,
    method: str,
    value: float | None,
    correction: float,
    local_contrast: float,
    max_area: float,
) -> np.ndarray:
    """Foreground mask: above the (corrected) global threshold and the local half-maximum."""
    threshold = _threshold(smoothed, method, value)
    if method != "manual":
        threshold = _threshold_without_fibres(smoothed, pixels, diameter, method, threshold, max_area)
    background = _background_level(smoothed, threshold)
    if method != "manual":
        threshold = background + correction * (threshold - background)
    mask = smoothed > threshold
    if local_contrast > 0:
        peak_source = _smooth(pixels, max(_PEAK_SMOOTHING * diameter, 1.0))
        window = max(int(round(_PEAK_WINDOW * diameter)), 3)
        peak = ndi.maximum_filter(peak_source, size=window, mode="nearest")
        mask &= smoothed > background + local_contrast * (peak - background)
    return mask


def _threshold_without_fibres(
    smoothed: np.ndarray,
    pixels: np.ndarray,
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
    fibres = _fibre_lookup(components, pixels, diameter, max_area)[components]
    if not fibres.any():
        return threshold
    far = ndi.distance_transform_edt(~fibres) > diameter / 4.0
    if far.sum() < 0.5 * far.size:
        return threshold
    return _threshold(smoothed[far], method, None)


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
        landscape = _smooth(landscape, _DISTANCE_SMOOTHING)
    else:
        landscape = _smooth(smoothed, max(diameter / 8.0, 1.0))
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


def _remove_by_area(labels: np.ndarray, min_area: float | None, max_area: float | None) -> np.ndarray:
    sizes = np.bincount(labels.ravel())
    drop = np.zeros(len(sizes), dtype=bool)
    if min_area is not None:
        drop |= sizes < min_area
    if max_area is not None:
        drop |= sizes > max_area
    drop[0] = False
    return _drop_labels(labels, drop)


def _drop_labels(labels: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Set to 0 the labels whose entry of the boolean lookup ``drop`` is True."""
    if not drop.any():
        return labels
    labels = labels.copy()
    labels[drop[labels]] = 0
    return labels


def _remove_artefacts(
    labels: np.ndarray,
    pixels: np.ndarray,
    diameter: float,
    max_area: float,
    max_intensity_quantile: float | None,
) -> np.ndarray:
    """Drop very large, very elongated (fibres, hairs) or, on request, very bright objects."""
    if labels.max() == 0:
        return labels
    area, major, minor, mean_intensity = _object_shapes(labels, pixels)
    present = area > 0
    drop = (area > max_area) | _is_fibre(area, major, minor, diameter, max_area)
    if max_intensity_quantile is not None:
        if not 0.0 < max_intensity_quantile <= 1.0:
            raise ValueError(
                f"max_intensity_quantile must be in (0, 1]; got {max_intensity_quantile}."
            )
        limit = 2.0 * np.quantile(mean_intensity[present], max_intensity_quantile)
        drop |= mean_intensity > limit
    drop &= present
    return _drop_labels(labels, drop)


def _fibre_lookup(
    components: np.ndarray, pixels: np.ndarray, diameter: float, max_area: float
) -> np.ndarray:
    """Per label id (index): is the object a fibre or a hair?"""
    area, major, minor, _ = _object_shapes(components, pixels)
    fibre = _is_fibre(area, major, minor, diameter, max_area)
    fibre[0] = False
    return fibre


def _is_fibre(area, major, minor, diameter: float, max_area: float) -> np.ndarray:
    """Very elongated objects that are thin (fibres) or very large (hairs)."""
    elongated = major / np.maximum(minor, 1.0) > MAX_ELONGATION
    return elongated & ((minor < 0.5 * diameter) | (area > max_area))


def _object_shapes(labels: np.ndarray, pixels: np.ndarray):
    """Area, major and minor axis lengths and mean intensity of every label id (index = id).

    The axes are those of the ellipse with the same second moments (as in
    ``skimage.measure.regionprops``), computed for all objects at once.
    """
    inside = labels > 0
    ids = labels[inside]
    rows, cols = np.nonzero(inside)
    n = int(labels.max()) + 1
    area = np.bincount(ids, minlength=n).astype(np.float64)
    count = np.maximum(area, 1.0)

    def mean(values):
        return np.bincount(ids, weights=values, minlength=n) / count

    mean_row, mean_col = mean(rows), mean(cols)
    var_row = mean(rows.astype(np.float64) ** 2) - mean_row**2
    var_col = mean(cols.astype(np.float64) ** 2) - mean_col**2
    covariance = mean(rows.astype(np.float64) * cols) - mean_row * mean_col
    half_spread = np.sqrt(((var_row - var_col) / 2.0) ** 2 + covariance**2)
    centre = (var_row + var_col) / 2.0
    major = 4.0 * np.sqrt(np.maximum(centre + half_spread, 0.0))
    minor = 4.0 * np.sqrt(np.maximum(centre - half_spread, 0.0))
    return area, major, minor, mean(pixels[inside])


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill the holes of a binary mask (background not connected to the image border)."""
    background, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    edge = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    outside = np.zeros(n + 1, dtype=bool)
    outside[edge] = True
    outside[0] = False
    return ~outside[background]


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber labels to 1..N (int32), keeping their order."""
    present = np.unique(labels)
    present = present[present != 0]
    lookup = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.int32)
    lookup[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    return lookup[labels]


# -- cells -------------------------------------------------------------------
def segment_cells(
    cell_image: np.ndarray,
    nuclei: np.ndarray,
    *,
    threshold: str = "otsu",
    threshold_value: float | None = None,
    smoothing: float = 1.0,
    max_distance: float | None = None,
    threshold_correction: float = 1.0,
) -> np.ndarray:
    """Grow every nucleus into its cell on a cytoplasm or membrane channel.

    Like CellProfiler's IdentifySecondaryObjects "propagation": a watershed
    seeded with the nuclei floods the intensity gradient of the smoothed cell
    channel, restricted to that channel's foreground, so neighbouring cells
    meet at edges, and in the absence of edges halfway between their nuclei.

    Parameters
    ----------
    cell_image : ndarray
        2D cytoplasm or membrane image, same shape as ``nuclei``.
    nuclei : ndarray of int
        Nuclei instance labels (0 background).
    threshold : {'otsu', 'li', 'triangle', 'manual'}
        Foreground threshold method of the cell channel.
    threshold_value : float, optional
        Intensity threshold for ``threshold='manual'``.
    smoothing : float
        Sigma (pixels) of the Gaussian smoothing of the cell channel.
    max_distance : float, optional
        Largest distance (pixels) of a cell pixel from its nucleus; no limit
        when not given.
    threshold_correction : float
        Factor applied to the automatic threshold's height above background
        (below 1 takes in dimmer cytoplasm).

    Returns
    -------
    ndarray of int32
        Cell labels: a cell has the id of its nucleus, and every nucleus keeps
        at least its own pixels. Foreground not reachable from a nucleus stays 0.
    """
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    nuclei = _checked_labels(nuclei, "nuclei")
    if np.shape(cell_image) != nuclei.shape:
        raise ValueError(
            f"The cell image has shape {np.shape(cell_image)} but the nuclei labels have shape "
            f"{nuclei.shape}; they must be the same."
        )
    if nuclei.max() == 0:
        return nuclei.copy()
    pixels = _as_float_image(cell_image, "cell image")
    seeds = nuclei > 0
    if _is_flat(pixels):
        return nuclei.copy()
    smoothed = _smooth(pixels, smoothing)
    level = _threshold(smoothed, threshold, threshold_value)
    if threshold != "manual":
        background = _background_level(smoothed, level)
        level = background + threshold_correction * (level - background)
    foreground = (smoothed > level) | seeds
    if max_distance is not None:
        foreground &= ndi.distance_transform_edt(~seeds) <= max_distance
    cells = watershed(sobel(smoothed), nuclei, mask=foreground)
    return cells.astype(np.int32, copy=False)


def expand_nuclei(nuclei: np.ndarray, distance: float) -> np.ndarray:
    """Grow nuclei by ``distance`` pixels into cells, without overlap.

    The fallback when there is no cytoplasm or membrane channel; a pixel
    goes to the nearest nucleus within ``distance``.

    Parameters
    ----------
    nuclei : ndarray of int
        Nuclei instance labels (0 background).
    distance : float
        Expansion in pixels (0 returns a copy of the nuclei).

    Returns
    -------
    ndarray of int32
        Cell labels with the ids of their nuclei.
    """
    from skimage.segmentation import expand_labels

    nuclei = _checked_labels(nuclei, "nuclei")
    if distance < 0:
        raise ValueError(f"The expansion distance must be >= 0 pixels; got {distance}.")
    return expand_labels(nuclei, distance=distance).astype(np.int32, copy=False)


def _checked_labels(labels: np.ndarray, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"The {what} must be a 2D integer label image; got shape {labels.shape}, "
            f"dtype {labels.dtype}."
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"The {what} label image has negative labels.")
    return labels.astype(np.int32, copy=False)


# -- sites -------------------------------------------------------------------
@dataclass
class SegmentationParams:
    """Settings of the segmentation of a site (saved in a project as a dict).

    Attributes
    ----------
    nuclei_channel : str
        Name of the nuclear-stain channel (e.g. ``'DAPI'``).
    cell_channel : str, optional
        Name of a cytoplasm or membrane channel; nuclei are grown by
        ``cell_expansion`` pixels when not given.
    diameter : float, optional
        Expected nucleus diameter in pixels; estimated per site when not given.
    threshold : {'otsu', 'li', 'triangle', 'manual'}
        Global threshold method of the nuclei.
    threshold_value : float, optional
        Nuclei threshold in image units for ``threshold='manual'``.
    smoothing : float
        Gaussian sigma in pixels before thresholding (both channels).
    min_area, max_area : float, optional
        Nucleus area limits in pixels (defaults follow the diameter).
    exclude_border : bool
        Drop nuclei (and their cells) touching the image border.
    split : {'distance', 'intensity', 'none'}
        How touching nuclei are split.
    max_intensity_quantile : float, optional
        Bright-artefact filter (see :func:`segment_nuclei`); off by default.
    threshold_correction : float
        See :func:`segment_nuclei`.
    local_contrast : float
        See :func:`segment_nuclei`.
    cell_threshold : {'otsu', 'li', 'triangle', 'manual'}
        Foreground threshold method of the cell channel.
    cell_threshold_value : float, optional
        Cell-channel threshold for ``cell_threshold='manual'``.
    cell_expansion : float, optional
        Growth of nuclei into cells (pixels) without a cell channel; default
        half the nucleus diameter.
    cell_max_distance : float, optional
        Largest distance of a cell pixel from its nucleus on the cell channel.
    backend : {'classical', 'cellpose'}
        Segmentation method; 'cellpose' needs the cellpose package and local
        model weights.
    cellpose_model : str, optional
        Path of cellpose model weights (or the name of a model cellpose has
        stored locally), for ``backend='cellpose'``.
    """

    nuclei_channel: str
    cell_channel: str | None = None
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
    cell_threshold: str = "otsu"
    cell_threshold_value: float | None = None
    cell_expansion: float | None = None
    cell_max_distance: float | None = None
    backend: str = "classical"
    cellpose_model: str | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("threshold", self.threshold, THRESHOLD_METHODS),
            ("cell_threshold", self.cell_threshold, THRESHOLD_METHODS),
            ("split", self.split, SPLIT_METHODS),
            ("backend", self.backend, BACKENDS),
        ):
            if value not in allowed:
                raise ValueError(f"Unknown {name} {value!r}; choose one of {', '.join(allowed)}.")
        if self.diameter is not None and not self.diameter > 0:
            raise ValueError(f"diameter must be a positive number of pixels; got {self.diameter}.")

    def to_dict(self) -> dict:
        """Return the settings as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SegmentationParams":
        """Build settings from a dict such as :meth:`to_dict` returns.

        Raises
        ------
        ValueError
            Naming unknown keys and the known ones.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown segmentation setting(s) {', '.join(unknown)}; known settings are: "
                f"{', '.join(sorted(known))}."
            )
        return cls(**values)


def _channel(channel_names: Sequence[str], name: str, role: str) -> int:
    names = [str(n) for n in channel_names]
    if name in names:
        return names.index(name)
    raise ValueError(
        f"The {role} channel {name!r} is not in the image; channels are: {', '.join(names)}."
    )


def segment_site(
    image_cyx: np.ndarray, params: SegmentationParams, channel_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Segment the nuclei and cells of one site.

    Parameters
    ----------
    image_cyx : ndarray
        ``(C, Y, X)`` pixels of the site.
    params : SegmentationParams
        Channels and settings.
    channel_names : sequence of str
        Names of the channels, in the order of the channel axis.

    Returns
    -------
    nuclei, cells : ndarray of int32
        Instance labels; a cell has the id of its nucleus.

    Raises
    ------
    ValueError
        If the image is not ``(C, Y, X)`` with one plane per channel name, or
        a channel of ``params`` is missing (the message lists the channels).
    """
    image = np.asarray(image_cyx)
    if image.ndim != 3 or image.shape[0] != len(channel_names):
        raise ValueError(
            f"Expected a (C, Y, X) image with {len(channel_names)} channel(s) "
            f"({', '.join(map(str, channel_names))}); got shape {image.shape}."
        )
    nuclei_index = _channel(channel_names, params.nuclei_channel, "nuclei")
    cell_index = (
        None if params.cell_channel is None else _channel(channel_names, params.cell_channel, "cell")
    )
    if params.backend == "cellpose":
        return _segment_site_cellpose(image, params, nuclei_index, cell_index)
    diameter = params.diameter
    if diameter is None and params.cell_expansion is None and cell_index is None:
        diameter = estimate_diameter(image[nuclei_index])
    nuclei = segment_nuclei(
        image[nuclei_index],
        diameter=diameter,
        threshold=params.threshold,
        threshold_value=params.threshold_value,
        smoothing=params.smoothing,
        min_area=params.min_area,
        max_area=params.max_area,
        exclude_border=params.exclude_border,
        split=params.split,
        max_intensity_quantile=params.max_intensity_quantile,
        threshold_correction=params.threshold_correction,
        local_contrast=params.local_contrast,
    )
    if cell_index is None:
        expansion = params.cell_expansion
        if expansion is None:
            expansion = 0.5 * diameter
        return nuclei, expand_nuclei(nuclei, expansion)
    cells = segment_cells(
        image[cell_index],
        nuclei,
        threshold=params.cell_threshold,
        threshold_value=params.cell_threshold_value,
        smoothing=params.smoothing,
        max_distance=params.cell_max_distance,
    )
    return nuclei, cells


# -- cellpose ----------------------------------------------------------------
CELLPOSE_MISSING = "cellpose is not installed; pip install cellpose and provide local model weights"


def _cellpose_model(params: SegmentationParams):
    try:
        from cellpose import models
    except ImportError as error:
        raise RuntimeError(CELLPOSE_MISSING) from error
    if not params.cellpose_model:
        raise ValueError(
            "backend='cellpose' needs local model weights: set cellpose_model to the path of "
            "a weights file (or the name of a model stored in cellpose's model folder)."
        )
    return models.CellposeModel(gpu=False, pretrained_model=str(params.cellpose_model))


def _segment_site_cellpose(
    image: np.ndarray, params: SegmentationParams, nuclei_index: int, cell_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Nuclei (and cells, with a cell channel) predicted by a local cellpose model."""
    model = _cellpose_model(params)
    nuclei_pixels = _as_float_image(image[nuclei_index], "nuclei channel")
    nuclei, *_ = model.eval(nuclei_pixels, diameter=params.diameter, channels=[0, 0])
    nuclei = _checked_labels(np.asarray(nuclei), "cellpose nuclei")
    if params.exclude_border:
        from skimage.segmentation import clear_border

        nuclei = clear_border(nuclei)
    nuclei = _relabel(nuclei)
    if cell_index is None:
        diameter = params.diameter or estimate_diameter(nuclei_pixels)
        expansion = params.cell_expansion if params.cell_expansion is not None else 0.5 * diameter
        return nuclei, expand_nuclei(nuclei, expansion)
    cell_pixels = _as_float_image(image[cell_index], "cell channel")
    cells, *_ = model.eval(
        np.stack([cell_pixels, nuclei_pixels], axis=-1), diameter=None, channels=[1, 2]
    )
    return nuclei, _cells_with_nucleus_ids(_checked_labels(np.asarray(cells), "cellpose cells"), nuclei)


def _cells_with_nucleus_ids(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """Renumber predicted cells to the id of the nucleus they overlap most.

    Cells without a nucleus are dropped; a nucleus without a cell keeps its
    own pixels as its cell.
    """
    n_cells = int(cells.max()) + 1
    n_nuclei = int(nuclei.max()) + 1
    both = (cells > 0) & (nuclei > 0)
    overlap = np.bincount(
        cells[both].astype(np.int64) * n_nuclei + nuclei[both], minlength=n_cells * n_nuclei
    ).reshape(n_cells, n_nuclei)
    owner = overlap.argmax(axis=1)
    # Each nucleus goes to the one cell that overlaps it most.
    best_cell = overlap.argmax(axis=0)
    keep = (overlap.max(axis=1) > 0) & (best_cell[owner] == np.arange(n_cells))
    owner = np.where(keep, owner, 0)
    result = owner[cells].astype(np.int32)
    result[nuclei > 0] = nuclei[nuclei > 0]
    return result


# -- metrics -----------------------------------------------------------------
def _iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every (true object, predicted object) pair; rows truth, columns pred."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(
            f"truth and pred label images differ in shape: {truth.shape} vs {pred.shape}."
        )
    truth_values, truth_index = np.unique(truth, return_inverse=True)
    pred_values, pred_index = np.unique(pred, return_inverse=True)
    n_pred = len(pred_values)
    pairs = truth_index.ravel().astype(np.int64) * n_pred + pred_index.ravel()
    overlap = np.bincount(pairs, minlength=len(truth_values) * n_pred)
    overlap = overlap.reshape(len(truth_values), n_pred).astype(np.float64)
    truth_area = overlap.sum(axis=1)
    pred_area = overlap.sum(axis=0)
    is_truth = truth_values != 0
    is_pred = pred_values != 0
    overlap = overlap[is_truth][:, is_pred]
    union = truth_area[is_truth, None] + pred_area[None, is_pred] - overlap
    return overlap / np.maximum(union, 1.0)


def _count_matches(iou: np.ndarray, iou_threshold: float) -> int:
    if iou.size == 0:
        return 0
    if iou_threshold >= 0.5:
        # Above 0.5 an object can overlap at most one partner that much: matching is unique.
        return int((iou > iou_threshold).sum())
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(iou, maximize=True)
    return int((iou[rows, cols] > iou_threshold).sum())


def match_instances(
    truth: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5
) -> tuple[int, int, int]:
    """Match predicted to true objects one-to-one by intersection over union.

    A predicted object is a true positive when its IoU with a true object is
    above ``iou_threshold`` (the rule of the 2018 Data Science Bowl).

    Parameters
    ----------
    truth, pred : ndarray
        Instance label images of the same shape (0 is background).
    iou_threshold : float
        IoU a pair must exceed to match.

    Returns
    -------
    tp, fp, fn : int
        Matched pairs, unmatched predictions, unmatched true objects.
    """
    iou = _iou_matrix(truth, pred)
    tp = _count_matches(iou, iou_threshold)
    n_truth, n_pred = iou.shape
    return tp, n_pred - tp, n_truth - tp


def instance_f1(truth: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5) -> float:
    """Return the F1 score ``2 TP / (2 TP + FP + FN)`` of an instance segmentation.

    Both images empty counts as a perfect score (1.0).
    """
    tp, fp, fn = match_instances(truth, pred, iou_threshold)
    return 1.0 if tp + fp + fn == 0 else 2.0 * tp / (2.0 * tp + fp + fn)


#: IoU thresholds of the Data Science Bowl 2018 metric.
DSB_THRESHOLDS = tuple(np.round(np.arange(0.5, 1.0, 0.05), 2))


def average_precision(
    truth: np.ndarray, pred: np.ndarray, *, thresholds: Sequence[float] = DSB_THRESHOLDS
) -> float:
    """Return the Data Science Bowl 2018 score of one image.

    For every IoU threshold the precision is ``TP / (TP + FP + FN)``; the score
    is their mean over ``thresholds`` (0.5, 0.55, ..., 0.95 by default).

    Parameters
    ----------
    truth, pred : ndarray
        Instance label images of the same shape (0 is background).
    thresholds : sequence of float
        IoU thresholds.

    Returns
    -------
    float
        Mean precision; 1.0 when both images are empty.
    """
    iou = _iou_matrix(truth, pred)
    n_truth, n_pred = iou.shape
    scores = []
    for threshold in thresholds:
        tp = _count_matches(iou, threshold)
        total = n_truth + n_pred - tp
        scores.append(1.0 if total == 0 else tp / total)
    return float(np.mean(scores))


def foreground_iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """Return the IoU of two foreground masks (any nonzero pixel is foreground)."""
    truth = np.asarray(truth) != 0
    pred = np.asarray(pred) != 0
    if truth.shape != pred.shape:
        raise ValueError(f"Masks differ in shape: {truth.shape} vs {pred.shape}.")
    union = np.logical_or(truth, pred).sum()
    return 1.0 if union == 0 else float(np.logical_and(truth, pred).sum() / union)
