"""How well profiles recover mechanisms of action: NSC / NSCB 1-NN accuracy and copairs mAP.

The two evaluations of the profiling field:

- Ljosa et al. (2013) on BBBC021: each *treatment* (a compound at one
  concentration) is the median of its wells' profiles; each treatment's
  mechanism of action (MoA) is predicted by its nearest neighbour (cosine
  similarity) among the treatments of *other compounds* (not-same-compound,
  NSC), or of other compounds from *other batches* too (NSCB), and the
  accuracy is the fraction predicted right. Controls (DMSO) are neither
  queries nor neighbours.
- mean average precision (mAP, copairs, the JUMP consortium's evaluation):
  replicate retrieval (does a well rank the other wells of its treatment above
  the control wells?) and MoA retrieval (does a treatment rank the treatments
  of other compounds with its MoA above those of other MoAs?), with
  permutation p-values corrected for multiple testing.

Examples
--------
>>> wells = pd.DataFrame({"compound": ["a", "a", "b", "b", "c", "d"],
...                       "concentration": [1.0] * 6, "moa": ["X", "X", "X", "X", "Y", "Y"],
...                       "f1": [1.0, 0.9, 0.8, 1.0, 0.0, 0.1], "f2": [0.0, 0.1, 0.2, 0.0, 1.0, 0.9]})
>>> result = nsc_accuracy(wells, features=["f1", "f2"])
>>> result.nsc, result.treatments, result.moas
(1.0, 4, 2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ..learn.plates import parse_controls
from ..names import shorten, suggest
from .profile_store import WellProfiles

__all__ = [
    "MapResult",
    "NscResult",
    "evaluate_profiles",
    "mean_average_precision",
    "nsc_accuracy",
    "treatment_profiles",
]

#: What a mAP retrieves: the other wells of a treatment, or the treatments of a mechanism.
RETRIEVALS = ("replicates", "moa")
_TREATMENT = "treatment"


@dataclass
class NscResult:
    """1-NN MoA accuracy of treatment profiles (Ljosa et al. 2013).

    Attributes
    ----------
    nsc : float
        Accuracy with neighbours of other compounds only.
    nscb : float or None
        Accuracy with neighbours of other compounds and other batches (None without a batch column).
    treatments : int
        Queries of NSC (treatments with an MoA, controls left out).
    treatments_nscb : int
        Queries of NSCB (those with some neighbour in another batch).
    moas : int
        Mechanisms among the queries.
    per_moa : dict
        NSC accuracy of each mechanism.
    predictions : DataFrame
        One row per query: treatment, compound, moa, NSC neighbour and prediction (not in :meth:`to_dict`).
    """

    nsc: float
    nscb: float | None
    treatments: int
    treatments_nscb: int
    moas: int
    per_moa: dict = field(default_factory=dict)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("predictions")
        return values


@dataclass
class MapResult:
    """mean average precision of one retrieval (copairs).

    Attributes
    ----------
    retrieve : str
        ``"replicates"`` or ``"moa"``.
    map : float
        Mean over the groups (treatments or mechanisms) of their mAP.
    fraction_retrieved : float
        Fraction of groups whose corrected p-value is below ``threshold``.
    groups : int
        Treatments (replicates) or mechanisms (moa) scored.
    null_size, threshold : int, float
        Permutations of the null distribution; significance level.
    per_group : DataFrame
        copairs' table: group, ``mean_average_precision``, ``p_value``,
        ``corrected_p_value``, ``below_corrected_p`` (not in :meth:`to_dict`).
    """

    retrieve: str
    map: float
    fraction_retrieved: float
    groups: int
    null_size: int
    threshold: float
    per_group: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("per_group")
        return values


def _table_and_features(profiles, features: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    if isinstance(profiles, WellProfiles):
        return profiles.table, list(features or profiles.features)
    if features is None:
        raise ValueError("Name the feature columns of the profiles (features=...).")
    features = list(features)
    missing = [f for f in features if f not in profiles.columns]
    if missing:
        raise KeyError(f"The profiles lack the feature column(s) {shorten(missing, quote=True)}.")
    return profiles, features


def _require(table: pd.DataFrame, *columns: str | None) -> None:
    for column in columns:
        if column is not None and column not in table.columns:
            raise KeyError(f"Column {column!r} is not in the well profiles; columns are: "
                           f"{suggest(column, table.columns)}.")


def _not_controls(table: pd.DataFrame, controls: str | None) -> pd.Series:
    parsed = parse_controls(controls)
    if parsed is None:
        return pd.Series(True, index=table.index)
    column, values = parsed
    _require(table, column)
    return ~table[column].astype(str).isin(values)


def treatment_profiles(profiles, *, features: Sequence[str] | None = None, compound: str = "compound",
                       concentration: str | None = "concentration", moa: str | None = "moa",
                       batch: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The median profile of each treatment (compound + concentration) over its wells.

    Parameters
    ----------
    profiles : WellProfiles or DataFrame
        One row per well (a DataFrame needs ``features``).
    compound, concentration, moa, batch : str or None
        Columns; without ``concentration`` (None or absent) a treatment is a compound.

    Returns
    -------
    table : DataFrame
        ``treatment``, ``compound``, ``concentration``, ``moa``, ``batches`` (tuple of the
        batches of its wells), ``n_wells``, then the features.
    features : list of str
    """
    table, features = _table_and_features(profiles, features)
    _require(table, compound, moa, batch)
    if concentration is not None and concentration not in table.columns:
        concentration = None
    keys = [compound] + ([concentration] if concentration else [])
    treatment = table[compound].astype(str)
    if concentration:
        treatment = treatment + "@" + table[concentration].astype(str)
    treatment = treatment.rename(_TREATMENT)
    medians = table[features].groupby(treatment, sort=True).median()
    grouped = table.groupby(treatment, sort=True)
    meta = grouped[keys + ([moa] if moa else [])].first()
    meta["n_wells"] = grouped.size()
    if batch is not None:
        meta["batches"] = grouped[batch].agg(lambda b: tuple(sorted(set(map(str, b)))))
    return pd.concat([meta, medians], axis=1).reset_index(), features


