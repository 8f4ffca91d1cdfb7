"""What the learners' scores are written as: JSON files, confusion-matrix figures, tables.

Examples
--------
>>> from napari_hcs.learn import classification_metrics
>>> results = {"lda": classification_metrics(["a", "b"], ["a", "b"], ["a", "b"]),
...            "svm": classification_metrics(["a", "b"], ["a", "a"], ["a", "b"])}
>>> print(format_table(metrics_table(results)))
| method | accuracy | balanced accuracy |  F1 a |  F1 b | n |
|--------|---------:|------------------:|------:|------:|--:|
| lda    |    1.000 |             1.000 | 1.000 | 1.000 | 2 |
| svm    |    0.500 |             0.500 | 0.667 | 0.000 | 2 |
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..atomic import write_text_atomic

__all__ = ["format_table", "metrics_table", "save_confusion_matrix_png", "save_metrics"]


def save_metrics(metrics: Mapping, path_json: str | os.PathLike) -> Path:
    """Write metrics (or any JSON-ready dict) to a JSON file, atomically.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path_json)
    write_text_atomic(json.dumps(metrics, indent=2, default=_json_default) + "\n", path)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_confusion_matrix_png(
    metrics: Mapping, path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Draw the confusion matrix of ``metrics`` to a PNG file.

    Each cell shows the count; its colour is the fraction of the true class
    (row-normalised), so that small classes stay readable.

    Parameters
    ----------
    metrics : dict
        Output of :func:`~napari_hcs.learn.metrics.classification_metrics`.
    path : path
        PNG file to write.
    title : str, optional
        First line of the figure title (e.g. the method); the accuracy, balanced
        accuracy and number of samples always follow.

    Returns
    -------
    Path
        The file written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(metrics["confusion_matrix"], dtype=float)
    classes = list(metrics["classes"])
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    size = 2.5 + 0.6 * len(classes)
    figure = Figure(figsize=(size + 1.2, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if fractions[row, col] > 0.5 else "black"
        axes.text(col, row, f"{int(count)}", ha="center", va="center", color=colour)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    scores = (
        f"accuracy {metrics['accuracy']:.3f}, balanced {metrics['balanced_accuracy']:.3f}"
        f" (n={metrics['n']})"
    )
    axes.set_title(f"{title}\n{scores}" if title else scores, fontsize=10)
    figure.colorbar(image, ax=axes, label="fraction of true class")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _metrics_of(name: str, result: Mapping) -> Mapping:
    if "per_class" in result:
        return result
    if isinstance(result.get("test"), Mapping):
        return result["test"]
    raise ValueError(
        f"Result {name!r} holds neither metrics (from classification_metrics) nor a "
        "'test' entry with them."
    )


def metrics_table(results: Mapping[str, Mapping]) -> pd.DataFrame:
    """Return the comparison table of several methods.

    Parameters
    ----------
    results : dict
        ``{method: metrics}``, metrics from
        :func:`~napari_hcs.learn.metrics.classification_metrics`, or
        ``{method: {"test": metrics, ...}}`` as returned by
        :func:`napari_hcs.learn.baselines.run_baselines`.

    Returns
    -------
    DataFrame
        One row per method; columns ``accuracy``, ``balanced accuracy`` and
        ``F1 <class>`` for every class (in the order first met), and ``n``.
    """
    rows = {}
    classes: list[str] = []
    for name, result in results.items():
        metrics = _metrics_of(name, result)
        row = {
            "accuracy": metrics["accuracy"],
            "balanced accuracy": metrics["balanced_accuracy"],
        }
        for cls in metrics["classes"]:
            if cls not in classes:
                classes.append(cls)
            row[f"F1 {cls}"] = metrics["per_class"][cls]["f1"]
        row["n"] = metrics["n"]
        rows[name] = row
    columns = ["accuracy", "balanced accuracy"] + [f"F1 {c}" for c in classes] + ["n"]
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
    table.index.name = "method"
    return table


def format_table(df: pd.DataFrame, *, digits: int = 3) -> str:
    """Format a table (e.g. from :func:`metrics_table`) as a Markdown pipe table.

    Floats get ``digits`` decimals; missing values print as ``-``.
    """

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        if isinstance(value, (float, np.floating)):
            return f"{value:.{digits}f}"
        return str(value)

    header = [df.index.name or ""] + [str(c) for c in df.columns]
    body = [
        [str(index)] + [cell(v) for v in row]
        for index, row in zip(df.index, df.itertuples(index=False))
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
    ) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in body])
