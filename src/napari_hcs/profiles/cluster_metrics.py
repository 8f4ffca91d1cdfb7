"""How good clusters are: sizes, homogeneity, completeness, V-measure, Davies-Bouldin, silhouette.

:func:`cluster_report` scores one clustering with scikit-learn's metrics: the
silhouette (on a random sample of at most ``sample`` rows) and the
Davies-Bouldin index need no labels; with known classes (``truth``: compound,
class) homogeneity, completeness and V-measure say how well the clusters match
them. :func:`table_6_1` sets reports side by side in the layout of the
embedding study's Table 6.1: one row per embedding source.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> values = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(8, 1, (50, 2))])
>>> clusters = np.repeat([0, 1], 50)
>>> report = cluster_report(values, clusters, truth=np.repeat(["DMSO", "drug"], 50))
>>> report.sizes, report.metrics["v_measure"], round(report.metrics["silhouette"], 2)
({0: 50, 1: 50}, 1.0, 0.84)
>>> print(markdown_table(table_6_1({"features": report})))
| embedding | cluster sizes | homogeneity | completeness | V-measure | Davies-Bouldin | silhouette |
| --- | --- | --- | --- | --- | --- | --- |
| features | 50 / 50 | 1.0 | 1.0 | 1.0 | 0.219 | 0.844 |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["TABLE_6_1_COLUMNS", "ClusterReport", "cluster_report", "markdown_table", "table_6_1"]

#: Columns of Table 6.1 and the metric each one shows.
TABLE_6_1_COLUMNS = {"homogeneity": "homogeneity", "completeness": "completeness", "V-measure": "v_measure",
                     "Davies-Bouldin": "davies_bouldin", "silhouette": "silhouette"}


@dataclass
class ClusterReport:
    """Sizes and metrics of one clustering.

    Attributes
    ----------
    sizes : dict
        Cluster -> number of rows, largest first (-1: HDBSCAN's noise).
    metrics : dict
        ``silhouette``, ``davies_bouldin``, ``n_clusters``, ``noise`` and, with
        known classes, ``homogeneity``, ``completeness``, ``v_measure``,
        ``adjusted_rand``. A metric that is not defined (a single cluster) is None.
    """

    sizes: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def sizes_text(self) -> str:
        """The cluster sizes, largest first, as ``"1811 / 1787"`` (noise as ``"noise 12"``)."""
        parts = [str(n) for c, n in self.sizes.items() if c != -1]
        if -1 in self.sizes:
            parts.append(f"noise {self.sizes[-1]}")
        return " / ".join(parts)

    def to_frame(self, name: str = "") -> pd.DataFrame:
        """One row of Table 6.1, indexed by ``name`` (the embedding source)."""
        row = {"cluster sizes": self.sizes_text()}
        for column, key in TABLE_6_1_COLUMNS.items():
            value = self.metrics.get(key)
            row[column] = np.nan if value is None else round(float(value), 3)
        return pd.DataFrame([row], index=pd.Index([name], name="embedding"))

    def to_markdown(self, name: str = "") -> str:
        """The row of :meth:`to_frame` as a Markdown table."""
        return markdown_table(self.to_frame(name))


def _score(function, *args, **kwargs) -> float | None:
    try:
        return float(function(*args, **kwargs))
    except ValueError:  # a single cluster, or every row its own
        return None


def cluster_report(values, clusters, *, truth=None, sample: int = 20000, seed: int = 0) -> ClusterReport:
    """Score a clustering.

    Parameters
    ----------
    values : array-like, shape (N, D)
        What was clustered (the silhouette and Davies-Bouldin index are measured in it).
    clusters : array-like of int, shape (N,)
        Cluster of each row (-1: noise, left out of the silhouette and Davies-Bouldin).
    truth : array-like, shape (N,), optional
        Known class of each row; adds homogeneity, completeness, V-measure and
        the adjusted Rand index (noise counts as one more cluster).
    sample : int
        The silhouette is computed on at most this many rows (it costs N squared).
    seed : int
        Seed of that sample.

    Returns
    -------
    ClusterReport

    Raises
    ------
    ValueError
        When the lengths of ``values``, ``clusters`` and ``truth`` differ.
    """
    from sklearn import metrics

    values = np.asarray(values, dtype=np.float64)
    clusters = np.asarray(clusters).astype(np.int64)
    if values.ndim != 2 or len(values) != len(clusters):
        raise ValueError(f"{len(clusters)} cluster label(s) for values of shape {values.shape}; "
                         "expected one label per row.")
    names, counts = np.unique(clusters, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    sizes = {int(names[i]): int(counts[i]) for i in order}
    kept = clusters >= 0
    found = len(np.unique(clusters[kept]))
    scored = {"n_clusters": int(found), "noise": int((~kept).sum())}
    if 2 <= found < kept.sum():
        size = int(min(sample, kept.sum()))
        scored["silhouette"] = _score(metrics.silhouette_score, values[kept], clusters[kept],
                                      sample_size=size if size < kept.sum() else None, random_state=seed)
        scored["davies_bouldin"] = _score(metrics.davies_bouldin_score, values[kept], clusters[kept])
    else:
        scored["silhouette"] = scored["davies_bouldin"] = None
    if truth is not None:
        truth = np.asarray(truth).astype(str)
        if len(truth) != len(clusters):
            raise ValueError(f"{len(truth)} known class(es) for {len(clusters)} clustered rows; expected one each.")
        homogeneity, completeness, v_measure = metrics.homogeneity_completeness_v_measure(truth, clusters)
        scored.update(homogeneity=float(homogeneity), completeness=float(completeness), v_measure=float(v_measure),
                      adjusted_rand=float(metrics.adjusted_rand_score(truth, clusters)))
    return ClusterReport(sizes=sizes, metrics=scored)


def table_6_1(reports: dict[str, ClusterReport]) -> pd.DataFrame:
    """Reports side by side, one row per embedding source (the layout of Table 6.1).

    Columns: ``cluster sizes``, ``homogeneity``, ``completeness``, ``V-measure``,
    ``Davies-Bouldin``, ``silhouette`` (NaN where not defined or without known classes).
    """
    if not reports:
        return pd.DataFrame(columns=["cluster sizes", *TABLE_6_1_COLUMNS],
                            index=pd.Index([], name="embedding"))
    return pd.concat([report.to_frame(name) for name, report in reports.items()])


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame (with its index) as a Markdown table.

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"a": [1.5]}, index=pd.Index(["x"], name="embedding"))))
    | embedding | a |
    | --- | --- |
    | x | 1.5 |
    """
    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for index, row in frame.iterrows():
        cells = [str(index)] + ["" if isinstance(v, float) and np.isnan(v) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