def nsc_accuracy(profiles, *, features: Sequence[str] | None = None, moa: str = "moa",
                 compound: str = "compound", concentration: str | None = "concentration",
                 batch: str | None = None, controls: str | None = None) -> NscResult:
    """Not-same-compound (and not-same-compound-or-batch) 1-NN MoA accuracy, cosine similarity.

    Parameters
    ----------
    profiles : WellProfiles or DataFrame
        Well profiles (a DataFrame needs ``features``).
    moa, compound, concentration, batch : str or None
        Columns of the wells; ``batch`` (the week of a BBBC021 plate, say) enables NSCB.
    controls : str, optional
        ``"compound=DMSO"``: those wells are left out (neither queries nor neighbours).
        Wells without an MoA are left out too.

    Raises
    ------
    KeyError
        If a column is missing.
    ValueError
        If fewer than 2 compounds with an MoA remain.
    """
    from sklearn.metrics.pairwise import cosine_similarity

    table, features = _table_and_features(profiles, features)
    _require(table, moa, compound, batch)
    table = table[_not_controls(table, controls) & table[moa].notna() & (table[moa].astype(str) != "")]
    treatments, features = treatment_profiles(table, features=features, compound=compound,
                                              concentration=concentration, moa=moa, batch=batch)
    if treatments[compound].nunique() < 2:
        raise ValueError("NSC accuracy needs treatments of at least 2 compounds with an MoA; "
                         f"there are {treatments[compound].nunique()}.")
    similarity = cosine_similarity(np.nan_to_num(treatments[features].to_numpy(dtype=float)))
    same = treatments[compound].to_numpy()
    allowed = same[:, None] != same[None, :]
    labels = treatments[moa].astype(str).to_numpy()
    nsc_hit, nsc_pred = _nearest(similarity, allowed, labels)
    predictions = treatments[[_TREATMENT, compound, moa]].assign(predicted=nsc_pred, correct=nsc_hit)
    nscb, nscb_count = None, 0
    if batch is not None:
        batches = [set(b) for b in treatments["batches"]]
        other = np.array([[not (a & b) for b in batches] for a in batches])
        hit, pred = _nearest(similarity, allowed & other, labels)
        usable = (allowed & other).any(axis=1)
        nscb_count = int(usable.sum())
        nscb = float(hit[usable].mean()) if nscb_count else None
        predictions = predictions.assign(predicted_nscb=pred)
    per_moa = predictions.groupby(moa)["correct"].mean().to_dict()
    return NscResult(nsc=float(nsc_hit.mean()), nscb=nscb, treatments=len(treatments),
                     treatments_nscb=nscb_count, moas=int(treatments[moa].nunique()),
                     per_moa={str(k): float(v) for k, v in per_moa.items()}, predictions=predictions)


