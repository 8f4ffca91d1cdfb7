"""Classical per-cell features: shape, intensity, texture and neighbourhood.

Two entry points share one vectorised engine:

* :func:`measure_cells` measures every nucleus (and its cell) of a segmented
  site ``(C, Y, X)``: one row per nucleus label.
* :func:`crop_features` measures single-cell crops ``(N, C, S, S)`` cut
  elsewhere: the whole crop, and the nucleus found in it.

Column names
------------
Every feature column starts with ``feat_`` and reads as
``feat_<compartment>_<feature>[_s<distance>][_<channel>]``:

==============================================  ==========================================
``feat_{c}_{shape}``                            shape of compartment ``c``: ``area``,
                                                ``perimeter``, ``eccentricity``, ``solidity``,
                                                ``roundness``, ``width``, ``length``,
                                                ``width_length_ratio``
``feat_{c}_{stat}_{channel}``                   intensity: ``mean``, ``std``, ``cv``, ``min``,
                                                ``max``, ``median``, ``sum``, ``contrast``
``feat_{c}_glcm_{prop}_s{d}_{channel}``         Haralick texture at distance ``d``:
                                                ``contrast``, ``homogeneity``, ``energy``,
                                                ``correlation``, ``asm``, ``dissimilarity``
``feat_{c}_ser_{kind}_{channel}``               Hessian (SER) texture: ``spot``, ``hole``,
                                                ``edge``, ``ridge``, ``valley``, ``saddle``
``feat_neighbourhood_count``                    nuclei centroids within the density radius
``feat_neighbourhood_nearest_distance``         distance to the nearest nucleus centroid
``feat_cell_touching_fraction``                 fraction of the cell border touching cells
==============================================  ==========================================

Compartments are ``nucleus`` and ``cell`` for segmented sites, ``nucleus`` and
``crop`` for crops. :func:`parse_feature_name` and :func:`feature_groups` split
columns by kind, compartment or channel.

Undefined values are 0, never NaN: a ratio whose denominator is 0 (the CV of a
zero-mean object, the contrast of an all-zero object, the roundness of an
object without perimeter, the GLCM correlation of a flat object) is 0, and an
empty object (a crop where no nucleus was found) has 0 for every feature.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

__all__ = [
    "GLCM_FEATURES",
    "INTENSITY_FEATURES",
    "NEIGHBOURHOOD_FEATURES",
    "SER_FEATURES",
    "SHAPE_FEATURES",
    "FeatureName",
    "crop_features",
    "feature_groups",
    "find_crop_nuclei",
    "measure_cells",
    "parse_feature_name",
]

FEATURE_PREFIX = "feat_"
SHAPE_FEATURES = (
    "area",
    "perimeter",
    "eccentricity",
    "solidity",
    "roundness",
    "width",
    "length",
    "width_length_ratio",
)
INTENSITY_FEATURES = ("mean", "std", "cv", "min", "max", "median", "sum", "contrast")
GLCM_FEATURES = ("contrast", "homogeneity", "energy", "correlation", "asm", "dissimilarity")
SER_FEATURES = ("spot", "hole", "edge", "ridge", "valley", "saddle")
NEIGHBOURHOOD_FEATURES = (
    "feat_neighbourhood_count",
    "feat_neighbourhood_nearest_distance",
    "feat_cell_touching_fraction",
)
COMPARTMENTS = ("nucleus", "cell", "crop")

#: Pixel offsets (dy, dx) of the four GLCM angles 0, 45, 90 and 135 degrees.
_ANGLE_STEPS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))

Progress = Callable[[int, int], None]


# -- naming ------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureName:
    """The parts of a feature column name.

    Attributes
    ----------
    column : str
        The full column name.
    kind : str
        ``shape``, ``intensity``, ``texture`` (GLCM), ``ser`` or ``neighbourhood``.
    compartment : str
        ``nucleus``, ``cell``, ``crop`` or ``neighbourhood``.
    feature : str
        The measurement, e.g. ``area``, ``mean``, ``contrast``, ``spot``.
    channel : str or None
        Channel name for per-channel features.
    scale : int or None
        GLCM distance in pixels for texture features.
    """

    column: str
    kind: str
    compartment: str
    feature: str
    channel: str | None = None
    scale: int | None = None


def _alternatives(names: Iterable[str]) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


_COMPARTMENT = f"(?P<compartment>{_alternatives(COMPARTMENTS)})"
_NAME_PATTERNS = (
    ("shape", re.compile(rf"^feat_{_COMPARTMENT}_(?P<feature>{_alternatives(SHAPE_FEATURES)})$")),
    (
        "texture",
        re.compile(
            rf"^feat_{_COMPARTMENT}_glcm_(?P<feature>{_alternatives(GLCM_FEATURES)})"
            r"_s(?P<scale>\d+)_(?P<channel>.+)$"
        ),
    ),
    (
        "ser",
        re.compile(rf"^feat_{_COMPARTMENT}_ser_(?P<feature>{_alternatives(SER_FEATURES)})_(?P<channel>.+)$"),
    ),
    (
        "intensity",
        re.compile(
            rf"^feat_{_COMPARTMENT}_(?P<feature>{_alternatives(INTENSITY_FEATURES)})_(?P<channel>.+)$"
        ),
    ),
)


def parse_feature_name(column: str) -> FeatureName:
    """Split a feature column name into kind, compartment, feature, channel, scale.

    Raises
    ------
    ValueError
        If the column is not a feature column made by this module.

    Examples
    --------
    >>> parse_feature_name("feat_nucleus_glcm_contrast_s1_DAPI")
    FeatureName(column='feat_nucleus_glcm_contrast_s1_DAPI', kind='texture', compartment='nucleus', feature='contrast', channel='DAPI', scale=1)
    """
    if column in NEIGHBOURHOOD_FEATURES:
        compartment = "cell" if column.startswith("feat_cell_") else "neighbourhood"
        feature = column.removeprefix(f"feat_{compartment}_")
        return FeatureName(column, "neighbourhood", compartment, feature)
    for kind, pattern in _NAME_PATTERNS:
        match = pattern.match(column)
        if match:
            parts = match.groupdict()
            scale = parts.get("scale")
            return FeatureName(
                column,
                kind,
                parts["compartment"],
                parts["feature"],
                parts.get("channel"),
                int(scale) if scale is not None else None,
            )
    raise ValueError(
        f"{column!r} is not a feature column: expected 'feat_<compartment>_<feature>[_<channel>]' "
        f"with compartment one of {', '.join(COMPARTMENTS)}."
    )


def feature_groups(columns: Iterable[str], *, by: str = "kind") -> dict[str, list[str]]:
    """Group feature columns by kind, compartment, channel or GLCM scale.

    Columns that are not features of this module (identity columns, embeddings,
    predictions) are left out, so a whole cell table can be passed.

    Parameters
    ----------
    columns : iterable of str
        Column names, e.g. ``table.columns``.
    by : {"kind", "compartment", "channel", "feature"}
        What to group by. Features without a channel (shape, neighbourhood) go to
        the group ``"none"`` when grouping by channel.

    Returns
    -------
    dict of str to list of str
        Group name -> columns, in the order given.

    Examples
    --------
    >>> feature_groups(["feat_nucleus_area", "feat_cell_mean_DAPI", "crop_index"])
    {'shape': ['feat_nucleus_area'], 'intensity': ['feat_cell_mean_DAPI']}
    """
    if by not in ("kind", "compartment", "channel", "feature"):
        raise ValueError(f"Cannot group features by {by!r}; use kind, compartment, channel or feature.")
    groups: dict[str, list[str]] = {}
    for column in columns:
        if not str(column).startswith(FEATURE_PREFIX):
            continue
        try:
            name = parse_feature_name(str(column))
        except ValueError:
            continue
        key = getattr(name, by) or "none"
        groups.setdefault(key, []).append(str(column))
    return groups


# -- input checks ------------------------------------------------------------
def _check_image(image_cyx, channel_names: Sequence[str]) -> np.ndarray:
    image = np.asarray(image_cyx)
    if image.ndim == 2:
        image = image[np.newaxis]
    if image.ndim != 3:
        raise ValueError(f"The image must be (C, Y, X) or (Y, X); got shape {image.shape}.")
    if len(channel_names) != image.shape[0]:
        raise ValueError(
            f"The image has {image.shape[0]} channel(s) but {len(channel_names)} channel name(s) "
            f"were given: {list(channel_names)}."
        )
    _check_pixels(image, "image")
    return image


def _check_pixels(array: np.ndarray, what: str) -> None:
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"The {what} must hold real numbers; got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating):
        bad = np.count_nonzero(~np.isfinite(array))
        if bad:
            raise ValueError(f"The {what} hold(s) {bad} NaN or infinite pixel(s); expected finite values.")


def _check_labels(labels, shape: tuple[int, int], what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ValueError(f"The {what} labels have shape {labels.shape}; the image is {shape} (Y, X).")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"The {what} labels must be integers (0 = background); got dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"The {what} labels hold negative values; expected 0 (background) and ids > 0.")
    return labels


def _check_scales(texture_scales: Sequence[int], glcm_levels: int) -> tuple[int, ...]:
    scales = tuple(int(s) for s in texture_scales)
    if any(s < 1 for s in scales) or len(set(scales)) != len(scales):
        raise ValueError(f"texture_scales must be distinct distances >= 1 pixel; got {texture_scales}.")
    if not 2 <= int(glcm_levels) <= 256:
        raise ValueError(f"glcm_levels must be between 2 and 256; got {glcm_levels}.")
    return scales


def _safe_divide(numerator, denominator) -> np.ndarray:
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _id_slots(ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each label in the sorted ``ids``, and whether it is one of them."""
    if len(ids) == 0:
        return np.zeros(len(labels), dtype=np.int64), np.zeros(len(labels), dtype=bool)
    slot = np.minimum(np.searchsorted(ids, labels), len(ids) - 1)
    return slot, ids[slot] == labels


