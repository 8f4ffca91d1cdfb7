"""The picture of a prediction, written without a display.

:func:`prediction_figure` draws one site of a project's plate, its channels
composed as the viewer shows them, with every cell outlined in the colour of its
predicted class and a legend of the classes with their counts on that site;
beside it, the model's confusion matrix on its validation or test cells. It
uses matplotlib's Agg canvas only (never ``pyplot``), so it runs on a server.

Examples
--------
>>> class_colors(["control", "treated"], [{"name": "treated", "color": "#ff0000"}])
['#e69f00', '#ff0000']
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..io.outputs import check_outputs
from ..plate import Plate, PlateError, Site, normalize_well_name
from ..project import DEFAULT_CLASS_COLORS, Project
from ..viewer.layers import channel_colormap, contrast_limits
from ..vocabulary import CROP_INDEX, PROBABILITY_PREFIX
from .inspection import confusion_counts, probability_columns
from .predictions import read_predictions

__all__ = ["Evaluation", "class_colors", "model_evaluation", "prediction_figure"]

#: Resolution of the written PNG.
DPI = 150
#: Longest side, in pixels, of the site as drawn (larger sites are subsampled).
MAX_SITE_PIXELS = 2048
#: About how many screen pixels the image panel spans; outlines thicken past it.
_PANEL_PIXELS = 950
#: The channels are drawn a little darker, so that the outlines stand out.
_IMAGE_DIMMING = 0.8
#: Outline colour of a cell without a prediction.
NO_CLASS_COLOR = "#bdbdbd"
#: napari's colormaps of the channels, as the colour of full intensity.
_COLORMAP_RGB = {
    "gray": (1.0, 1.0, 1.0), "grey": (1.0, 1.0, 1.0), "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0), "cyan": (0.0, 1.0, 1.0), "magenta": (1.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0),
}
#: Files and folders of a project the figure reads, which it never writes over.
_PROJECT_INPUTS = ("project.json", "cells.json", "crops.zarr", "cells", "features", "columns", "labels",
                   "models", "classes.json", "layout.csv", "cell_labels.csv")
_SPLIT_WORDS = {"test": "test", "val": "validation"}


@dataclass
class Evaluation:
    """A model's confusion matrix on one split, as the figure draws it.

    Attributes
    ----------
    classes : list of str
        Row (true) and column (predicted) order.
    counts : ndarray of int, shape (K, K)
        Cells per true (row) and predicted (column) class.
    split : str
        ``"test"`` or ``"val"``.
    accuracy, balanced_accuracy : float
        Fraction of cells right; mean recall over the classes that occur.
    """

    classes: list[str]
    counts: np.ndarray
    split: str
    accuracy: float
    balanced_accuracy: float

    @classmethod
    def from_counts(cls, classes: list[str], counts, split: str) -> "Evaluation":
        """Accuracies computed from the counts."""
        counts = np.asarray(counts, dtype=np.int64)
        support = counts.sum(axis=1)
        recall = np.diag(counts)[support > 0] / support[support > 0]
        accuracy = float(np.trace(counts) / max(counts.sum(), 1))
        return cls(list(classes), counts, split, accuracy, float(recall.mean()) if recall.size else 0.0)


def class_colors(classes: list[str], saved: list[dict]) -> list[str]:
    """The colour of each class: the project's class list (classes.json), else a default colour.

    Classes without a saved colour get the default class colours not used yet, in
    class order.

    Parameters
    ----------
    classes : list of str
        Class names.
    saved : list of dict
        The project's class list, ``[{"name", "color"}, ...]``.

    Examples
    --------
    >>> class_colors(["a", "b", "c"], [])
    ['#e69f00', '#56b4e9', '#009e73']
    """
    known = {str(c["name"]): str(c["color"]).lower() for c in saved if "name" in c and "color" in c}
    unused = [c.lower() for c in DEFAULT_CLASS_COLORS if c.lower() not in known.values()]
    unused = unused or [c.lower() for c in DEFAULT_CLASS_COLORS]
    colors, spare = [], iter(unused * (len(classes) // len(unused) + 1))
    for name in classes:
        colors.append(known.get(str(name)) or next(spare))
    return colors


# -- what to draw -------------------------------------------------------------------


def _project(project) -> Project:
    if isinstance(project, Project):
        return project
    if not Path(project).is_dir():
        raise FileNotFoundError(f"Project folder {project} does not exist.")
    return Project(project)


def _check_out(project: Project, out: Path) -> None:
    """Refuse an output over a file the figure reads (the project's data, the plate)."""
    inputs = [project.folder / name for name in _PROJECT_INPUTS]
    plate = project.read_meta().get("plate")
    check_outputs([out], [*inputs, plate])
    if out.is_dir():
        raise ValueError(f"Output {out} is a folder; give the path of a PNG file.")


def _predicted_cells(project: Project) -> pd.DataFrame:
    predictions = read_predictions(project)
    if predictions is None or predictions.empty or "pred_class" not in predictions:
        raise ValueError(f"Project {project.folder} holds no predictions; run 'napari-hcs predict' "
                         "first (or Predict in the viewer's Train tab).")
    cells = project.cell_store().cells()[[CROP_INDEX, "well", "field", "timepoint", "label"]]
    predictions = predictions[predictions["pred_class"].notna() & (predictions["pred_class"] != "")]
    return cells.merge(predictions, on=CROP_INDEX, how="inner")


def _model_name(project: Project, cells: pd.DataFrame, model: str | None) -> str | None:
    """The model asked for (it must exist and have made the predictions), else the one that did."""
    names = project.models().names()
    made_by = sorted(set(cells["pred_model"].dropna().astype(str)) - {""}) if "pred_model" in cells else []
    if model is None:
        return made_by[0] if made_by else (names[0] if len(names) == 1 else None)
    if model not in names:
        raise ValueError(f"No model named {model!r} in {project.folder / 'models'}; models are: "
                         f"{', '.join(names) or 'none'}.")
    if made_by and model not in made_by:
        raise ValueError(f"The predictions in {project.folder} were made by model {', '.join(made_by)}, not "
                         f"{model!r}; predict with {model!r} first, or leave the model out.")
    return model


def _class_order(record, cells: pd.DataFrame) -> list[str]:
    if record is not None and record.classes:
        order = [str(c) for c in record.classes]
    else:
        order = [c[len(PROBABILITY_PREFIX):] for c in probability_columns(cells)]
    seen = set(order)
    return order + sorted({str(c) for c in cells["pred_class"].unique()} - seen)


def _sites_text(sites) -> str:
    return ", ".join(f"{s.well}/{s.field}/{s.timepoint}" for s in sites) or "none"


def _choose_site(plate: Plate, cells: pd.DataFrame, site) -> Site:
    """The site asked for (a Site, ``WELL`` or ``WELL/FIELD/TIMEPOINT``), else the first predicted one."""
    keys = cells[["well", "field", "timepoint"]].drop_duplicates()
    predicted = set(zip(keys["well"].astype(str), keys["field"].astype(int), keys["timepoint"].astype(int)))
    with_predictions = [s for s in plate.iter_sites() if (s.well, s.field, s.timepoint) in predicted]
    if site is None:
        return with_predictions[0] if with_predictions else _no_predicted_site(plate)
    if isinstance(site, Site):
        well, parts = site.well, [site.field, site.timepoint]
    else:
        text = str(site).strip().split("/")
        if len(text) not in (1, 3):
            raise ValueError(f"Site {site!r}: give a well (B02) or well/field/timepoint (B02/0/1).")
        well, parts = text[0], text[1:]
    well = normalize_well_name(well)
    if well not in plate.sites:
        raise PlateError(f"Well {well} is not on plate {plate.name!r}; wells: {', '.join(plate.wells)}.")
    candidates = [s for s in with_predictions if s.well == well]
    if parts:
        try:
            wanted = Site(well, int(parts[0]), int(parts[1]))
        except ValueError:
            raise ValueError(f"Site {site!r}: field and timepoint are whole numbers (B02/0/1).") from None
        if wanted not in plate.sites[well]:
            raise PlateError(f"Well {well} has no site {wanted.name}; its sites: {_sites_text(plate.sites[well])}.")
        candidates = [s for s in candidates if s == wanted]
    if not candidates:
        raise ValueError(f"No cell of {'site' if parts else 'well'} {site if isinstance(site, str) else site.name} "
                         f"has a prediction; sites with predictions: {_sites_text(with_predictions)}. "
                         "Predict it first, or choose one of those.")
    return candidates[0]


def _no_predicted_site(plate: Plate) -> Site:
    raise ValueError(f"None of the predicted cells lies on a site of plate {plate.name!r}; "
                     "predict the cells of this plate first ('napari-hcs predict').")


def _site_labels(project: Project, site: Site) -> np.ndarray:
    stored = project.label_store().read(site, ["cells", "nuclei"])
    for name in ("cells", "nuclei"):
        if name in stored:
            return np.asarray(stored[name])
    folder = project.label_store().site_folder(site)
    raise ValueError(f"Site {site.name} has no label image in {folder} (cells.tif or nuclei.tif); "
                     "segment it first ('napari-hcs segment').")


def model_evaluation(project: Project, name: str) -> Evaluation | None:
    """A model's confusion matrix: its evaluated cells (test, else validation), else its metrics.

    Returns None when the model records neither.
    """
    catalog = project.models()
    record = catalog.record(name)
    frame = catalog.evaluation(name)
    classes = [str(c) for c in record.classes]
    if frame is not None and len(frame):
        split = "test" if (frame["split"] == "test").any() else "val"
        extra = sorted({str(c) for c in pd.concat([frame["true_class"], frame["pred_class"]])} - set(classes))
        counts = confusion_counts(frame, classes + extra, split=split)
        return Evaluation.from_counts(classes + extra, counts.to_numpy(), split)
    for split in ("test", "val"):
        metrics = (record.metrics or {}).get(split)
        if isinstance(metrics, dict) and metrics.get("confusion_matrix"):
            found = Evaluation.from_counts([str(c) for c in metrics.get("classes", classes)],
                                           metrics["confusion_matrix"], split)
            found.accuracy = float(metrics.get("accuracy", found.accuracy))
            found.balanced_accuracy = float(metrics.get("balanced_accuracy", found.balanced_accuracy))
            return found
    return None


# -- pixels -------------------------------------------------------------------------


def _rgb(color) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return np.asarray(_COLORMAP_RGB.get(color) or to_rgb(color), dtype=np.float32)


def _composite(plate: Plate, site: Site, step: int) -> np.ndarray:
    """The site's channels added in their viewer colours, contrast 0.5-99.8 %, as float RGB in [0, 1]."""
    pixels = np.asarray(plate.site_array(site)[:, ::step, ::step], dtype=np.float32)
    rgb = np.zeros((*pixels.shape[1:], 3), dtype=np.float32)
    for index, (name, plane) in enumerate(zip(plate.channels, pixels)):
        low, high = contrast_limits(plane)
        scaled = np.clip((plane - low) / (high - low), 0.0, 1.0)
        rgb += scaled[..., None] * _rgb(channel_colormap(name, index))
    return np.clip(rgb, 0.0, 1.0)


def _outlined(rgb: np.ndarray, labels: np.ndarray, site_cells: pd.DataFrame, classes: list[str],
              colors: list[str]) -> np.ndarray:
    """``rgb`` with each cell's boundary in its class colour (grey without a prediction)."""
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    lut[1:] = 1
    known = site_cells[site_cells["label"].between(1, len(lut) - 1)]
    lut[known["label"].to_numpy(np.int64)] = 2 + pd.Categorical(known["pred_class"].astype(str),
                                                                 categories=classes).codes
    value = np.where(find_boundaries(labels, mode="inner"), lut[labels], 0)
    thickness = max(2, math.ceil(2 * max(labels.shape) / _PANEL_PIXELS))
    value = ndimage.grey_dilation(value, size=(thickness, thickness))
    palette = np.stack([np.zeros(3, np.float32), _rgb(NO_CLASS_COLOR), *[_rgb(c) for c in colors]])
    out = rgb * _IMAGE_DIMMING
    drawn = value > 0
    out[drawn] = palette[value[drawn]]
    return out


# -- drawing ------------------------------------------------------------------------


def _draw_site(ax, image: np.ndarray, site: Site, counts: dict, colors: dict) -> None:
    from matplotlib.patches import Patch

    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    total = sum(counts.values())
    ax.set_title(f"Site {site.name}: {total} cells, outlined in their predicted class", fontsize=11)
    handles = [Patch(facecolor=colors[name], edgecolor="black", linewidth=0.5, label=f"{name}: {count}")
               for name, count in counts.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=min(len(handles), 3),
              frameon=False, fontsize=10, title="cells on this site, by predicted class", title_fontsize=10)


def _missing_evaluation(name: str | None, known: bool) -> str:
    if name is None:
        return "The predictions name no model of this project."
    if not known:
        return f"Model {name!r} is no longer among the project's models."
    return f"Model {name!r} records no validation or test cells."


def _draw_confusion(fig, ax, evaluation: Evaluation | str, name: str | None) -> None:
    if isinstance(evaluation, str):
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"No confusion matrix:\n{evaluation}", ha="center", va="center", fontsize=11, wrap=True)
        return
    counts = evaluation.counts
    k = len(evaluation.classes)
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    shown = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    size = 12 if k <= 4 else (9 if k <= 8 else 7)
    for (row, column), count in np.ndenumerate(counts):
        dark = fractions[row, column] > 0.55
        ax.text(column, row, f"{count}\n{fractions[row, column]:.0%}", ha="center", va="center",
                fontsize=size, color="white" if dark else "black")
    long = k * max(len(c) for c in evaluation.classes) > 36
    ax.set_xticks(range(k), labels=evaluation.classes, rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_yticks(range(k), labels=evaluation.classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    split = _SPLIT_WORDS.get(evaluation.split, evaluation.split)
    ax.set_title(f"Model {name}: {split} cells (n = {int(counts.sum())})\naccuracy {evaluation.accuracy:.1%}, "
                 f"balanced accuracy {evaluation.balanced_accuracy:.1%}", fontsize=11)
    fig.colorbar(shown, ax=ax, shrink=0.75, label="fraction of the true class's cells")


def _render(picture: dict, evaluation: Evaluation | str, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 7.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1.0]})
    _draw_site(left, picture["image"], picture["site"], picture["counts"], picture["colors"])
    _draw_confusion(fig, right, evaluation, picture["model"])
    fig.suptitle(f"{picture['plate']}: predicted classes" + (f" of model {picture['model']}" if picture["model"]
                                                             else ""), fontsize=13)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")