def _nearest(similarity: np.ndarray, allowed: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each row's most similar allowed neighbour has its label, and that label ('' if none)."""
    masked = np.where(allowed, similarity, -np.inf)
    best = masked.argmax(axis=1)
    found = allowed.any(axis=1)
    predicted = np.where(found, labels[best], "")
    return (predicted == labels) & found, predicted


def _copairs_frame(table: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """Metadata with plain column names (copairs matches pairs in SQL) and text values."""
    return pd.DataFrame({name: table[column].astype(str).to_numpy() for name, column in columns.items()})


def mean_average_precision(profiles, *, retrieve: str = "replicates", features: Sequence[str] | None = None,
                           moa: str = "moa", compound: str = "compound",
                           concentration: str | None = "concentration", controls: str | None = None,
                           null_size: int = 10000, threshold: float = 0.05, seed: int = 0) -> MapResult:
    """mean average precision of replicate or MoA retrieval, cosine similarity (copairs).

    Parameters
    ----------
    profiles : WellProfiles or DataFrame
        Well profiles (a DataFrame needs ``features``).
    retrieve : {"replicates", "moa"}
        ``replicates``: each well ranks the other wells of its treatment against the
        control wells (``controls``; without controls, against the other treatments).
        ``moa``: each treatment profile (median of its wells; controls and wells
        without an MoA left out) ranks the treatments of other compounds with its MoA
        against those of other MoAs.
    null_size, threshold, seed
        Permutations for the p-values, the level of the Benjamini-Hochberg corrected
        p-values, the seed of the permutations.

    Raises
    ------
    ValueError
        If there are no positive or negative pairs.

    Examples
    --------
    >>> wells = pd.DataFrame({"compound": ["a", "a", "DMSO", "DMSO", "DMSO"], "concentration": [1.0] * 5,
    ...                       "f1": [1.0, 0.9, 0.0, 0.1, -0.1], "f2": [0.0, 0.1, 1.0, 0.9, 1.1]})
    >>> result = mean_average_precision(wells, features=["f1", "f2"], controls="compound=DMSO", null_size=100)
    >>> result.map, result.groups
    (1.0, 1)
    """
    from copairs.map import average_precision
    from copairs.map import mean_average_precision as copairs_map
    from copairs.matching import UnpairedException

    if retrieve not in RETRIEVALS:
        raise ValueError(f"Retrieve {retrieve!r}: choose among {', '.join(RETRIEVALS)}.")
    table, features = _table_and_features(profiles, features)
    if retrieve == "replicates":
        meta, values, group = _replicate_pairs(table, features, compound, concentration, controls)
    else:
        meta, values, group = _moa_pairs(table, features, moa, compound, concentration, controls)
    try:
        scores = average_precision(meta, values, progress_bar=False, **group)
    except UnpairedException as error:
        raise ValueError(f"mAP of {retrieve}: {error} (too few wells of a treatment, or no negatives).") from None
    sameby = group["pos_sameby"][:1]
    per_group = copairs_map(scores, sameby, null_size=null_size, threshold=threshold, seed=seed,
                            progress_bar=False, max_workers=2)
    return MapResult(retrieve=retrieve, map=float(per_group["mean_average_precision"].mean()),
                     fraction_retrieved=float(per_group["below_corrected_p"].mean()),
                     groups=len(per_group), null_size=int(null_size), threshold=float(threshold),
                     per_group=per_group)


def _replicate_pairs(table, features, compound, concentration, controls):
    _require(table, compound)
    columns = {"compound": compound}
    if concentration is not None and concentration in table.columns:
        columns["concentration"] = concentration
    meta = _copairs_frame(table, columns)
    meta[_TREATMENT] = meta[list(columns)].agg("@".join, axis=1)
    control = ~_not_controls(table, controls).to_numpy()
    # Each control well its own reference: controls are negatives, never positives of each other.
    meta["reference"] = np.where(control, np.arange(len(meta)), -1)
    group = {"pos_sameby": [_TREATMENT, "reference"], "pos_diffby": [],
             "neg_sameby": [], "neg_diffby": [_TREATMENT, "reference"] if control.any() else [_TREATMENT]}
    return meta, np.nan_to_num(table[features].to_numpy(dtype=float)), group


def _moa_pairs(table, features, moa, compound, concentration, controls):
    _require(table, moa, compound)
    kept = table[_not_controls(table, controls) & table[moa].notna()]
    treatments, features = treatment_profiles(kept, features=features, compound=compound,
                                              concentration=concentration, moa=moa)
    meta = _copairs_frame(treatments, {"moa": moa, "compound": compound})
    group = {"pos_sameby": ["moa"], "pos_diffby": ["compound"], "neg_sameby": [], "neg_diffby": ["moa"]}
    return meta, np.nan_to_num(treatments[features].to_numpy(dtype=float)), group


def evaluate_profiles(profiles, *, features: Sequence[str] | None = None, moa: str = "moa",
                      compound: str = "compound", concentration: str | None = "concentration",
                      batch: str | None = None, controls: str | None = None,
                      null_size: int = 10000, seed: int = 0) -> dict:
    """NSC, NSCB and both mAPs as one plain dictionary (what the command line prints).

    ``controls`` defaults to the profiles' own (their provenance) for :class:`WellProfiles`.
    A score the wells cannot give (one compound only, no replicate wells) is None, and
    ``skipped`` says why; a missing column is an error.

    Raises
    ------
    KeyError
        If the MoA, compound, batch or control column is missing.

    Examples
    --------
    >>> wells = pd.DataFrame({"compound": ["a", "a", "DMSO", "DMSO"], "moa": ["X", "X", "DMSO", "DMSO"],
    ...                       "f1": [1.0, 0.9, 0.0, 0.1], "f2": [0.0, 0.1, 1.0, 0.9]})
    >>> result = evaluate_profiles(wells, features=["f1", "f2"], controls="compound=DMSO", null_size=100)
    >>> result["nsc"], result["map_replicates"], sorted(result["skipped"])
    (None, 1.0, ['map_moa', 'nsc'])
    """
    if controls is None and isinstance(profiles, WellProfiles):
        controls = profiles.provenance.get("controls")
    table, features = _table_and_features(profiles, features)
    _require(table, moa, compound, batch)
    common = {"features": features, "compound": compound, "concentration": concentration, "controls": controls}
    runs = {"nsc": lambda: nsc_accuracy(table, moa=moa, batch=batch, **common),
            "map_replicates": lambda: mean_average_precision(table, retrieve="replicates", null_size=null_size,
                                                             seed=seed, **common),
            "map_moa": lambda: mean_average_precision(table, retrieve="moa", moa=moa, null_size=null_size,
                                                      seed=seed, **common)}
    out: dict = {"nsc": None, "nscb": None, "map_replicates": None, "map_moa": None, "details": {}, "skipped": {}}
    for name, run in runs.items():
        try:
            result = run()
        except ValueError as error:
            out["skipped"][name] = str(error)
            continue
        out["details"][name] = result.to_dict()
        if name == "nsc":
            out["nsc"], out["nscb"] = result.nsc, result.nscb
        else:
            out[name] = result.map
    return out
