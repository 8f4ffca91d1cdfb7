"""Which sites quality control flags, and why: absolute limits and robust outliers per plate and channel.

:func:`flag_sites` adds to a quality table (one row per site and channel, the
columns of :func:`~napari_hcs.images.quality.site_quality` plus ``plate``,
``site_key`` and ``error``) a ``flags`` column (names of
:data:`~napari_hcs.vocabulary.QC_FLAGS` joined by ``;``) and a ``reasons`` column
(what was measured against what). A site is flagged when any of its channels is.

Two kinds of rule, with the limits of :class:`QcThresholds`:

- **absolute**, for every site whatever the plate: ``missing_channel`` (the channel
  could not be read), ``nan`` (NaN or infinite pixels), ``blank`` (near-constant:
  ``q99 - q01`` at most ``blank_spread`` of the median), ``saturation`` (more than
  ``saturation_percent`` % of the pixels at the image's maximum, CellProfiler's
  PercentMaximal, or at the pixel type's maximum);
- **robust**, against the other sites of the same plate and channel (median and
  MAD, scaled by 1.4826 to a standard deviation): ``focus`` (PowerLogLogSlope
  lower, i.e. steeper, than the plate's), ``dim`` (``q99 - q01`` far below the
  plate's), ``debris`` (``q99 - q01`` far above). Each needs the site to lie both
  more than ``z`` robust deviations from the median and further than a minimum
  distance, so that a plate of near-identical sites (a MAD near 0) flags nothing
  by chance. Robust rules need ``min_sites`` readable sites in the plate and
  channel; with fewer, only the absolute rules apply (one or two sites give no
  plate to compare against).

Examples
--------
>>> table = pd.DataFrame({
...     "plate": "P1", "site_key": [f"A01_f{i:03d}_t000" for i in range(6)], "channel": "DAPI",
...     "power_log_log_slope": [-1.7, -1.72, -1.68, -1.71, -1.69, -2.4],
...     "q01": 100.0, "q50": 150.0, "q99": 5000.0, "percent_maximal": 0.001,
...     "percent_saturated": 0.0, "nan_fraction": 0.0, "error": ""})
>>> flagged = flag_sites(table)
>>> flagged["flags"].tolist()
['', '', '', '', '', 'focus']
>>> site_flags(flagged)["A01_f005_t000"]
['focus']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..vocabulary import QC_FLAGS

__all__ = ["QcThresholds", "flag_sites", "site_flags"]

_MAD_SCALE = 1.4826  # the MAD of normal data times this is its standard deviation


@dataclass(frozen=True)
class QcThresholds:
    """The limits of quality control flags.

    The defaults were set on the real plates of the tests (a scPortrait time course,
    2 wells x 3 timepoints, and a Cell Painting site cut into four): none of their
    unaltered sites is flagged. The PowerLogLogSlope of unaltered sites of one plate
    and channel spans 0.03 to 0.28; a Gaussian blur of sigma 2 pixels lowers it by
    0.35 to 0.6.

    Attributes
    ----------
    min_sites : int
        Readable sites a plate and channel need before the robust rules apply.
        From 3 on the median is a site's own value that one outlier cannot move,
        and the minimum distances below keep a small MAD from flagging.
    focus_z : float
        A site's PowerLogLogSlope more than this many robust deviations below the
        plate's median is out of focus ...
    focus_min_drop : float
        ... and at least this far below it (slope units; a blur of sigma 1.5
        pixels lowers the slope by about 0.33, sigma 1 by 0.15).
    focus_score_factor : float or None
        Optionally flag ``focus`` also when FocusScore is this many times below the
        plate's median. Off by default: FocusScore (a normalised variance) follows
        cell density and brightness (3x between unaltered sites of one plate) and
        drops by only about 10 % under a blur of sigma 2.
    saturation_percent : float
        Percent of the pixels at the image's maximum (PercentMaximal) or at the
        pixel type's maximum above which a site is saturated. Unaltered sites hold
        one pixel or a few at their maximum (under 0.1 %, 8-bit data included); 1 %
        of a 1080 x 1080 site is some 12,000 pixels, tens of saturated nuclei.
    blank_spread : float
        ``q99 - q01`` at most this fraction of ``|q50|`` (or 0) is a blank,
        near-constant image. Camera noise alone spreads an empty field by some 10 %.
    dim_z, dim_factor : float
        ``q99 - q01`` more than ``dim_z`` robust deviations (of its logarithm) and
        more than ``dim_factor`` times below the plate's median is dim (a failed
        stain, an empty field). Unaltered sites of one plate differ up to 2.5x.
    debris_z, debris_factor : float
        The same limits above the median: very bright objects (debris, aggregates)
        filling more than 1 % of the site.
    nan_fraction : float
        Fraction of NaN or infinite pixels above which a site is flagged ``nan``
        (0: any).
    """

    min_sites: int = 3
    focus_z: float = 4.0
    focus_min_drop: float = 0.3
    focus_score_factor: float | None = None
    saturation_percent: float = 1.0
    blank_spread: float = 0.01
    dim_z: float = 4.0
    dim_factor: float = 4.0
    debris_z: float = 5.0
    debris_factor: float = 4.0
    nan_fraction: float = 0.0

    def to_dict(self) -> dict:
        """The limits as a JSON-ready dict."""
        return asdict(self)


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    if name in table:
        return pd.to_numeric(table[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=table.index, dtype=float)


def _spread(table: pd.DataFrame) -> pd.Series:
    return _column(table, "q99") - _column(table, "q01")


def _absolute(table: pd.DataFrame, limits: QcThresholds) -> dict[str, tuple[pd.Series, pd.Series]]:
    """The absolute rules: flag -> (which rows, the reason text of each)."""
    error = table["error"].fillna("").astype(str) if "error" in table else pd.Series("", index=table.index)
    nan_fraction = _column(table, "nan_fraction")
    spread, median = _spread(table), _column(table, "q50")
    blank = (spread <= limits.blank_spread * median.abs()) | (spread == 0)
    maximal, saturated = _column(table, "percent_maximal"), _column(table, "percent_saturated")
    at_top = saturated.fillna(0) > limits.saturation_percent
    at_max = (maximal > limits.saturation_percent) & ~blank
    percent = np.fmax(maximal.where(at_max), saturated.where(at_top))
    return {
        "missing_channel": (error != "", "could not be read: " + error),
        "nan": (nan_fraction > limits.nan_fraction,
                nan_fraction.map(lambda v: f"{100 * v:.3g} % of the pixels are NaN or infinite")),
        "blank": (blank & spread.notna(),
                  spread.map(lambda v: f"near-constant image (q99 - q01 = {v:.4g})")),
        "saturation": (at_top | at_max,
                       percent.map(lambda v: f"{v:.3g} % of the pixels saturated "
                                             f"(limit {limits.saturation_percent:g} %)")),
    }


def _robust_centre(values: pd.Series, groups: list[pd.Series], min_sites: int) -> tuple[pd.Series, pd.Series]:
    """Median and scaled MAD of ``values`` within each group, NaN where a group has too few values."""
    frame = pd.DataFrame({"value": values, **{f"g{i}": g for i, g in enumerate(groups)}})
    keys = [f"g{i}" for i in range(len(groups))]
    grouped = frame.groupby(keys, dropna=False)["value"]
    median = grouped.transform("median")
    mad = (frame["value"] - median).abs().groupby([frame[k] for k in keys], dropna=False).transform("median")
    count = grouped.transform("count")
    enough = count >= min_sites
    return median.where(enough), (_MAD_SCALE * mad).where(enough)


def _robust(table: pd.DataFrame, usable: pd.Series, limits: QcThresholds) -> dict[str, tuple[pd.Series, pd.Series]]:
    """The robust rules against each plate and channel: flag -> (which rows, reason texts)."""
    plate = table["plate"].astype(str) if "plate" in table else pd.Series("", index=table.index)
    groups = [plate, table["channel"].astype(str)]
    found: dict[str, tuple[pd.Series, pd.Series]] = {}

    slope = _column(table, "power_log_log_slope").where(usable)
    median, scale = _robust_centre(slope, groups, limits.min_sites)
    limit = median - np.fmax(limits.focus_z * scale, limits.focus_min_drop)
    focus = slope < limit
    text = [f"PowerLogLogSlope {s:.3f} below the plate's {m:.3f} (limit {t:.3f})"
            for s, m, t in zip(slope, median, limit)]
    if limits.focus_score_factor is not None:
        score = np.log(_column(table, "focus_score").where(usable & (_column(table, "focus_score") > 0)))
        score_median, _ = _robust_centre(score, groups, limits.min_sites)
        low_score = score < score_median - np.log(limits.focus_score_factor)
        text = [t if f else f"FocusScore {np.exp(s):.4g} below the plate's {np.exp(m):.4g}"
                for t, f, s, m in zip(text, focus, score, score_median)]
        focus = focus | low_score
    found["focus"] = (focus, pd.Series(text, index=table.index))

    spread = np.log(_spread(table).where(usable & (_spread(table) > 0)))
    median, scale = _robust_centre(spread, groups, limits.min_sites)
    for flag, sign, z, factor in (("dim", -1, limits.dim_z, limits.dim_factor),
                                  ("debris", 1, limits.debris_z, limits.debris_factor)):
        bound = median + sign * np.fmax(z * scale, np.log(factor))
        rows = spread < bound if sign < 0 else spread > bound
        word = "below" if sign < 0 else "above"
        texts = [f"q99 - q01 = {np.exp(v):.4g}, {word} the plate's {np.exp(m):.4g} (limit {np.exp(b):.4g})"
                 for v, m, b in zip(spread, median, bound)]
        found[flag] = (rows, pd.Series(texts, index=table.index))
    return found


def flag_sites(table: pd.DataFrame, thresholds: QcThresholds | None = None) -> pd.DataFrame:
    """Add ``flags`` and ``reasons`` columns to a quality table (one row per site and channel).

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`~napari_hcs.images.quality.site_quality` with ``channel``,
        ``site_key``, and optionally ``plate`` (robust rules are per plate and
        channel) and ``error`` (the text of a channel that could not be read).
    thresholds : QcThresholds, optional
        The limits; the documented defaults when not given.

    Returns
    -------
    DataFrame
        A copy with ``flags`` (flag names in the order of
        :data:`~napari_hcs.vocabulary.QC_FLAGS`, joined by ``;``, empty when none)
        and ``reasons`` (``flag: what was measured``, joined by ``; ``).
    """
    limits = thresholds or QcThresholds()
    table = table.copy()
    for column in ("channel", "site_key"):
        if column not in table:
            raise KeyError(f"The quality table has no {column!r} column; expected one row per site and channel.")
    rules = _absolute(table, limits)
    unusable = rules["missing_channel"][0] | rules["blank"][0]
    rules.update(_robust(table, ~unusable, limits))
    rules["debris"] = (rules["debris"][0] & ~rules["saturation"][0], rules["debris"][1])
    rules["dim"] = (rules["dim"][0] & ~rules["blank"][0], rules["dim"][1])
    flags = [[] for _ in range(len(table))]
    reasons = [[] for _ in range(len(table))]
    for flag in QC_FLAGS:
        if flag not in rules:
            continue
        rows, texts = rules[flag]
        for position in np.flatnonzero(rows.fillna(False).to_numpy(dtype=bool)):
            flags[position].append(flag)
            reasons[position].append(f"{flag}: {texts.iloc[position]}")
    table["flags"] = [";".join(f) for f in flags]
    table["reasons"] = ["; ".join(r) for r in reasons]
    return table


def site_flags(table: pd.DataFrame) -> dict[str, list[str]]:
    """Site key -> the flags of any of its channels (in the order of QC_FLAGS; empty when clean).

    Examples
    --------
    >>> site_flags(pd.DataFrame({"site_key": ["A", "A", "B"], "flags": ["focus", "nan;focus", ""]}))
    {'A': ['focus', 'nan'], 'B': []}
    """
    found: dict[str, set[str]] = {}
    for key, flags in zip(table["site_key"].astype(str), table["flags"].fillna("").astype(str)):
        found.setdefault(key, set()).update(f for f in flags.split(";") if f)
    return {key: [f for f in QC_FLAGS if f in names] for key, names in found.items()}
