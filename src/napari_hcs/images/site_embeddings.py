"""Embeddings of whole sites: PCA of downsampled sites, per-channel autoencoders, a site classifier.

Every site of a plate is read (optionally preprocessed with
:func:`napari_hcs.images.preprocess.preprocess_site`), each channel downsampled to
``size x size`` pixels and scaled with the plate's own per-channel statistics
(median and 1-99 % range over all sites), then embedded by one of
:data:`~napari_hcs.vocabulary.SITE_EMBEDDING_SOURCES`:

* ``pca``: principal components of the flattened downsampled sites (the baseline);
* ``autoencoder``: one small convolutional autoencoder per channel
  (:class:`~napari_hcs.nn.models.ConvAutoencoder` with one input channel), the
  bottlenecks concatenated over channels;
* ``classifier``: a small CNN trained on the wells' labels (a well annotation
  column), its penultimate layer.

A well's embedding is the median of its sites'. Sites that quality control
excluded (:class:`~napari_hcs.images.site_exclusions.SiteExclusions`) are left
out and counted. :func:`embed_sites` stores the embedding in the project as
``embeddings/sites/site-<source>`` (:class:`~napari_hcs.profiles.embedding_store.EmbeddingStore`;
the row key ``crop_index`` is the site's index in the plate's site list, and the
provenance says that rows are sites and lists their keys), with the k-means
clusters of the sites and their metrics in the study's Table 6.1 layout.

Examples
--------
>>> stack, table = site_stack(plate, size=16)
>>> stack.shape, table["site_key"].tolist()[:2]
((6, 3, 16, 16), ['B02_f000_t001', 'B02_f000_t002'])
>>> values = pca_embedding(stack, dimensions=4)
>>> values.shape
(6, 4)
>>> well_embeddings(values, table)["well"].tolist()
['B02', 'B04']
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from ..cancel import check_cancel
from ..io import site_key
from ..plate import Plate
from ..vocabulary import SITE_EMBEDDING_SOURCES
from .site_exclusions import SiteExclusions

__all__ = [
    "SITE_ROWS",
    "SiteEmbedding",
    "SiteEmbeddingOptions",
    "embed_sites",
    "embedding_name",
    "pca_embedding",
    "read_site_embedding",
    "site_stack",
    "site_table",
    "well_embeddings",
]

#: What one row of a site embedding is (recorded in its provenance under ``rows``).
SITE_ROWS = "sites"
#: Leading column of the embedding dimensions in tables (``dim_000``, ...).
DIMENSION_PREFIX = "dim_"


@dataclass
class SiteEmbeddingOptions:
    """How sites are embedded.

    Parameters
    ----------
    source : {"pca", "autoencoder", "classifier"}
        :data:`~napari_hcs.vocabulary.SITE_EMBEDDING_SOURCES`.
    size : int
        Side each channel is downsampled to (the study used 64 to 128).
    dimensions : int
        PCA components (at most one fewer than the sites), or each channel's
        autoencoder bottleneck. The classifier's embedding is its hidden layer (``hidden``).
    hidden : int
        Size of the classifier's penultimate (embedding) layer.
    epochs : int
        Training epochs of the autoencoders and the classifier.
    labels_column : str
        Well annotation column the classifier learns (``class``, ``Genotype``, ...).
    preprocess : PreprocessOptions or None
        Preprocessing of each site before downsampling
        (:class:`napari_hcs.images.preprocess.PreprocessOptions`); None: the
        options the project records (``project.json`` key ``preprocess``), else raw pixels.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"`` for the networks.
    seed : int
        Seeds the networks' weights, sampling and augmentation.
    """

    source: str = "pca"
    size: int = 64
    dimensions: int = 16
    hidden: int = 32
    epochs: int = 30
    labels_column: str = "class"
    preprocess: object | None = None
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source not in SITE_EMBEDDING_SOURCES:
            raise ValueError(f"Site embedding source {self.source!r} is unknown; choose one of "
                             f"{', '.join(SITE_EMBEDDING_SOURCES)}.")
        for name, minimum in (("size", 8), ("dimensions", 1), ("hidden", 1), ("epochs", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"SiteEmbeddingOptions.{name} must be a whole number of at least "
                                 f"{minimum}; got {value!r}.")

    def to_meta(self) -> dict:
        """The options as plain values (for provenance)."""
        meta = asdict(self)
        preprocess = self.preprocess
        meta["preprocess"] = None if preprocess is None else preprocess.to_dict()
        return meta


@dataclass
class SiteEmbedding:
    """A site embedding of a plate.

    Attributes
    ----------
    name : str
        Its name in the project's embedding store (``site-pca``, ...).
    table : DataFrame
        One row per embedded site: ``site_index`` (its index in the plate's site
        list), ``plate``, ``well``, ``field``, ``timepoint``, ``site_key`` and the
        well annotations.
    values : ndarray of float32
        ``(sites, dimensions)``, rows in the order of ``table``.
    excluded : list of str
        Keys of the sites left out by quality control.
    provenance : dict
        How it was made (options, channels, training history of the networks).
    """

    name: str
    table: pd.DataFrame
    values: np.ndarray
    excluded: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def wells(self) -> pd.DataFrame:
        """The well embeddings: the median of each well's sites (:func:`well_embeddings`)."""
        return well_embeddings(self.values, self.table)


