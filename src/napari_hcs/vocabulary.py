"""Names shared by the core, the command line and the widgets.

Every name that more than one place spells lives here once: the CLI's ``choices``,
the widgets' drop-downs and the core's checks read the same tuples, and a test
checks that each registry the core keeps (models, presets, pools, ...) agrees
with them.

Examples
--------
>>> "otsu" in THRESHOLD_METHODS
True
>>> guess_channel(["Alexa488", "DAPI", "mCherry"], NUCLEAR_DYES)
1
"""

from __future__ import annotations

from typing import Sequence

__all__ = [
    "BASELINE_METHODS",
    "CELL_CLASS_COLUMN",
    "CLASSIFIER_KINDS",
    "PREDICTION_COLUMNS",
    "TRAINING_CLASS_COLUMN",
    "UNCERTAINTY_MEASURES",
    "CELL_DYES",
    "CROP_INDEX",
    "EMBEDDING_PREFIX",
    "FEATURE_PREFIX",
    "PROBABILITY_PREFIX",
    "CHANNEL_ROLE",
    "DEVICE_CHOICES",
    "DYE_COLORMAPS",
    "LABELS_ROLE",
    "OVERLAY_ROLE",
    "LABEL_NAMES",
    "META_NAME",
    "META_PLATE",
    "META_ROLE",
    "META_SITE",
    "MODEL_NAMES",
    "MONITORS",
    "NGFF_VERSIONS",
    "NORMALISATIONS",
    "INTENSITY_SCALES",
    "NUCLEAR_DYES",
    "POOLS",
    "RESIZE_MODES",
    "SCHEDULES",
    "SEGMENTATION_BACKENDS",
    "SPLIT_METHODS",
    "SPLIT_NAMES",
    "THRESHOLD_METHODS",
    "AUTOMATIC_THRESHOLDS",
    "AGGREGATIONS",
    "CLUSTER_METHODS",
    "CLUSTER_LINKAGES",
    "EMBEDDING_SOURCES",
    "EXPORT_FORMATS",
    "EXPORT_LEVELS",
    "FEATURE_SELECTIONS",
    "ILLUMINATION_METHODS",
    "PREPROCESS_STEPS",
    "PROFILE_NORMALISATIONS",
    "QC_FLAGS",
    "REDUCTIONS",
    "SITE_EMBEDDING_SOURCES",
    "guess_channel",
]

# -- layer metadata (what a napari layer made by this package carries) --------------
#: Metadata key of the :class:`~napari_hcs.plate.Plate` a layer shows.
META_PLATE = "napari_hcs_plate"
#: Metadata key of the :class:`~napari_hcs.plate.Site` a layer shows.
META_SITE = "napari_hcs_site"
#: Metadata key of a layer's role: :data:`CHANNEL_ROLE`, :data:`LABELS_ROLE` or :data:`OVERLAY_ROLE`.
META_ROLE = "napari_hcs_role"
#: Metadata key of the channel or label name (napari may suffix the layer name).
META_NAME = "napari_hcs_name"
CHANNEL_ROLE = "channel"
LABELS_ROLE = "labels"
#: Layers drawn over a site from the cell table (predicted classes, labelled cells): kept
#: from site to site and redrawn in place, since adding and removing napari layers is slow.
OVERLAY_ROLE = "overlay"

# -- cell table columns -------------------------------------------------------------
#: Column tying a cell-table row to its crop in the crop store.
CROP_INDEX = "crop_index"
#: Prefix of the classical feature columns.
FEATURE_PREFIX = "feat_"
#: Prefix of the embedding columns.
EMBEDDING_PREFIX = "emb_"
#: Prefix of the per-class probability columns.
PROBABILITY_PREFIX = "prob_"

#: Cell-table column with the class a user gave one cell ("" when none).
CELL_CLASS_COLUMN = "cell_class"
#: The class a cell is trained with: its own class where given, else its well's.
TRAINING_CLASS_COLUMN = "training_class"
#: Columns of the "predictions" column group besides ``crop_index`` and ``prob_<class>``:
#: predicted class, top probability, top-1 minus top-2 probability, the model's name.
PREDICTION_COLUMNS = ("pred_class", "pred_confidence", "pred_margin", "pred_model")
#: Classifiers trained from the viewer: a random forest on features, or a CNN on crops.
CLASSIFIER_KINDS = ("forest", "cnn")
#: How the uncertainty of a prediction is measured when proposing cells to label.
UNCERTAINTY_MEASURES = ("margin", "entropy")

# -- segmentation -------------------------------------------------------------------
#: Threshold methods of the classical nuclei segmentation.
THRESHOLD_METHODS = ("otsu", "li", "triangle", "manual")
#: Threshold methods that need no value (what the CLI and the widget offer).
AUTOMATIC_THRESHOLDS = ("otsu", "li", "triangle")
#: How touching nuclei are split.
SPLIT_METHODS = ("distance", "intensity", "none")
#: Segmentation backends.
SEGMENTATION_BACKENDS = ("classical", "cellpose")
#: Names of the label images stored for each site.
LABEL_NAMES = ("nuclei", "cells")

# -- runs ---------------------------------------------------------------------------
#: Kinds of local worker pool.
POOLS = ("process", "thread")
#: OME-NGFF versions the writer can write.
NGFF_VERSIONS = ("0.4", "0.5")

