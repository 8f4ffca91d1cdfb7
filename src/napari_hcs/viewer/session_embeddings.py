"""What a session knows about embeddings: the stored ones, the scatter shown, the selected cells.

:class:`EmbeddingSession` is the part of :class:`~napari_hcs.viewer.session.Session`
behind the Embeddings section. It lists the embeddings and reductions stored in
the project (:class:`~napari_hcs.profiles.embedding_store.EmbeddingStore`),
holds the two coordinates of the scatter shown (:class:`ScatterData`: a stored
2-D reduction such as ``cnn-umap``, two components of a stored embedding, or
any two numeric columns of the cell table), the colour of each point
(:class:`ScatterColours`: cluster, class, well, predicted class or any column,
as codes into a small colour table) and the cells selected (their crop
indices), and says what changed through the session's signals
``embeddings_changed``, ``scatter_changed`` and ``cell_selection_changed``.
The scatter chosen is kept in ``project.json`` (key ``viewer``).

Examples
--------
>>> values = pd.Series(["b", "a", None, "a"])
>>> colours = scatter_colours(values, column="well")
>>> colours.names, colours.codes.tolist(), colours.counts.tolist()
(['a', 'b', 'missing'], [1, 0, 2, 0], [2, 1, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_rgba

from ..vocabulary import CROP_INDEX, REDUCTIONS
from .cluster_overlays import category_colours, cluster_classes, cluster_names

__all__ = [
    "EmbeddingSession",
    "MAX_CATEGORIES",
    "ScatterColours",
    "ScatterData",
    "WellTree",
    "scatter_colours",
    "split_embedding_name",
]

#: Categorical colourings show at most this many categories; the rarest others are "other".
MAX_CATEGORIES = 60
#: Numeric colourings are cut into this many bins between the 1st and 99th percentiles.
NUMERIC_BINS = 12
MISSING_COLOUR = "#c8c8c8"
_CLASS_COLUMNS = ("class", "pred_class", "cell_class")


@dataclass
class ScatterData:
    """The points of the scatter: one per cell.

    Attributes
    ----------
    crop_index : ndarray of int64
        The cell of each point.
    xy : ndarray
        ``(N, 2)`` float32 coordinates.
    x_label, y_label : str
        Axis names.
    source : dict
        ``{"embedding": name, "components": [i, j]}`` or ``{"columns": [x, y]}``.
    dropped : int
        Cells left out because a coordinate was missing or not finite.
    """

    crop_index: np.ndarray
    xy: np.ndarray
    x_label: str
    y_label: str
    source: dict
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.crop_index)


@dataclass
class ScatterColours:
    """The colour of each point as a code into a small colour table (one legend entry per code)."""

    column: str | None
    codes: np.ndarray
    names: list[str]
    table: np.ndarray
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def hex_colours(self) -> list[str]:
        return ["#%02x%02x%02x" % tuple(int(round(255 * v)) for v in row[:3]) for row in self.table]


@dataclass
class WellTree:
    """A dendrogram of wells: scipy linkage matrix, the wells as leaves, their clusters."""

    linkage: np.ndarray
    wells: list[str]
    clusters: list | None = None


def split_embedding_name(name: str) -> tuple[str, str | None]:
    """``(embedding, reduction)`` of a stored name: ``"cnn-umap"`` -> ``("cnn", "umap")``.

    Examples
    --------
    >>> split_embedding_name("cnn-umap"), split_embedding_name("features")
    (('cnn', 'umap'), ('features', None))
    """
    base, _, last = str(name).rpartition("-")
    return (base, last) if base and last in REDUCTIONS else (str(name), None)


def scatter_colours(values: pd.Series, *, column: str | None, classes: list[dict] | None = None) -> ScatterColours:
    """Colour codes of values: clusters, classes, categories, or bins of a numeric column.

    Parameters
    ----------
    values : Series
        One value per point (missing: NaN or None).
    column : str or None
        The column's name; ``"cluster"`` takes the cluster colours of the image
        overlay, class columns the session's class colours.
    classes : list of dict, optional
        The session's classes (``name``, ``color``).

    Examples
    --------
    >>> colours = scatter_colours(pd.Series(np.arange(100.0)), column="feat_area")
    >>> len(colours.names), colours.names[0], int(colours.codes[-1])
    (12, '< 9.08', 11)
    >>> scatter_colours(pd.Series([0, -1, 0]), column="cluster").names
    ['cluster 0', 'noise']
    """
    values = pd.Series(values).reset_index(drop=True)
    if column == "cluster":
        palette = {c["name"]: c["color"] for c in cluster_classes(values)}
        return _categorical(pd.Series(cluster_names(values), dtype=object), column, palette)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
            and values.nunique() > MAX_CATEGORIES // 4:
        return _numeric(values.astype(float), column)
    palette = {c["name"]: c["color"] for c in classes or []} if column in _CLASS_COLUMNS else {}
    return _categorical(values.astype(object).where(values.notna(), None), column, palette)


def _categorical(values: pd.Series, column, palette: dict) -> ScatterColours:
    present = values.notna().to_numpy()
    strings = values.astype(str)
    text = strings.where(present & (strings != "").to_numpy(), None)
    counts = text.value_counts()
    kept = sorted(counts.index[:MAX_CATEGORIES - 1] if len(counts) > MAX_CATEGORIES else counts.index,
                  key=_natural)
    names = list(kept)
    codes = pd.Index(names, dtype=object).get_indexer(text.to_numpy(object))
    colours = iter(category_colours(len(names)))
    table = [palette.get(name) or next(colours) for name in names]
    rest = (codes < 0) & text.notna().to_numpy()
    for extra, mask in (("other", rest), ("missing", text.isna().to_numpy())):
        if mask.any():
            codes[mask] = len(names)
            names.append(extra)
            table.append(MISSING_COLOUR)
    return _finish(column, codes, names, table)


def _numeric(values: pd.Series, column) -> ScatterColours:
    array = values.to_numpy(float)
    finite = np.isfinite(array)
    low, high = np.percentile(array[finite], [1, 99]) if finite.any() else (0.0, 1.0)
    high = high if high > low else low + 1.0
    edges = np.linspace(low, high, NUMERIC_BINS + 1)
    codes = np.clip(np.searchsorted(edges, array, side="right") - 1, 0, NUMERIC_BINS - 1)
    names = [f"< {edges[1]:.3g}"] + [f"{edges[i]:.3g} – {edges[i + 1]:.3g}" for i in range(1, NUMERIC_BINS - 1)]
    names.append(f">= {edges[-2]:.3g}")
    table = [colormaps["viridis"](i / (NUMERIC_BINS - 1)) for i in range(NUMERIC_BINS)]
    if not finite.all():
        codes = np.where(finite, codes, NUMERIC_BINS)
        names.append("missing")
        table.append(MISSING_COLOUR)
    return _finish(column, codes, names, table)


def _finish(column, codes, names, table) -> ScatterColours:
    codes = np.asarray(codes, dtype=np.int32)
    rgba = np.array([to_rgba(c) for c in table], dtype=np.float32).reshape(-1, 4)
    return ScatterColours(column=column, codes=codes, names=list(names), table=rgba,
                          counts=np.bincount(codes, minlength=len(names)).astype(np.int64))


def _natural(name: str):
    """Sort key putting "cluster 2" before "cluster 10" and B02 before B10."""
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]


class EmbeddingSession:
    """Stored embeddings, the scatter shown, its colours and the selected cells.

    Mixed into :class:`~napari_hcs.viewer.session.Session`, which defines the
    signals and the ``project``, ``cells``, ``predictions`` and ``message`` used here.
    """

    def _init_embeddings(self) -> None:
        self.embedding_names: list[str] = []
        self.scatter: ScatterData | None = None
        self.scatter_colours: ScatterColours | None = None
        self.colour_column: str | None = None
        self._selected = np.zeros(0, np.int64)
        self._selected_set: frozenset | None = frozenset()
        self.cells_changed.connect(self._on_cells_changed)
        self.predictions_changed.connect(self._on_predictions_changed)

    # -- what is stored ---------------------------------------------------------------
    @property
    def embedding_store(self):
        """The project's :class:`~napari_hcs.profiles.embedding_store.EmbeddingStore` (None without one)."""
        from ..profiles.embedding_store import EmbeddingStore

        return EmbeddingStore(self.project.folder) if self.project is not None else None

    def _reset_embeddings(self) -> None:
        self.scatter = self.scatter_colours = None
        self._selected, self._selected_set = np.zeros(0, np.int64), frozenset()

    def _load_embedding_state(self) -> None:
        """List the project's embeddings and show the scatter saved for it (after the project opened)."""
        from .session_cells import VIEWER_STATE_KEY

        self._reset_embeddings()
        self.refresh_embeddings()
        saved = self.project.read_meta().get(VIEWER_STATE_KEY, {}) if self.project else {}
        source = saved.get("scatter") or self._default_source()
        self.colour_column = saved.get("colour") or ("cluster" if self._has_column("cluster") else None)
        if source:
            try:
                self._show(source, save=False)
            except (OSError, ValueError, KeyError) as error:
                self.message.emit(f"The saved scatter could not be shown: {error}")
        self.cell_selection_changed.emit(self.selected_cells)

    def _default_source(self) -> dict | None:
        reduced = [n for n in self.embedding_names if split_embedding_name(n)[1]]
        return {"embedding": reduced[0], "components": [0, 1]} if reduced else None

    def refresh_embeddings(self) -> list[str]:
        """List the stored embeddings again (after computing one) and emit ``embeddings_changed``."""
        store = self.embedding_store
        self.embedding_names = store.names() if store is not None else []
        self.embeddings_changed.emit(list(self.embedding_names))
        return list(self.embedding_names)

    def refresh_clusters(self) -> None:
        """Put the stored cell clusters into the cell table (after clustering); emit ``cells_changed``."""
        stored = self.embedding_store.read_clusters() if self.embedding_store is not None else None
        if self.cells is None or stored is None:
            return
        frame = stored[0].drop_duplicates(CROP_INDEX).set_index(CROP_INDEX)["cluster"]
        cells = self.cells.drop(columns=["cluster"], errors="ignore")
        cells["cluster"] = frame.reindex(cells[CROP_INDEX].to_numpy()).to_numpy()
        self.cells = cells
        self.cells_changed.emit(cells)

    # -- the scatter ------------------------------------------------------------------
    def show_embedding(self, name: str, components: tuple[int, int] = (0, 1)) -> ScatterData:
        """Show two components of a stored embedding (a 2-D reduction: its two axes).

        Raises
        ------
        FileNotFoundError
            When the project has no embedding of that name (the message lists them).
        ValueError
            When a component is not one of the embedding's.
        """
        return self._show({"embedding": str(name), "components": [int(c) for c in components]})

    def show_columns(self, x: str, y: str) -> ScatterData:
        """Show two numeric columns of the cell table (features, centroids, probabilities, ...).

        Raises
        ------
        KeyError, ValueError
            When a column is missing or not numeric (the message names it).
        """
        return self._show({"columns": [str(x), str(y)]})

    def _show(self, source: dict, *, save: bool = True) -> ScatterData:
        if "columns" in source:
            crop_index, xy, labels = self._column_points(*source["columns"])
        else:
            crop_index, xy, labels = self._embedding_points(source["embedding"], source.get("components", [0, 1]))
        finite = np.isfinite(xy).all(axis=1)
        self.scatter = ScatterData(crop_index=crop_index[finite], xy=xy[finite], x_label=labels[0],
                                   y_label=labels[1], source=dict(source), dropped=int((~finite).sum()))
        if save:
            self._save_viewer_state(scatter=dict(source))
        self._recolour()
        return self.scatter

    def _embedding_points(self, name: str, components):
        embedding = self.embedding_store.read(name)
        i, j = (int(c) for c in components)
        if not (0 <= i < embedding.dimensions and 0 <= j < embedding.dimensions):
            raise ValueError(f"Embedding {name!r} has {embedding.dimensions} dimensions; "
                             f"components {i} and {j} are not both among them.")
        block = embedding.values[:, min(i, j):max(i, j) + 1]  # one read of the chunks, not two
        xy = np.stack([block[:, i - min(i, j)], block[:, j - min(i, j)]], axis=1).astype(np.float32)
        labels = (f"{name} {i + 1}", f"{name} {j + 1}")
        return np.asarray(embedding.crop_index, np.int64), xy, labels

    def _column_points(self, x: str, y: str):
        if self.cells is None:
            raise ValueError("The project has no cells yet; segment the plate first (Segment tab).")
        columns = [self._cell_column(name) for name in (x, y)]
        for name, column in zip((x, y), columns):
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                raise ValueError(f"Column {name!r} of the cell table is not numeric; choose a feature.")
        xy = np.stack([c.to_numpy(np.float32, na_value=np.nan) for c in columns], axis=1)
        return self.cells[CROP_INDEX].to_numpy(np.int64), xy, (x, y)

    def scatter_columns(self) -> list[str]:
        """Numeric columns of the cell table that can be scatter axes."""
        if self.cells is None:
            return []
        skip = {CROP_INDEX, "label", "site", "field", "timepoint", "cluster"}
        return [c for c in self.cells.columns if c not in skip and pd.api.types.is_numeric_dtype(self.cells[c])
                and not pd.api.types.is_bool_dtype(self.cells[c])]

    def colour_columns(self) -> list[str]:
        """Columns the points can be coloured by: cluster, classes and wells first, then every other."""
        names = list(self.cells.columns) if self.cells is not None else []
        if self.predictions is not None:
            names += [c for c in self.predictions.columns if c not in names]
        first = [c for c in ("cluster", "class", "pred_class", "cell_class", "well", "plate") if c in names]
        return first + [c for c in names if c not in first and c != CROP_INDEX]

    # -- colours ----------------------------------------------------------------------
    def colour_by(self, column: str | None) -> ScatterColours | None:
        """Colour the points by a column (None: one colour); kept in the project; emits ``scatter_changed``.

        Raises
        ------
        KeyError
            When neither the cell table nor the predictions have the column.
        """
        if column is not None and not self._has_column(column):
            raise KeyError(f"The cell table has no column {column!r}; "
                           f"columns: {', '.join(self.colour_columns()[:12]) or 'none'}.")
        self.colour_column = column
        self._save_viewer_state(colour=column)
        self._recolour()
        return self.scatter_colours

    def _recolour(self) -> None:
        scatter = self.scatter
        if scatter is None:
            self.scatter_colours = None
        elif self.colour_column is None or not self._has_column(self.colour_column):
            self.scatter_colours = _finish(None, np.zeros(len(scatter), np.int32), ["cells"], ["#1f77b4"])
        else:
            values = self._cell_column(self.colour_column, scatter.crop_index)
            self.scatter_colours = scatter_colours(values, column=self.colour_column, classes=self.classes)
        self.scatter_changed.emit(scatter)

    def _has_column(self, column: str) -> bool:
        return (self.cells is not None and column in self.cells.columns) or \
            (self.predictions is not None and column in self.predictions.columns)

    def _cell_column(self, column: str, crop_index: np.ndarray | None = None) -> pd.Series:
        """A column's values for ``crop_index`` (default: the cell table's order); newest predictions first."""
        if self.predictions is not None and column in self.predictions.columns:
            frame = self.predictions
        elif self.cells is not None and column in self.cells.columns:
            frame = self.cells
        else:
            raise KeyError(f"The cell table has no column {column!r}.")
        if crop_index is None and frame is self.cells:
            return frame[column].reset_index(drop=True)
        wanted = self.cells[CROP_INDEX].to_numpy() if crop_index is None else crop_index
        rows = pd.Index(frame[CROP_INDEX].to_numpy()).get_indexer(wanted)
        values = frame[column].reset_index(drop=True).reindex(rows)
        return values.reset_index(drop=True)

    def _on_cells_changed(self, *_) -> None:
        if self.scatter is not None and self.project is not None:
            try:
                self._show(self.scatter.source, save=False)
            except (OSError, ValueError, KeyError):
                self.scatter = None
                self._recolour()

    def _on_predictions_changed(self, *_) -> None:
        if self.scatter is not None and self.predictions is not None \
                and self.colour_column in self.predictions.columns:
            self._recolour()

    # -- the selected cells -------------------------------------------------------------
    @property
    def selected_cells(self) -> frozenset:
        """Crop indices of the selected cells."""
        if self._selected_set is None:
            self._selected_set = frozenset(self._selected.tolist())
        return self._selected_set

    @property
    def selected_array(self) -> np.ndarray:
        """The selected crop indices as a sorted int64 array (for fast look-ups)."""
        return self._selected

    def select_cells(self, crop_indices, mode: str = "replace") -> frozenset:
        """Select cells: ``mode`` ``"replace"``, ``"add"``, ``"remove"`` or ``"toggle"``; emits
        ``cell_selection_changed`` with the crop indices selected.

        Examples
        --------
        >>> from napari_hcs.viewer.session import Session
        >>> session = Session()
        >>> sorted(session.select_cells([3, 1])), sorted(session.select_cells([3, 5], "toggle"))
        ([1, 3], [1, 5])
        """
        given = np.unique(np.asarray(list(crop_indices) if not isinstance(crop_indices, np.ndarray)
                                     else crop_indices, dtype=np.int64))
        current = self._selected
        chosen = {"replace": lambda: given, "add": lambda: np.union1d(current, given),
                  "remove": lambda: np.setdiff1d(current, given),
                  "toggle": lambda: np.setxor1d(current, given)}
        if mode not in chosen:
            raise ValueError(f"Unknown selection mode {mode!r}; expected one of {', '.join(chosen)}.")
        self._selected, self._selected_set = chosen[mode](), None
        self.cell_selection_changed.emit(self.selected_cells)
        return self.selected_cells

    def clear_cell_selection(self) -> None:
        """Select no cell (emits ``cell_selection_changed``)."""
        self.select_cells([], "replace")

    # -- wells --------------------------------------------------------------------------
    def well_tree(self) -> WellTree | None:
        """The dendrogram of the project's well clusters (None until wells were clustered hierarchically)."""
        from ..profiles.profile_store import read_well_profiles, well_profiles_path

        if self.project is None or not well_profiles_path(self.project.folder).exists():
            return None
        profiles = read_well_profiles(self.project.folder)
        clusters = profiles.provenance.get("clusters") or {}
        linkage = next((clusters[k] for k in ("linkage_matrix", "linkage") if isinstance(clusters.get(k), list)), None)
        if not linkage:
            return None
        table = profiles.table
        wells = clusters.get("well_labels")
        if not wells or len(wells) != len(table):
            wells = table["well"].astype(str).tolist() if "well" in table.columns else [str(i) for i in range(len(table))]
        found = table["cluster"].tolist() if "cluster" in table.columns else None
        if clusters.get("sample"):  # the tree was built on these rows only
            wells = [wells[i] for i in clusters["sample"]]
            found = [found[i] for i in clusters["sample"]] if found is not None else None
        return WellTree(linkage=np.asarray(linkage, dtype=float), wells=[str(w) for w in wells], clusters=found)