def embedding_name(source: str) -> str:
    """The store name of a site embedding: ``site-<source>``.

    Examples
    --------
    >>> embedding_name("autoencoder")
    'site-autoencoder'
    """
    if source not in SITE_EMBEDDING_SOURCES:
        raise ValueError(f"Site embedding source {source!r} is unknown; choose one of "
                         f"{', '.join(SITE_EMBEDDING_SOURCES)}.")
    return f"site-{source}"


def site_table(plate: Plate, *, excluded=()) -> pd.DataFrame:
    """One row per site of the plate not in ``excluded`` (site keys), with its well annotations."""
    rows = []
    for index, site in enumerate(plate.iter_sites()):
        key = site_key(site.well, site.field, site.timepoint)
        if key in excluded:
            continue
        rows.append({"site_index": index, "plate": plate.name, "well": site.well, "field": site.field,
                     "timepoint": site.timepoint, "site_key": key, **plate.well_annotations(site.well)})
    columns = ["site_index", "plate", "well", "field", "timepoint", "site_key"]
    return pd.DataFrame(rows, columns=columns + sorted({k for r in rows for k in r} - set(columns)))


def _downsampled(image: np.ndarray, size: int) -> np.ndarray:
    from skimage.transform import resize

    image = np.nan_to_num(np.asarray(image, dtype=np.float32))
    return resize(image, (image.shape[0], size, size), order=1, anti_aliasing=True,
                  preserve_range=True).astype(np.float32)


def _scaled(stack: np.ndarray) -> np.ndarray:
    """Each channel minus its plate-wide median, over its plate-wide 1-99 % range."""
    out = np.empty_like(stack)
    for channel in range(stack.shape[1]):
        values = stack[:, channel]
        low, median, high = np.percentile(values, [1, 50, 99])
        out[:, channel] = (values - median) / max(float(high - low), 1e-6)
    return out


