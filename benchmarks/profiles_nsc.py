"""NSC / NSCB 1-NN MoA accuracy and mAP of BBBC021 well profiles (Ljosa et al. 2013).

Reads ../shared/data/bbbc021_profiles: the CellProfiler per-well mean features of
Ljosa et al. (632 wells of 55 plates, 330 of them DMSO), the image table (plate and
well -> compound and concentration) and the MoA table (compound and concentration ->
one of 12 mechanisms). The batch of a plate is its week (``Week4_27481`` -> ``Week4``).

Each normalisation is run through the product's
:func:`napari_hcs.profiles.well_profiles.profile_wells` and scored with
:mod:`napari_hcs.profiles.profile_evaluation` (treatment = compound + concentration,
the median of its wells, cosine 1-NN; DMSO neither query nor neighbour). The plain
global z-score (all wells, no per-plate step, no selection, no sphering) is the
baseline. The product's default is printed first as ``NSC``, ``NSCB``, ``mAP`` (MoA
retrieval) and ``mAP_replicates``; the others carry their variant's name as prefix.

Run: ``python benchmarks/profiles_nsc.py [--all] [--figure docs/images/profiles_bbbc021.png]``
(``--all`` adds every variant measured; ``--figure`` draws the treatments' cosine similarity,
baseline beside default, ordered by MoA).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from napari_hcs.profiles.profile_evaluation import mean_average_precision, nsc_accuracy, treatment_profiles
from napari_hcs.profiles.well_profiles import ProfileOptions, profile_wells

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbbc021_profiles"
CONTROLS = "compound=DMSO"
METADATA = ["plate", "well", "compound", "concentration", "moa", "batch"]


def load_wells(folder: Path = DATA) -> tuple[pd.DataFrame, list[str]]:
    """The 632 BBBC021 wells with compound, concentration, MoA and batch, and the feature names."""
    wells = pd.read_csv(folder / "ljosa_per_well_mean.csv.gz")
    wells = wells.rename(columns={"Image_Metadata_Plate": "plate", "Image_Metadata_Well": "well"})
    features = [c for c in wells.columns if c not in ("plate", "well")]
    image = pd.read_csv(folder / "BBBC021_v1_image.csv.gz",
                        usecols=["Image_Metadata_Plate_DAPI", "Image_Metadata_Well_DAPI",
                                 "Image_Metadata_Compound", "Image_Metadata_Concentration"])
    image.columns = ["plate", "well", "compound", "concentration"]
    moa = pd.read_csv(folder / "BBBC021_v1_moa.csv")
    meta = image.drop_duplicates().merge(moa, on=["compound", "concentration"], how="left")
    meta["batch"] = meta["plate"].str.split("_").str[0]
    wells = wells.merge(meta, on=["plate", "well"], how="left")
    return wells[METADATA + features], features


#: The variants measured, the product's default first; ``global_zscore`` is the plain baseline.
_SELECTION = ("variance_threshold", "correlation_threshold", "drop_na_columns", "drop_outliers")
VARIANTS = {
    "default": ProfileOptions(controls=CONTROLS),
    "global_zscore": ProfileOptions(normalisation="standardize", scope="global", controls=None,
                                    feature_selection=(), spherize=False),
    "global_zscore_selected": ProfileOptions(controls=CONTROLS, spherize=False),
    "global_zscore_sphered": ProfileOptions(controls=CONTROLS, feature_selection=()),
    "global_mad_robustize_selected_sphered": ProfileOptions(normalisation="mad_robustize", controls=CONTROLS),
    "sphering_regularisation_0": ProfileOptions(controls=CONTROLS, spherize_regularisation=0.0),
    "sphering_regularisation_0.1": ProfileOptions(controls=CONTROLS, spherize_regularisation=0.1),
    "sphering_regularisation_0.5": ProfileOptions(controls=CONTROLS, spherize_regularisation=0.5),
    "sphering_regularisation_1": ProfileOptions(controls=CONTROLS, spherize_regularisation=1.0),
    "correlation_threshold_0.8": ProfileOptions(controls=CONTROLS, correlation_threshold=0.8),
    "correlation_threshold_0.95": ProfileOptions(controls=CONTROLS, correlation_threshold=0.95),
    "plate_standardize": ProfileOptions(normalisation="standardize", scope="plate", controls=CONTROLS,
                                        feature_selection=(), spherize=False),
    "plate_robustize": ProfileOptions(normalisation="robustize", scope="plate", controls=CONTROLS,
                                      feature_selection=(), spherize=False),
    "plate_mad_robustize": ProfileOptions(normalisation="mad_robustize", scope="plate", controls=CONTROLS,
                                          feature_selection=(), spherize=False),
    "plate_mad_robustize_selected": ProfileOptions(normalisation="mad_robustize", scope="plate",
                                                   controls=CONTROLS, spherize=False),
    "plate_mad_robustize_selected_sphered": ProfileOptions(normalisation="mad_robustize", scope="plate",
                                                           controls=CONTROLS),
}


def describe(options: ProfileOptions) -> str:
    """One line: how the variant normalises."""
    reference = options.controls or "all wells"
    sphered = f"ZCA on {reference} (regularisation {options.spherize_regularisation})" \
        if options.spherize else "no sphering"
    return (f"{options.normalisation} {'per plate' if options.scope == 'plate' else 'over all plates'} "
            f"fitted on {reference}; selection {'+'.join(options.feature_selection) or 'none'}; {sphered}")


def score(wells: pd.DataFrame, features: list[str], options: ProfileOptions, *, null_size: int = 1000) -> dict:
    """Profile the wells with ``options`` and score NSC, NSCB and both mAPs (DMSO left out of the queries)."""
    made = profile_wells(wells, features, options)
    nsc = nsc_accuracy(made, batch="batch", controls=CONTROLS)
    moa = mean_average_precision(made, retrieve="moa", controls=CONTROLS, null_size=null_size)
    replicates = mean_average_precision(made, retrieve="replicates", controls=CONTROLS, null_size=null_size)
    return {"nsc": nsc.nsc, "nscb": nsc.nscb, "map_moa": moa.map, "map_replicates": replicates.map,
            "retrieved_replicates": replicates.fraction_retrieved, "features": len(made.features),
            "treatments": nsc.treatments, "treatments_nscb": nsc.treatments_nscb, "moas": nsc.moas}


def figure(wells: pd.DataFrame, features: list[str], path: Path) -> None:
    """Cosine similarity of the 103 treatment profiles, ordered by MoA: the baseline beside the default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics.pairwise import cosine_similarity

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6), constrained_layout=True)
    for ax, name in zip(axes, ("global_zscore", "default")):
        made = profile_wells(wells, features, VARIANTS[name])
        kept = made.table[made.table["compound"] != "DMSO"]
        treatments, kept_features = treatment_profiles(kept, features=made.features)
        treatments = treatments.sort_values(["moa", "compound", "concentration"]).reset_index(drop=True)
        similarity = cosine_similarity(treatments[kept_features].to_numpy())
        nsc = nsc_accuracy(made, controls=CONTROLS).nsc
        image = ax.imshow(similarity, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        edges = np.flatnonzero(treatments["moa"].to_numpy()[1:] != treatments["moa"].to_numpy()[:-1]) + 0.5
        for edge in edges:
            ax.axhline(edge, color="black", linewidth=0.5)
            ax.axvline(edge, color="black", linewidth=0.5)
        starts = np.concatenate([[-0.5], edges])
        ends = np.concatenate([edges, [len(treatments) - 0.5]])
        ax.set_yticks((starts + ends) / 2, treatments["moa"].drop_duplicates().tolist(), fontsize=7)
        ax.set_xticks([])
        title = "plain global z-score" if name == "global_zscore" else "default: z-score, selection, ZCA on DMSO"
        ax.set_title(f"{title}\nNSC {nsc:.2f}, {len(kept_features)} features", fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.7, label="cosine similarity of treatment profiles")
    fig.suptitle("BBBC021: 103 treatments (compound x concentration), ordered by mechanism of action", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="measure every variant, not only default and baseline")
    parser.add_argument("--null-size", type=int, default=1000, help="permutations of the mAP p-values")
    parser.add_argument("--figure", type=Path, help="also draw the similarity figure into this PNG")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"BBBC021 profiles not found at {DATA}", file=sys.stderr)
        return 1
    wells, features = load_wells()
    names = list(VARIANTS) if args.all else ["default", "global_zscore"]
    for name in names:
        start = time.perf_counter()
        result = score(wells, features, VARIANTS[name], null_size=args.null_size)
        seconds = time.perf_counter() - start
        prefix = "" if name == "default" else f"{name}_"
        print(f"# {name}: {describe(VARIANTS[name])}; {result['features']} features, {result['treatments']} "
              f"treatments ({result['treatments_nscb']} for NSCB), {result['moas']} MoAs, {seconds:.1f} s")
        print(f"{prefix}NSC {result['nsc']:.4f} accuracy")
        print(f"{prefix}NSCB {result['nscb']:.4f} accuracy")
        print(f"{prefix}mAP {result['map_moa']:.4f} moa_retrieval")
        print(f"{prefix}mAP_replicates {result['map_replicates']:.4f} replicate_retrieval")
        print(f"{prefix}replicates_retrieved {result['retrieved_replicates']:.4f} fraction_p<0.05", flush=True)
    if args.figure:
        figure(wells, features, args.figure)
        print(f"# figure saved to {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