def prediction_figure(project, *, model: str | None = None, site=None, out: str | os.PathLike) -> Path:
    """Write a PNG of one site's cells in their predicted class colours, beside the confusion matrix.

    Parameters
    ----------
    project : Project or path
        A project with a segmented plate and predictions.
    model : str, optional
        The model to show (it must have made the predictions); default the
        model named in the predictions (``pred_model``).
    site : Site or str, optional
        ``"B02"`` (its first site with predictions) or ``"B02/0/1"`` (well,
        field, timepoint); default the plate's first site with predictions.
    out : path
        The PNG to write (atomically); never a file the figure reads.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        No predictions, an unknown model, a site not on the plate or without
        predictions or labels, or an output over the project's data.

    Examples
    --------
    >>> from napari_hcs.pipeline import run_plate
    >>> from napari_hcs.segmentation import SegmentationParams
    >>> params = SegmentationParams(nuclei_channel="DAPI", cell_channel="mCherry")
    >>> _ = run_plate(plate, tmp_path / "p", params, wells=["B02"], features=False, pattern="scportrait")
    >>> cells = Project(tmp_path / "p").cell_store().cells()
    >>> prediction_figure(tmp_path / "p", out=tmp_path / "f.png")
    Traceback (most recent call last):
    ...
    ValueError: Project ... holds no predictions; run 'napari-hcs predict' first (or Predict in the viewer's Train tab).
    >>> guess = pd.DataFrame({"crop_index": cells["crop_index"], "pred_class": "round",
    ...                       "pred_confidence": 0.9, "pred_margin": 0.8, "prob_round": 0.9})
    >>> Project(tmp_path / "p").cell_store().write_columns("predictions", guess)
    >>> prediction_figure(tmp_path / "p", site="B02/0/2", out=tmp_path / "f.png").name
    'f.png'
    """
    project = _project(project)
    out = Path(out)
    _check_out(project, out)
    cells = _predicted_cells(project)
    name = _model_name(project, cells, model)
    record = project.models().record(name) if name in project.models().names() else None
    classes = _class_order(record, cells)
    colors = class_colors(classes, project.read_classes())
    plate = project.open_plate()
    chosen = _choose_site(plate, cells, site)
    site_cells = cells[(cells["well"] == chosen.well) & (cells["field"] == chosen.field)
                       & (cells["timepoint"] == chosen.timepoint)]
    labels = _site_labels(project, chosen)
    step = max(1, math.ceil(max(labels.shape) / MAX_SITE_PIXELS))
    labels = labels[::step, ::step]
    image = _outlined(_composite(plate, chosen, step), labels, site_cells, classes, colors)
    found = site_cells["pred_class"].astype(str).value_counts()
    counts = {c: int(found.get(c, 0)) for c in classes}
    unpredicted = len(set(np.unique(labels)) - {0} - set(site_cells["label"].astype(int)))
    legend_colors = dict(zip(classes, colors))
    if unpredicted:
        counts["no prediction"], legend_colors["no prediction"] = unpredicted, NO_CLASS_COLOR
    picture = {"image": image, "site": chosen, "counts": counts, "colors": legend_colors, "model": name,
               "plate": plate.name}
    evaluation = model_evaluation(project, name) if record is not None else None
    _render(picture, evaluation or _missing_evaluation(name, record is not None), out)
    return out