def site_stack(plate: Plate, *, size: int = 64, preprocess=None, excluded=(),
               progress: Callable[[int, int], None] | None = None, cancel=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Read, preprocess and downsample the plate's sites.

    Parameters
    ----------
    plate : Plate
        The plate.
    size : int
        Side each channel is downsampled to.
    preprocess : PreprocessOptions, optional
        Applied to each site before downsampling
        (:func:`napari_hcs.images.preprocess.preprocess_site`).
    excluded : collection of str
        Site keys to leave out.
    progress : callable, optional
        ``progress(done, total)`` after each site.
    cancel : callable or threading.Event, optional
        Checked before each site.

    Returns
    -------
    stack : ndarray of float32
        ``(sites, channels, size, size)``, scaled per channel with the plate's statistics.
    table : DataFrame
        The sites' rows (:func:`site_table`).
    """
    table = site_table(plate, excluded=set(excluded))
    if table.empty:
        raise ValueError(f"Plate {plate.name!r} has no site left to embed "
                         f"({len(excluded)} excluded by quality control).")
    sites = list(plate.iter_sites())
    stack = np.empty((len(table), len(plate.channels), size, size), dtype=np.float32)
    for row, index in enumerate(table["site_index"]):
        check_cancel(cancel, "Site embedding was cancelled.")
        image = plate.read_site(sites[index])
        if preprocess is not None:
            from .preprocess import preprocess_site

            image = preprocess_site(image, preprocess, channels=list(plate.channels))
        stack[row] = _downsampled(image, size)
        if progress is not None:
            progress(row + 1, len(table))
    return _scaled(stack), table


def pca_embedding(stack: np.ndarray, *, dimensions: int = 16, seed: int = 0) -> np.ndarray:
    """Principal components of the flattened sites: ``(sites, min(dimensions, sites - 1))``."""
    from sklearn.decomposition import PCA

    flat = stack.reshape(len(stack), -1)
    components = max(1, min(int(dimensions), len(flat) - 1, flat.shape[1]))
    return PCA(n_components=components, random_state=seed).fit_transform(flat).astype(np.float32)


def dimension_columns(dimensions: int) -> list[str]:
    """Names of embedding columns in tables: ``dim_000``, ``dim_001``, ..."""
    return [f"{DIMENSION_PREFIX}{i:03d}" for i in range(int(dimensions))]


def well_embeddings(values: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """The median of each well's site embeddings.

    Returns
    -------
    DataFrame
        One row per well (``plate``, ``well``, ``n_sites``, the well annotations),
        then the ``dim_000`` ... columns.
    """
    frame = pd.DataFrame(np.asarray(values, dtype=np.float64), columns=dimension_columns(values.shape[1]),
                         index=table.index)
    keys = ["plate", "well"]
    annotations = [c for c in table.columns if c not in ("site_index", "field", "timepoint", "site_key", *keys)]
    grouped = frame.groupby([table[k] for k in keys], sort=True)
    medians = grouped.median().reset_index()
    meta = table.groupby(keys, sort=True).agg(**{"n_sites": ("site_key", "size")},
                                              **{c: (c, "first") for c in annotations}).reset_index()
    return meta.merge(medians, on=keys)


def _compute(stack: np.ndarray, table: pd.DataFrame, options: SiteEmbeddingOptions, channels: list[str],
             progress, cancel) -> tuple[np.ndarray, dict]:
    if options.source == "pca":
        return pca_embedding(stack, dimensions=options.dimensions, seed=options.seed), {}
    from . import site_networks

    if options.source == "autoencoder":
        return site_networks.autoencoder_embedding(stack, options, channels=channels, progress=progress,
                                                   cancel=cancel)
    return site_networks.classifier_embedding(stack, table, options, channels=channels, progress=progress,
                                              cancel=cancel)


def recorded_preprocess(project_dir: str | os.PathLike):
    """The preprocessing options the project records (``project.json`` key ``preprocess``), or None."""
    from ..project import Project

    folder = Path(project_dir)
    recorded = Project(folder).read_meta().get("preprocess")
    if not recorded:
        return None
    from .preprocess import PreprocessOptions

    try:
        return PreprocessOptions.from_dict(recorded)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{folder / 'project.json'}: the recorded preprocessing options are not valid: "
                         f"{error}") from None


def embed_sites(plate: Plate, *, project_dir: str | os.PathLike, options: SiteEmbeddingOptions,
                progress: Callable[[int, int], None] | None = None, cancel=None) -> SiteEmbedding:
    """Embed the plate's sites and store the embedding in the project (``embeddings/sites/site-<source>``).

    Parameters
    ----------
    plate : Plate
        The plate; its well annotations, with those saved in the project (``layout.csv``),
        give the classifier's labels and the clusters' known classes.
    project_dir : path
        The plate's project folder: QC exclusions are read from it and the embedding stored in it.
    options : SiteEmbeddingOptions
        Source, size, dimensions, training.
    progress : callable, optional
        ``progress(done, total)``: sites read, then epochs trained.
    cancel : callable or threading.Event, optional
        Checked before each site and each batch; nothing is stored when cancelled.

    Returns
    -------
    SiteEmbedding

    Raises
    ------
    ProjectLockedError
        When another run is writing the project.
    ProjectMismatchError
        When the project records another plate.

    Examples
    --------
    >>> embedding = embed_sites(plate, project_dir=tmp_path, options=SiteEmbeddingOptions(size=16))
    >>> embedding.name, embedding.values.shape, len(embedding.wells())
    ('site-pca', (6, 5), 2)
    >>> read_site_embedding(tmp_path, "pca").table["site_key"].tolist() == embedding.table["site_key"].tolist()
    True
    """
    from ..project import Project

    project = Project(project_dir)
    with project.lock(wait=False, cancel=cancel):
        if project.read_meta().get("plate_identity"):
            project.check_plate(plate)
        if options.preprocess is None:
            options = replace(options, preprocess=recorded_preprocess(project_dir))
        plate = project.apply_annotations(replace(plate, annotations=plate.annotations.copy()))
        return _embed_and_store(plate, project_dir, options, progress, cancel)


def _embed_and_store(plate: Plate, project_dir, options: SiteEmbeddingOptions, progress, cancel) -> SiteEmbedding:
    from ..profiles.embedding_store import EmbeddingStore

    excluded = SiteExclusions(project_dir).excluded()
    if options.source == "classifier":  # before any site is read
        from .site_networks import check_site_labels

        check_site_labels(site_table(plate, excluded=excluded), options.labels_column)
    all_keys = [site_key(s.well, s.field, s.timepoint) for s in plate.iter_sites()]
    left_out = sorted(set(all_keys) & excluded)
    stack, table = site_stack(plate, size=options.size, preprocess=options.preprocess, excluded=excluded,
                              progress=progress, cancel=cancel)
    values, trained = _compute(stack, table, options, list(plate.channels), progress, cancel)
    name = embedding_name(options.source)
    provenance = {"source": name, "rows": SITE_ROWS, "plate": plate.name, "channels": list(plate.channels),
                  "site_keys": table["site_key"].tolist(), "wells": table["well"].tolist(),
                  "excluded_sites": left_out, "n_excluded": len(left_out), "options": options.to_meta(),
                  **trained}
    EmbeddingStore(project_dir, rows="sites").write(name, table["site_index"].to_numpy(), values, provenance=provenance)
    return SiteEmbedding(name=name, table=table, values=values, excluded=left_out, provenance=provenance)


def read_site_embedding(project_dir: str | os.PathLike, source: str, plate: Plate | None = None) -> SiteEmbedding:
    """Read a stored site embedding; ``plate`` adds its well annotations to the table."""
    from ..profiles.embedding_store import EmbeddingStore

    stored = EmbeddingStore(project_dir, rows="sites").read(embedding_name(source))
    meta = stored.provenance
    if meta.get("rows") != SITE_ROWS:
        raise ValueError(f"Embedding {stored.name!r} of project {project_dir} does not hold sites.")
    keys = list(meta.get("site_keys", []))
    table = pd.DataFrame({"site_index": stored.crop_index, "plate": meta.get("plate"), "site_key": keys,
                          "well": meta.get("wells", [k.split("_")[0] for k in keys])})
    table["field"] = [int(k.split("_f")[1][:3]) for k in keys]
    table["timepoint"] = [int(k.split("_t")[-1]) for k in keys]
    if plate is not None:
        annotations = pd.DataFrame([plate.well_annotations(w) for w in table["well"]], index=table.index)
        table = pd.concat([table, annotations], axis=1)
    return SiteEmbedding(name=stored.name, table=table, values=np.asarray(stored.values[:]),
                         excluded=list(meta.get("excluded_sites", [])), provenance=meta)