# -- learning -----------------------------------------------------------------------
#: Values of a split column.
SPLIT_NAMES = ("train", "val", "test")
#: Columns that name a cell whatever its row in the crop store (segmentation workers append
#: sites as they finish, so two runs can store the same cells in another order).
CELL_IDENTITY_COLUMNS = ("plate", "well", "field", "timepoint", "label")
#: Classical classifiers on the cells' features.
BASELINE_METHODS = ("random_forest", "lda", "svm")
#: Networks, by name (``nn.models.MODELS`` holds their constructors).
MODEL_NAMES = ("wrn", "cnn1", "cnn2", "cnn3", "ae")
#: How intensities (crops for the CNN, features for the classical methods) are normalised:
#: per plate (each plate's own statistics, or its control cells'), or with one set of statistics.
NORMALISATIONS = ("plate", "global")
#: The scale of the crops' intensities before the per-plate statistics: log(1 + x) (the default), or as stored.
INTENSITY_SCALES = ("log", "linear")
#: What picks a classifier's best epoch (and early stopping watches) on the validation cells.
MONITORS = ("balanced_accuracy", "loss")
#: Learning-rate schedules.
SCHEDULES = ("cosine", "onecycle", "constant")
#: How crops are brought to the network's input size.
RESIZE_MODES = ("resize", "center")
#: Devices a user can ask for (``cuda:N`` too).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

# -- embeddings, clustering and profiles --------------------------------------------
#: Where a cell's embedding comes from: a CNN's penultimate layer, the classical features,
#: PCA of the raw crops, or a convolutional autoencoder trained on the crops.
EMBEDDING_SOURCES = ("cnn", "features", "pca", "autoencoder")
#: Reductions of an embedding to a few dimensions (for plots and clustering).
REDUCTIONS = ("umap", "pca")
#: Clustering methods of cells or wells.
CLUSTER_METHODS = ("kmeans", "hierarchical", "hdbscan")
#: Linkages of hierarchical clustering: Ward (Euclidean), or average linkage with cosine distance.
CLUSTER_LINKAGES = ("ward", "average")
#: How a well's cells are summarised into its profile.
AGGREGATIONS = ("median", "mean")
#: How well profiles are normalised against each plate's control wells (pycytominer's names).
PROFILE_NORMALISATIONS = ("standardize", "robustize", "mad_robustize", "spherize", "none")
#: Feature selection operations on well profiles (pycytominer's names).
FEATURE_SELECTIONS = ("variance_threshold", "correlation_threshold", "drop_na_columns", "drop_outliers")
#: File formats of an export.
EXPORT_FORMATS = ("csv", "parquet", "h5ad")
#: What one row of an export is.
EXPORT_LEVELS = ("cell", "well")

# -- whole images -------------------------------------------------------------------
#: Preprocessing steps of whole sites, in the order they are applied.
PREPROCESS_STEPS = ("outliers", "rolling_ball", "median", "tv_denoise", "centre_crop")
#: How an illumination function is estimated: CellProfiler-style (robust average of all
#: sites, smoothed) or BaSiC (flat-field and dark-field).
ILLUMINATION_METHODS = ("cellprofiler", "basic")
#: Reasons a site is flagged by quality control.
QC_FLAGS = ("focus", "saturation", "dim", "blank", "nan", "missing_channel", "debris")
#: Where a site's embedding comes from.
SITE_EMBEDDING_SOURCES = ("pca", "autoencoder", "classifier")

# -- dyes ---------------------------------------------------------------------------
#: Words in the name of a nuclear stain channel (lower case).
NUCLEAR_DYES = ("dapi", "hoechst", "dna", "nuc", "draq")
#: Words in the name of a cytoplasm or membrane channel (lower case).
CELL_DYES = ("cherry", "actin", "phalloidin", "cyto", "cell", "membrane", "wga", "cellmask")
#: A channel whose name contains one of the words gets the colormap.
DYE_COLORMAPS: tuple[tuple[tuple[str, ...], str], ...] = (
    (NUCLEAR_DYES, "blue"),
    (("gfp", "488", "fitc", "alexa488", "tubulin"), "green"),
    (("mcherry", "rfp", "cy3", "tritc", "dsred", "tdtomato", "568", "561", "594"), "magenta"),
    (("cy5", "647", "640", "far-red", "farred"), "red"),
    (("phalloidin", "actin", "mito", "555"), "yellow"),
    (("bf", "brightfield", "phase", "dic", "trans"), "gray"),
)


def guess_channel(channels: Sequence[str], words: Sequence[str], default: int | None = 0) -> int | None:
    """Return the index of the first channel whose name contains one of ``words``.

    Parameters
    ----------
    channels : sequence of str
        Channel names.
    words : sequence of str
        Lower-case words, e.g. :data:`NUCLEAR_DYES`.
    default : int or None
        Returned when no channel matches.

    Examples
    --------
    >>> guess_channel(["DNA", "actin"], CELL_DYES)
    1
    >>> guess_channel(["d0", "d1"], CELL_DYES, default=None) is None
    True
    """
    for index, name in enumerate(channels):
        if any(word in str(name).lower() for word in words):
            return index
    return default