def _count_per_id(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How often each of the sorted ``ids`` occurs in ``labels``."""
    slot, known = _id_slots(ids, labels)
    return np.bincount(slot[known], minlength=len(ids)).astype(np.float64)


# -- the engine: pixels of labelled regions in a (B, H, W) stack --------------
class _Regions:
    """Pixels of the regions ``ids`` of a ``(B, H, W)`` label stack, grouped by region.

    ``flat`` holds the flat pixel indices sorted by region; region ``k`` owns
    ``flat[starts[k]:starts[k + 1]]``. Pixels of labels not in ``ids`` are ignored.
    """

    def __init__(self, labels: np.ndarray, ids: np.ndarray):
        self.shape = labels.shape
        self.labels = labels
        self.ids = ids
        self.n = len(ids)
        raveled = labels.ravel()
        flat = np.flatnonzero(raveled)
        found = raveled[flat]
        row, known = _id_slots(ids, found)
        flat, row = flat[known], row[known]
        # Radix sort when the region index fits 16 bits: fast and stable.
        order = np.argsort(row.astype(np.uint16) if self.n < 2**16 else row, kind="stable")
        self.flat = flat[order]
        self.row = row[order]
        self.counts = np.bincount(self.row, minlength=self.n)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        # Dense: every pixel belongs to a region, in pixel order (whole crops);
        # then a pixel's position in ``flat`` is its flat index.
        self.dense = len(self.flat) == raveled.size and bool(np.all(self.flat == np.arange(raveled.size)))
        self._position: np.ndarray | None = None

    @property
    def empty(self) -> np.ndarray:
        return self.counts == 0

    def gather(self, stack: np.ndarray) -> np.ndarray:
        """Values of the region pixels of a ``(..., B, H, W)`` array, shape ``(..., m)``."""
        lead = stack.shape[: stack.ndim - 3]
        raveled = stack.reshape(*lead, -1)
        return raveled if self.dense else raveled[..., self.flat]

    def reduce(self, ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        """Apply ``ufunc.reduceat`` per region over the last axis; 0 for empty regions."""
        out = np.zeros((*values.shape[:-1], self.n), dtype=np.float64)
        full = ~self.empty
        if not full.any():
            return out
        starts = self.starts[:-1][full]
        accumulator = np.float64 if ufunc is np.add else None
        rows, out_rows = values.reshape(-1, values.shape[-1]), out.reshape(-1, self.n)
        for row, out_row in zip(rows, out_rows):  # 1D reduceat is the fast path
            out_row[full] = ufunc.reduceat(row, starts, dtype=accumulator)
        return out

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum (float64) per region over the last axis; 0 for empty regions."""
        return self.reduce(np.add, values)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Mean per region over the last axis; 0 for empty regions."""
        return _safe_divide(self.sum(values), self.counts)

    def pairs(self, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(i, j)`` into ``flat`` of pixel pairs ``(p, p + (dy, dx))`` in one region."""
        _, height, width = self.shape
        if abs(dy) >= height or abs(dx) >= width:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        rows = slice(max(0, -dy), height - max(0, dy))
        cols = slice(max(0, -dx), width - max(0, dx))
        shifted = (slice(None), slice(rows.start + dy, rows.stop + dy), slice(cols.start + dx, cols.stop + dx))
        same = np.zeros(self.shape, dtype=bool)
        here = self.labels[:, rows, cols]
        same[:, rows, cols] = (here == self.labels[shifted]) & (here > 0)
        start = np.flatnonzero(same)
        if self.dense:
            return start, start + (dy * width + dx)
        if self._position is None:
            index_type = np.int32 if self.labels.size < 2**31 else np.int64
            self._position = np.full(self.labels.size, -1, dtype=index_type)
            self._position[self.flat] = np.arange(len(self.flat))
        i = self._position[start]
        j = self._position[start + (dy * width + dx)]
        inside = i >= 0
        return i[inside], j[inside]


def _intensity_features(values: np.ndarray, regions: _Regions) -> dict[str, np.ndarray]:
    """Intensity statistics per channel and region; arrays of shape ``(C, n)``."""
    mean = regions.mean(values)
    centred = values - mean.astype(values.dtype)[:, regions.row]
    std = np.sqrt(regions.mean(centred * centred))
    low = regions.reduce(np.minimum, values)
    high = regions.reduce(np.maximum, values)
    median = np.zeros_like(mean)
    sizes = np.unique(regions.counts)
    if len(sizes) == 1 and sizes[0] > 0:  # equal regions (whole crops): one call
        median[:] = np.median(values.reshape(len(values), regions.n, sizes[0]), axis=2)
    else:
        for k in np.flatnonzero(~regions.empty):
            median[:, k] = np.median(values[:, regions.starts[k] : regions.starts[k + 1]], axis=1)
    return {
        "mean": mean,
        "std": std,
        "cv": _safe_divide(std, np.abs(mean)),
        "min": low,
        "max": high,
        "median": median,
        "sum": regions.sum(values),
        "contrast": _safe_divide(high - low, high + low),
    }


def _quantise(values: np.ndarray, low: np.ndarray, high: np.ndarray, regions: _Regions, levels: int) -> np.ndarray:
    """Quantise each region's pixels of one channel to ``0 .. levels - 1`` over its own range."""
    low_px = low.astype(np.float32)[regions.row]
    scale = _safe_divide(levels, high - low).astype(np.float32)[regions.row]
    quantised = ((values - low_px) * scale).astype(np.int32)
    return np.clip(quantised, 0, levels - 1, out=quantised)


def _haralick(matrices: np.ndarray, levels: int) -> dict[str, np.ndarray]:
    """Haralick features of symmetric co-occurrence counts ``(n, L, L)``."""
    n = len(matrices)
    totals = matrices.sum(axis=(1, 2))
    p = _safe_divide(matrices.reshape(n, -1), totals[:, None])
    i, j = np.indices((levels, levels)).reshape(2, -1).astype(np.float64)
    weights = np.stack([(i - j) ** 2, np.abs(i - j), 1.0 / (1.0 + (i - j) ** 2), i * j], axis=1)
    contrast, dissimilarity, homogeneity, products = (p @ weights).T
    asm = np.einsum("nk,nk->n", p, p)
    marginal = p.reshape(n, levels, levels).sum(axis=2)
    grey = np.arange(levels, dtype=np.float64)
    mu = marginal @ grey
    variance = marginal @ grey**2 - mu**2
    correlation = _safe_divide(products - mu**2, np.where(variance > 1e-12, variance, 0.0))
    return {
        "contrast": contrast,
        "homogeneity": homogeneity,
        "energy": np.sqrt(asm),
        "correlation": correlation,
        "asm": asm,
        "dissimilarity": dissimilarity,
    }


def _glcm_features(
    values: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    regions: _Regions,
    *,
    scales: tuple[int, ...],
    levels: int,
) -> dict[tuple[str, int], np.ndarray]:
    """GLCM features per (feature, distance): arrays ``(C, n)`` averaged over 4 angles."""
    n_channels = len(values)
    out = {(name, d): np.zeros((n_channels, regions.n)) for name in GLCM_FEATURES for d in scales}
    if not len(regions.flat):
        return out
    index_type = np.int32 if regions.n * levels * levels < 2**31 else np.int64
    quantised = [_quantise(values[c], low[c], high[c], regions, levels).astype(index_type) for c in range(n_channels)]
    base = regions.row.astype(index_type) * (levels * levels)
    # Code of a pair = region * L^2 + first level * L + second level.
    firsts = [base + q * levels for q in quantised]
    for d in scales:
        for step_y, step_x in _ANGLE_STEPS:
            i, j = regions.pairs(step_y * d, step_x * d)
            for c in range(n_channels):
                codes = firsts[c][i] + quantised[c][j]
                counts = np.bincount(codes, minlength=regions.n * levels * levels)
                counts = counts.reshape(regions.n, levels, levels).astype(np.float64)
                props = _haralick(counts + counts.transpose(0, 2, 1), levels)
                for name, value in props.items():
                    out[(name, d)][c] += value / len(_ANGLE_STEPS)
    return out


@dataclass
class _Derivatives:
    """Gradient and Hessian of a Gaussian-smoothed ``(B, H, W)`` stack."""

    gy: np.ndarray
    gx: np.ndarray
    hyy: np.ndarray
    hxy: np.ndarray
    hxx: np.ndarray


def _derivatives(stack: np.ndarray, sigma: float) -> _Derivatives:
    smooth = ndi.gaussian_filter(stack.astype(np.float32, copy=False), sigma=(0, sigma, sigma))
    gy, gx = np.gradient(smooth, axis=(1, 2))
    hyy, hxy = np.gradient(gy, axis=(1, 2))
    hxx = np.gradient(gx, axis=2)
    return _Derivatives(gy, gx, hyy, hxy, hxx)


def _ser_features(
    derivatives: _Derivatives, mean_intensity: np.ndarray, regions: _Regions, sigma: float
) -> dict[str, np.ndarray]:
    """Spot, hole, edge, ridge, valley and saddle responses of one channel, per region.

    The Hessian eigenvalues ``l1 <= l2`` (scale-normalised by ``sigma**2``) give
    spot ``max(0, -l2)`` (bright blob: both negative), hole ``max(0, l1)`` (dark
    blob), ridge ``max(0, -l1 - |l2|)`` (bright line), valley ``max(0, l2 - |l1|)``
    (dark line) and saddle ``max(0, min(-l1, l2))``; edge is the scale-normalised
    gradient magnitude. Each is averaged over the region and divided by the
    region's mean intensity, so it does not depend on the stain's brightness.
    """
    hyy, hxy, hxx = (regions.gather(a) for a in (derivatives.hyy, derivatives.hxy, derivatives.hxx))
    gy, gx = regions.gather(derivatives.gy), regions.gather(derivatives.gx)
    half_trace = (hxx + hyy) / 2
    radius = np.sqrt(((hxx - hyy) / 2) ** 2 + hxy**2)
    l1, l2 = half_trace - radius, half_trace + radius
    responses = {
        "spot": np.maximum(0, -l2),
        "hole": np.maximum(0, l1),
        "edge": np.hypot(gx, gy),
        "ridge": np.maximum(0, -l1 - np.abs(l2)),
        "valley": np.maximum(0, l2 - np.abs(l1)),
        "saddle": np.maximum(0, np.minimum(-l1, l2)),
    }
    # Every response scales linearly with the derivatives, so the scale
    # normalisation (sigma for the gradient, sigma**2 for the Hessian) is applied to the means.
    scales = {kind: sigma**2 for kind in SER_FEATURES} | {"edge": sigma}
    brightness = np.abs(mean_intensity)
    return {
        kind: scales[kind] * _safe_divide(regions.mean(responses[kind]), brightness) for kind in SER_FEATURES
    }


#: skimage's perimeter weights, indexed by 1 + 2 * (4-neighbours on the border)
#: + 10 * (diagonal neighbours on the border) of a border pixel.
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2)) / 2
_FOUR_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))
_DIAGONAL_STEPS = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def _neighbour(padded: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The (dy, dx) neighbour of every pixel of a stack padded by one pixel in Y and X."""
    height, width = padded.shape[1] - 2, padded.shape[2] - 2
    return padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]


def _border_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Border pixels (a 4-neighbour outside the object) and their perimeter weights."""
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)))
    interior = labels > 0
    for dy, dx in _FOUR_STEPS:
        interior &= _neighbour(padded, dy, dx) == labels
    border = (labels > 0) & ~interior
    padded_border = np.pad(np.where(border, labels, 0), ((0, 0), (1, 1), (1, 1)))
    code = np.ones(labels.shape, dtype=np.int16)
    for steps, weight in ((_FOUR_STEPS, 2), (_DIAGONAL_STEPS, 10)):
        for dy, dx in steps:
            code += weight * (_neighbour(padded_border, dy, dx) == labels)
    where = np.flatnonzero(border)
    return where, _PERIMETER_WEIGHTS[code.ravel()[where]]


