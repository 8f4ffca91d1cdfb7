"""Clusters and selected cells drawn over a site: names, colours and the selection's layer data.

The cells Labels layer shows clusters with the same mechanism as predicted classes
(:func:`as_cluster_predictions` makes a cluster look like a predicted class), and the
cells selected in the embedding scatter are framed by a Points layer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plate import Plate, Site
from ..vocabulary import CROP_INDEX, OVERLAY_ROLE
from .layers import layer_metadata, layer_scale
from .overlays import _CONFIDENCE, _PREDICTED, LayerDataTuple, _centroids

__all__ = ["CLUSTER_PREFIX", "NOISE_NAME", "SELECTED_NAME", "as_cluster_predictions", "category_colours",
           "cluster_classes", "cluster_names", "selected_cells_data"]

#: Name of a cluster's entry in legends and overlays: ``"cluster 3"``; -1 (noise) is "noise".
CLUSTER_PREFIX = "cluster "
NOISE_NAME = "noise"
NOISE_COLOUR = "#9e9e9e"
#: Name of the Points layer marking the cells selected in the embedding scatter.
SELECTED_NAME = "selected cells"
SELECTED_SIZE = 18.0
SELECTED_COLOUR = "#00e5ff"


def category_colours(n: int) -> list[str]:
    """``n`` distinct colours (``#rrggbb``): tab10 up to 10, then tab20, tab20b and tab20c in turn.

    Examples
    --------
    >>> category_colours(2)
    ['#1f77b4', '#ff7f0e']
    >>> len(set(category_colours(60))), category_colours(61)[60] == category_colours(61)[0]
    (60, True)
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n <= 10:
        palette = [to_hex(c) for c in colormaps["tab10"].colors]
    else:
        palette = [to_hex(c) for name in ("tab20", "tab20b", "tab20c") for c in colormaps[name].colors]
    return [palette[i % len(palette)] for i in range(int(n))]


def cluster_names(clusters) -> np.ndarray:
    """Legend names of cluster numbers: ``"cluster 0"``, ``"noise"`` for -1, None where missing.

    Examples
    --------
    >>> cluster_names(pd.Series([1, -1, None])).tolist()
    ['cluster 1', 'noise', None]
    """
    values = pd.to_numeric(pd.Series(clusters).reset_index(drop=True), errors="coerce").to_numpy(float)
    names = np.full(len(values), None, dtype=object)
    found = np.isfinite(values)
    numbers, inverse = np.unique(values[found].astype(np.int64), return_inverse=True)
    words = np.array([NOISE_NAME if n < 0 else f"{CLUSTER_PREFIX}{n}" for n in numbers] + [""], dtype=object)
    names[found] = words[inverse]
    return names


def cluster_classes(clusters) -> list[dict]:
    """The clusters as a class list: one colour per cluster number (the same on every site).

    Examples
    --------
    >>> cluster_classes([2, 0, 0, -1])
    [{'name': 'cluster 0', 'color': '#1f77b4'}, {'name': 'cluster 2', 'color': '#2ca02c'}, {'name': 'noise', 'color': '#9e9e9e'}]
    """
    values = pd.to_numeric(pd.Series(np.asarray(clusters, dtype=object)), errors="coerce").dropna()
    numbers = np.unique(values.to_numpy(np.int64)).tolist()
    found = [n for n in numbers if n >= 0]
    palette = category_colours(max(found) + 1 if found else 0)
    out = [{"name": f"{CLUSTER_PREFIX}{n}", "color": palette[n]} for n in found]
    if -1 in numbers:
        out.append({"name": NOISE_NAME, "color": NOISE_COLOUR})
    return out


def as_cluster_predictions(site_cells: pd.DataFrame, column: str = "cluster") -> pd.DataFrame:
    """The site's cells with ``pred_class`` = their cluster's name, to draw clusters as classes.

    Examples
    --------
    >>> cells = pd.DataFrame({"label": [1, 2], "cluster": [0, -1], "pred_class": ["a", "b"]})
    >>> as_cluster_predictions(cells)["pred_class"].tolist()
    ['cluster 0', 'noise']
    """
    if column not in site_cells.columns:
        raise KeyError(f"The cells have no {column!r} column; cluster the cells first.")
    out = site_cells.drop(columns=[_CONFIDENCE], errors="ignore").copy()
    out[_PREDICTED] = cluster_names(site_cells[column])
    return out


def selected_cells_data(plate: Plate, site: Site, site_cells: pd.DataFrame, selected) -> LayerDataTuple:
    """Return a Points layer of hollow squares around the site's cells whose crop index is selected.

    Parameters
    ----------
    plate, site
        The plate and the site shown.
    site_cells : DataFrame
        The site's cells (``crop_index``, ``label``, centroids).
    selected : array-like of int
        Crop indices of the selected cells (of any site).

    Examples
    --------
    >>> cells = pd.DataFrame({"crop_index": [7, 8], "label": [1, 2], "centroid_y": [3.0, 9.0],
    ...                       "centroid_x": [4.0, 1.0]})
    >>> yx, kwargs, _ = selected_cells_data(plate, plate.site("B02"), cells, [8, 99])
    >>> yx.tolist(), kwargs["symbol"], kwargs["name"]
    ([[9.0, 1.0]], 'square', 'selected cells')
    """
    chosen = np.isin(site_cells[CROP_INDEX].to_numpy(np.int64), np.asarray(list(selected), dtype=np.int64))
    rows = site_cells.loc[chosen, [CROP_INDEX, "label", "centroid_y", "centroid_x"]].reset_index(drop=True)
    kwargs = {
        "name": SELECTED_NAME, "size": SELECTED_SIZE, "symbol": "square", "face_color": "transparent",
        "border_color": SELECTED_COLOUR, "border_width": 0.12, "features": rows[[CROP_INDEX, "label"]],
        "scale": layer_scale(plate), "visible": True,
        "metadata": layer_metadata(plate, site, OVERLAY_ROLE, SELECTED_NAME),
    }
    return _centroids(rows), kwargs, "points"