def _digital_hull_size(points: np.ndarray) -> float:
    """Number of pixel centres in the convex hull of integer points (Pick's theorem)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):
        # Fewer than three points, or all on one line: the hull is a segment.
        ends = points[np.lexsort(points.T[::-1])[[0, -1]]]
        return float(np.gcd.reduce(np.abs(ends[1] - ends[0])) + 1)
    corners = points[hull.vertices]
    steps = np.abs(np.diff(np.vstack([corners, corners[:1]]), axis=0))
    on_edges = np.gcd(steps[:, 0], steps[:, 1]).sum()
    return float(hull.volume + on_edges / 2 + 1)


def _shape_features(regions: _Regions) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Shape features of every region and centroids ``(n, 2)`` (y, x); 0 for empty regions.

    Matches :func:`skimage.measure.regionprops` for area, perimeter (4-connected
    border), eccentricity and axis lengths; solidity is the area over the number
    of pixels in the convex hull of the object's pixel centres.
    """
    if regions.n == 0:
        return {name: np.zeros(0) for name in SHAPE_FEATURES}, np.zeros((0, 2))
    _, height, width = regions.shape
    y = ((regions.flat // width) % height).astype(np.float64)
    x = (regions.flat % width).astype(np.float64)
    area = regions.counts.astype(np.float64)
    cy, cx = regions.mean(y[None])[0], regions.mean(x[None])[0]
    dy, dx = y - cy[regions.row], x - cx[regions.row]
    var_y, var_x, cov = regions.mean(np.stack([dy * dy, dx * dx, dy * dx]))
    half_trace = (var_y + var_x) / 2
    radius = np.sqrt(((var_y - var_x) / 2) ** 2 + cov**2)
    major, minor = half_trace + radius, np.maximum(half_trace - radius, 0.0)

    where, weights = _border_pixels(regions.labels)
    border_labels = regions.labels.ravel()[where]
    slot, known = _id_slots(regions.ids, border_labels)
    where, weights, slot = where[known], weights[known], slot[known]
    perimeter = np.bincount(slot, weights=weights, minlength=regions.n)

    order = np.argsort(slot, kind="stable")
    border_points = np.stack([(where // width) % height, where % width], axis=1)[order]
    border_starts = np.concatenate([[0], np.cumsum(np.bincount(slot, minlength=regions.n))])
    hull_size = np.zeros(regions.n)
    for k in np.flatnonzero(~regions.empty):
        hull_size[k] = _digital_hull_size(border_points[border_starts[k] : border_starts[k + 1]])

    width_, length = 4 * np.sqrt(minor), 4 * np.sqrt(major)
    shape = {
        "area": area,
        "perimeter": perimeter,
        "eccentricity": np.sqrt(np.clip(1 - _safe_divide(minor, major), 0, 1)) * (major > 0),
        "solidity": _safe_divide(area, hull_size),
        "roundness": _safe_divide(4 * np.pi * area, perimeter**2),
        "width": width_,
        "length": length,
        "width_length_ratio": _safe_divide(width_, length),
    }
    return shape, np.stack([cy, cx], axis=1)


@dataclass(frozen=True)
class _Options:
    channel_names: tuple[str, ...]
    scales: tuple[int, ...]
    levels: int
    ser_sigma: float


def _measure_compartments(
    image: np.ndarray, compartments: dict[str, _Regions], options: _Options
) -> dict[str, np.ndarray]:
    """Intensity, GLCM and SER columns of compartments of a ``(C, B, H, W)`` image."""
    intensity, glcm = {}, {}
    for name, regions in compartments.items():
        values = regions.gather(image).astype(np.float32)
        intensity[name] = _intensity_features(values, regions)
        glcm[name] = _glcm_features(
            values,
            intensity[name]["min"],
            intensity[name]["max"],
            regions,
            scales=options.scales,
            levels=options.levels,
        )
    ser: dict[str, list] = {name: [] for name in compartments}
    for c, channel_stack in enumerate(image):  # one channel's derivatives in memory at a time
        derivatives = _derivatives(channel_stack, options.ser_sigma)
        for name, regions in compartments.items():
            ser[name].append(_ser_features(derivatives, intensity[name]["mean"][c], regions, options.ser_sigma))
    columns: dict[str, np.ndarray] = {}
    for name in compartments:
        for c, channel in enumerate(options.channel_names):
            for stat in INTENSITY_FEATURES:
                columns[f"feat_{name}_{stat}_{channel}"] = intensity[name][stat][c]
            for d in options.scales:
                for prop in GLCM_FEATURES:
                    columns[f"feat_{name}_glcm_{prop}_s{d}_{channel}"] = glcm[name][(prop, d)][c]
            for kind in SER_FEATURES:
                columns[f"feat_{name}_ser_{kind}_{channel}"] = ser[name][c][kind]
    return columns


def _in_compartment(columns: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in columns.items() if k.startswith(f"feat_{name}_")}


def _touching_fraction(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Fraction of each object's border pixels that touch another object (8-neighbourhood)."""
    stack = labels[np.newaxis]
    padded = np.pad(stack, ((0, 0), (1, 1), (1, 1)))
    border = np.zeros(stack.shape, dtype=bool)
    touching = np.zeros(stack.shape, dtype=bool)
    for dy, dx in _FOUR_STEPS + _DIAGONAL_STEPS:
        neighbour = _neighbour(padded, dy, dx)
        differs = neighbour != stack
        border |= differs
        touching |= differs & (neighbour > 0)
    inside = stack > 0
    border_counts = _count_per_id(ids, stack[inside & border])
    touching_counts = _count_per_id(ids, stack[inside & touching])
    return _safe_divide(touching_counts, border_counts)


def _neighbourhood_features(
    centroids: np.ndarray, area: np.ndarray, radius: float | None
) -> dict[str, np.ndarray]:
    from scipy.spatial import cKDTree

    n = len(centroids)
    if n == 0:
        return {"feat_neighbourhood_count": np.zeros(0), "feat_neighbourhood_nearest_distance": np.zeros(0)}
    if radius is None:
        diameter = np.median(np.sqrt(4 * area / np.pi))
        radius = 5.0 * diameter
    tree = cKDTree(centroids)
    count = tree.query_ball_point(centroids, r=radius, return_length=True) - 1
    nearest = np.zeros(n)
    if n > 1:
        distances, _ = tree.query(centroids, k=2)
        nearest = distances[:, 1]
    return {
        "feat_neighbourhood_count": count.astype(np.float64),
        "feat_neighbourhood_nearest_distance": nearest,
    }


def _as_frame(columns: dict[str, np.ndarray], index_name: str | None = None, ids=None) -> pd.DataFrame:
    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in columns.items()})
    if ids is not None:
        frame.insert(0, index_name, ids)
    return frame


# -- public API -------------------------------------------------------------
def measure_cells(
    image_cyx,
    nuclei,
    cells=None,
    *,
    channel_names: Sequence[str],
    texture_scales: Sequence[int] = (1, 2),
    glcm_levels: int = 32,
    ser_sigma: float = 2.0,
    density_radius: float | None = None,
) -> pd.DataFrame:
    """Measure shape, intensity, texture and neighbourhood of every nucleus and its cell.

    Parameters
    ----------
    image_cyx : array_like
        ``(C, Y, X)`` image of the site (a ``(Y, X)`` image is one channel).
    nuclei : array_like of int
        ``(Y, X)`` nucleus labels, 0 = background.
    cells : array_like of int, optional
        ``(Y, X)`` cell labels, where the cell of nucleus ``k`` carries label
        ``k``. When None, the cell features are the nucleus features. A nucleus
        without a cell gets its nucleus values as cell values (and a touching
        fraction of 0).
    channel_names : sequence of str
        One name per channel; used in the column names.
    texture_scales : sequence of int
        GLCM distances in pixels (one column set per distance, ``_s<d>``).
    glcm_levels : int
        Grey levels each object's own intensity range is quantised to for GLCM.
    ser_sigma : float
        Gaussian scale (pixels) of the Hessian for the SER features.
    density_radius : float, optional
        Radius (pixels) of the local density count; default 5 x the median
        nucleus diameter (equivalent-circle) of the site.

    Returns
    -------
    DataFrame
        One row per nucleus label id (column ``label``, ascending) and float32
        ``feat_*`` columns (see the module docstring); no NaN.

    Raises
    ------
    ValueError
        If shapes, dtypes, channel names or options do not fit.
    """
    image = _check_image(image_cyx, channel_names)
    nuclei = _check_labels(nuclei, image.shape[1:], "nucleus")
    if cells is not None:
        cells = _check_labels(cells, image.shape[1:], "cell")
    options = _Options(
        tuple(str(c) for c in channel_names),
        _check_scales(texture_scales, glcm_levels),
        int(glcm_levels),
        float(ser_sigma),
    )
    ids = np.unique(nuclei)
    ids = ids[ids > 0]
    stack = image[:, np.newaxis]
    nucleus_regions = _Regions(nuclei[np.newaxis], ids)
    nucleus_shape, centroids = _shape_features(nucleus_regions)
    compartments = {"nucleus": nucleus_regions}
    if cells is not None:
        compartments["cell"] = _Regions(cells[np.newaxis], ids)
    measured = _measure_compartments(stack, compartments, options)

    columns = {f"feat_nucleus_{k}": v for k, v in nucleus_shape.items()}
    columns.update(_in_compartment(measured, "nucleus"))
    if cells is None:
        columns.update({k.replace("feat_nucleus_", "feat_cell_", 1): v for k, v in columns.items()})
        touching = _touching_fraction(nuclei, ids)
    else:
        cell_shape, _ = _shape_features(compartments["cell"])
        cell_columns = {f"feat_cell_{k}": v for k, v in cell_shape.items()}
        cell_columns.update(_in_compartment(measured, "cell"))
        missing = compartments["cell"].empty
        for name, values in cell_columns.items():
            values[missing] = columns[name.replace("feat_cell_", "feat_nucleus_", 1)][missing]
        columns.update(cell_columns)
        touching = _touching_fraction(cells, ids)
        touching[missing] = 0.0
    columns.update(_neighbourhood_features(centroids, nucleus_shape["area"], density_radius))
    columns["feat_cell_touching_fraction"] = touching
    return _as_frame(columns, "label", ids)


def _otsu_thresholds(stack: np.ndarray, bins: int = 256) -> np.ndarray:
    """Otsu threshold of every image of a ``(B, H, W)`` stack (NaN when flat)."""
    n = len(stack)
    flat = stack.reshape(n, -1).astype(np.float32, copy=False)
    low, high = flat.min(axis=1), flat.max(axis=1)
    width = _safe_divide(high - low, bins)
    scale = _safe_divide(1.0, width).astype(np.float32)
    index = ((flat - low[:, None]) * scale[:, None]).astype(np.int32)
    np.clip(index, 0, bins - 1, out=index)
    index += (bins * np.arange(n, dtype=np.int32))[:, None]
    hist = np.bincount(index.ravel(), minlength=n * bins).reshape(n, bins)
    centres = low[:, None] + width[:, None] * (np.arange(bins) + 0.5)
    weight_low = np.cumsum(hist, axis=1)[:, :-1].astype(np.float64)
    weight_high = flat.shape[1] - weight_low
    cumulative = np.cumsum(hist * centres, axis=1)
    mean_low = _safe_divide(cumulative[:, :-1], weight_low)
    mean_high = _safe_divide(cumulative[:, -1:] - cumulative[:, :-1], weight_high)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    best = np.argmax(between, axis=1)
    thresholds = centres[np.arange(n), best]
    thresholds[high <= low] = np.nan
    return thresholds


def _fill_holes(foreground: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Fill the holes of every image of a ``(B, H, W)`` mask stack (background not reaching a border)."""
    background, _ = ndi.label(~foreground, structure=structure)
    edges = np.concatenate(
        [background[:, 0].ravel(), background[:, -1].ravel(), background[:, :, 0].ravel(), background[:, :, -1].ravel()]
    )
    open_to_edge = np.zeros(background.max() + 1, dtype=bool)
    open_to_edge[edges] = True
    return foreground | ~open_to_edge[background]


def find_crop_nuclei(
    nucleus_stack, *, smoothing: float = 1.0, min_area: int = 10
) -> np.ndarray:
    """Find the nucleus of each crop: Otsu on the smoothed nuclear stain, nearest the centre.

    Parameters
    ----------
    nucleus_stack : array_like
        ``(N, S, S)`` nuclear-stain crops.
    smoothing : float
        Gaussian sigma (pixels) applied before thresholding.
    min_area : int
        Components smaller than this (pixels) are ignored unless nothing else is found.

    Returns
    -------
    ndarray of bool
        ``(N, S, S)`` masks: per crop, the hole-filled Otsu foreground component
        nearest the crop centre (all False for a flat crop).
    """
    stack = np.asarray(nucleus_stack, dtype=np.float32)
    if stack.ndim != 3:
        raise ValueError(f"Nucleus crops must be (N, Y, X); got shape {stack.shape}.")
    n, height, width = stack.shape
    if n == 0 or height == 0 or width == 0:
        return np.zeros(stack.shape, dtype=bool)
    smooth = ndi.gaussian_filter(stack, sigma=(0, smoothing, smoothing)) if smoothing > 0 else stack
    thresholds = np.nan_to_num(_otsu_thresholds(smooth), nan=np.inf)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndi.generate_binary_structure(2, 1)
    foreground = _fill_holes(smooth > thresholds[:, None, None], in_plane)
    components, count = ndi.label(foreground, structure=in_plane)
    # Visit each crop's pixels from the centre outwards; the first pixel of a
    # large enough component picks it (any component when none is large enough).
    yy, xx = np.indices((height, width))
    outwards = np.argsort(np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2).ravel(), kind="stable")
    visited = components.reshape(n, -1)[:, outwards]
    large = np.bincount(components.ravel(), minlength=count + 1) >= min_area
    large[0] = False
    candidates = large[visited]
    fallback = ~candidates.any(axis=1)
    candidates[fallback] = visited[fallback] > 0
    chosen = visited[np.arange(n), np.argmax(candidates, axis=1)]
    keep = np.zeros(count + 1, dtype=bool)
    keep[chosen] = True
    keep[0] = False
    return keep[components]


def crop_features(
    crops_ncss,
    *,
    channel_names: Sequence[str],
    nucleus_channel: int | str = 0,
    texture_scales: Sequence[int] = (1, 2),
    glcm_levels: int = 32,
    ser_sigma: float = 2.0,
    batch_size: int = 128,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | threading.Event | None = None,
) -> pd.DataFrame:
    """Measure single-cell crops: the whole crop, and the nucleus found in it.

    The nucleus of each crop is found by :func:`find_crop_nuclei` on the nucleus
    channel. The ``nucleus`` compartment has shape, intensity, GLCM and SER
    features as in :func:`measure_cells`; the ``crop`` compartment (every pixel
    of the crop) has intensity, GLCM and SER features. A crop where no nucleus
    is found has 0 for every nucleus feature.

    Parameters
    ----------
    crops_ncss : array_like
        ``(N, C, S, S)`` crops (``S`` may differ between the two axes).
    channel_names : sequence of str
        One name per channel.
    nucleus_channel : int or str
        Index or name of the nuclear-stain channel.
    texture_scales, glcm_levels, ser_sigma
        As in :func:`measure_cells`.
    batch_size : int
        Crops measured at once (bounds memory).
    progress : callable, optional
        ``progress(done, total)`` after every batch.
    cancel : callable or threading.Event, optional
        Checked between batches; when set, :class:`InterruptedError` is raised.

    Returns
    -------
    DataFrame
        One row per crop, in order, with float32 ``feat_*`` columns; no NaN.
    """
    crops = np.asarray(crops_ncss)
    if crops.ndim != 4:
        raise ValueError(f"Crops must be (N, C, Y, X); got shape {crops.shape}.")
    if len(channel_names) != crops.shape[1]:
        raise ValueError(
            f"The crops have {crops.shape[1]} channel(s) but {len(channel_names)} channel name(s) "
            f"were given: {list(channel_names)}."
        )
    _check_pixels(crops, "crops")
    names = [str(c) for c in channel_names]
    if isinstance(nucleus_channel, str) and not nucleus_channel.isdigit():
        if nucleus_channel not in names:
            raise ValueError(f"Nucleus channel {nucleus_channel!r} is not one of {', '.join(names)}.")
        nucleus_index = names.index(nucleus_channel)
    else:
        nucleus_index = int(nucleus_channel)
        if not 0 <= nucleus_index < len(names):
            raise ValueError(f"Nucleus channel {nucleus_channel} is out of range for channels {names}.")
    options = _Options(tuple(names), _check_scales(texture_scales, glcm_levels), int(glcm_levels), float(ser_sigma))
    is_cancelled = cancel.is_set if isinstance(cancel, threading.Event) else cancel
    parts = []
    for start in range(0, len(crops), max(1, int(batch_size))):
        if is_cancelled is not None and is_cancelled():
            raise InterruptedError(f"Crop measurement cancelled after {start} of {len(crops)} crops.")
        parts.append(_measure_crop_batch(crops[start : start + batch_size], nucleus_index, options))
        if progress is not None:
            progress(min(start + batch_size, len(crops)), len(crops))
    if not parts:
        parts.append(_measure_crop_batch(crops[:0], nucleus_index, options))
    return pd.concat(parts, ignore_index=True)


def _measure_crop_batch(crops: np.ndarray, nucleus_index: int, options: _Options) -> pd.DataFrame:
    n, _, height, width = crops.shape
    image = np.ascontiguousarray(crops.transpose(1, 0, 2, 3))
    ids = np.arange(1, n + 1)
    masks = find_crop_nuclei(image[nucleus_index])
    nucleus_labels = np.where(masks, ids[:, None, None], 0)
    crop_labels = np.broadcast_to(ids[:, None, None], (n, height, width))
    nucleus_regions = _Regions(nucleus_labels, ids)
    shape, _ = _shape_features(nucleus_regions)
    compartments = {"nucleus": nucleus_regions, "crop": _Regions(crop_labels, ids)}
    columns = {f"feat_nucleus_{k}": v for k, v in shape.items()}
    columns.update(_measure_compartments(image, compartments, options))
    return _as_frame(columns)
