"""Classical baselines: random forest, LDA and linear SVM on the same split as the CNNs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from cell_tables import make_cells, make_project

from napari_hcs import vocabulary
from napari_hcs.learn import (METHODS, LabelError, Normalisation, build_split, normalise_features, run_baselines,
                              split_by_well)
from napari_hcs.learn.baselines import _BUILDERS


def test_methods_are_the_vocabulary_and_each_has_a_model():
    assert METHODS == vocabulary.BASELINE_METHODS
    assert tuple(_BUILDERS) == METHODS


# -- run_baselines ----------------------------------------------------------------
def test_baselines_learn_a_separable_problem_on_held_out_wells():
    table = make_cells(shift=3.0)
    split = split_by_well(table, "class", val_fraction=0.25)
    done = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        results = run_baselines(
            table, "class", split, methods=["lda", "svm"], progress=lambda n, t: done.append((n, t))
        )
    assert done == [(1, 2), (2, 2)]
    for method in ("lda", "svm"):
        result = results[method]
        assert result["evaluated_on"] == "val" and result["test"] == result["val"]
        assert result["test"]["n"] == int((split == "val").sum())
        assert result["test"]["accuracy"] > 0.9
        assert result["params"]["n_train"] == int((split == "train").sum())
    assert results["svm"]["params"]["cv"].startswith("grouped")
    assert json.loads(json.dumps(results)) == results


def test_with_test_cells_the_methods_are_fitted_on_train_and_val():
    table = make_cells(wells_per_class=3, cells=20, n_features=4, shift=3.0)
    split = split_by_well(table, "class", val_fraction=0.3, test_fraction=0.3)
    results = run_baselines(table, "class", split, methods=["random_forest", "svm"])
    result = results["random_forest"]
    assert result["evaluated_on"] == "test" and result["params"]["n_estimators"] == 500
    assert result["test"]["n"] == int((split == "test").sum())
    assert result["val"] is None  # val was fitted on
    assert result["params"]["fitted_on"] == ["train", "val"]
    assert result["params"]["n_train"] == int(split.isin(["train", "val"]).sum())
    assert result["test"]["accuracy"] > 0.9
    assert results["svm"]["params"]["cv"] == "grouped 2-fold"  # 2 wells of each class fitted on


def test_cancel_returns_the_methods_finished_before():
    table = make_cells(wells_per_class=2, cells=10, n_features=3)
    split = split_by_well(table, "class")
    calls = iter([False, True])
    results = run_baselines(
        table, "class", split, methods=["lda", "svm"], cancel=lambda: next(calls)
    )
    assert list(results) == ["lda"]


def test_cancel_during_the_svm_search_returns_the_methods_finished_before():
    table = make_cells(wells_per_class=3, cells=10, n_features=3)
    split = split_by_well(table, "class")
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2  # before lda, before svm, then inside the C search

    assert list(run_baselines(table, "class", split, methods=["lda", "svm"], cancel=cancel)) == ["lda"]


def test_several_group_columns_hold_out_their_combination():
    table = make_cells(wells_per_class=3, cells=10, n_features=3, shift=3.0)
    table["plate"] = np.where(table.index % 2, "P1", "P2")
    split = split_by_well(table, "class", group_column="plate,well", val_fraction=0.34)
    results = run_baselines(table, "class", split, methods=["svm"], group_column="plate,well")
    assert results["svm"]["params"]["cv"].startswith("grouped")


def test_clear_errors():
    table = make_cells(wells_per_class=2, cells=10, n_features=3)
    split = split_by_well(table, "class")
    with pytest.raises(LabelError, match="Label column 'moa' is not in the cell table; columns are: feat_0"):
        run_baselines(table, "moa", split)
    with pytest.raises(ValueError, match="single class"):
        run_baselines(table.assign(**{"class": "ctrl"}), "class", split)
    no_train = split.where(table["class"] == "ctrl", "test")
    with pytest.raises(ValueError, match=r"no training cells: 'hit' \(20 cells, all in test\)"):
        run_baselines(table, "class", no_train)
    with pytest.raises(ValueError, match="'holdout'; expected train, val, test or empty"):
        run_baselines(table, "class", split.where(table["class"] == "ctrl", "holdout"))
    with pytest.raises(ValueError, match="neither test nor val"):
        run_baselines(table, "class", split.where(split == "", "train"))
    with pytest.raises(ValueError, match="napari-hcs features"):
        run_baselines(table[["well", "class"]], "class", split)
    with pytest.raises(ValueError, match="'knn'"):
        run_baselines(table, "class", split, methods=["knn"])


def _two_plates(seed=0) -> pd.DataFrame:
    """Two plates of ctrl and hit cells, 3 wells each; plate P2's features read 4 higher, twice as spread."""
    table = pd.concat(
        [make_cells(wells_per_class=3, cells=20, n_features=4, shift=2.0, seed=seed + p).assign(plate=f"P{p + 1}")
         for p in range(2)],
        ignore_index=True,
    )
    on_p2 = table.plate == "P2"
    features = table.filter(like="feat_").columns
    table.loc[on_p2, features] = table.loc[on_p2, features] * 2.0 + 4.0
    table["compound"] = np.where(table["class"] == "ctrl", "DMSO", "drug")
    return table


def test_plate_normalisation_is_the_default_and_recorded():
    table = _two_plates()
    split = build_split(table, label_column="class", holdout="plate=P2")
    results = {
        name: run_baselines(table, "class", split, methods=["lda"], **options)["lda"]
        for name, options in {
            "plate": {}, "controls": {"normalisation": Normalisation(controls="compound=DMSO")},
            "global": {"normalisation": "global"},
        }.items()
    }
    assert results["plate"]["params"]["normalisation"] == "plate" and results["plate"]["params"]["controls"] is None
    assert results["controls"]["params"]["controls"] == "compound=DMSO"
    assert results["global"]["params"]["normalisation"] == "global"
    assert results["global"]["params"]["fitted_on"] == ["train", "val"]
    accuracy = {name: result["test"]["accuracy"] for name, result in results.items()}
    assert accuracy["controls"] > 0.8 and accuracy["plate"] > 0.8
    assert accuracy["global"] < min(accuracy["plate"], accuracy["controls"])  # P2's offset fools it


def test_normalisation_refusals():
    table = _two_plates()
    split = build_split(table, label_column="class", holdout="plate=P2")
    with pytest.raises(ValueError, match="Unknown normalisation 'well'; normalisations are: plate, global"):
        run_baselines(table, "class", split, methods=["lda"], normalisation="well")
    with pytest.raises(ValueError, match="'plate' normalisation only"):
        run_baselines(table, "class", split, methods=["lda"], normalisation=Normalisation("global", "compound=DMSO"))
    with pytest.raises(KeyError, match="Column 'drug' is not in the cell table"):
        run_baselines(table, "class", split, methods=["lda"], normalisation=Normalisation(controls="drug=DMSO"))
    with pytest.raises(ValueError, match="Plate P1 has no control cells"):
        run_baselines(table.assign(compound=np.where(table.plate == "P1", "drug", table.compound)),
                      "class", split, methods=["lda"], normalisation=Normalisation(controls="compound=DMSO"))


@pytest.mark.filterwarnings("ignore::UserWarning")  # a timepoint held out shares wells with training
def test_groups_within_plates_are_normalised_on_their_own_and_recorded():
    table = _two_plates().reset_index(drop=True)
    table["timepoint"] = np.arange(len(table)) % 2 + 1
    later = table.timepoint == 2
    features = [c for c in table.columns if c.startswith("feat_")]
    table.loc[later, features] = table.loc[later, features] * 3 + 40  # the later timepoint reads brighter
    split = build_split(table, label_column="class", holdout="timepoint=2")
    within = run_baselines(table, "class", split, methods=["lda"], normalisation=Normalisation(within="timepoint"))["lda"]
    whole = run_baselines(table, "class", split, methods=["lda"])["lda"]
    assert within["params"]["normalise_within"] == ["timepoint"] and whole["params"]["normalise_within"] == []
    assert within["test"]["accuracy"] > 0.8 > whole["test"]["accuracy"]
    with pytest.raises(ValueError, match="'plate' normalisation only"):
        normalise_features(table, normalisation="global", within=["timepoint"])


def test_normalise_features_leaves_other_columns_and_global_alone():
    table = _two_plates()
    table.loc[3, "feat_0"] = np.inf
    out = normalise_features(table, controls=("compound", ["DMSO"]))
    assert out.columns.tolist() == table.columns.tolist() and out["well"].equals(table["well"])
    assert np.isnan(out.loc[3, "feat_0"])
    ctrl = out[table.compound == "DMSO"].groupby("plate")["feat_1"]
    assert np.allclose(ctrl.mean(), 0) and np.allclose(ctrl.std(ddof=0), 1)
    assert normalise_features(table, normalisation="global") is table


def test_cells_without_wells_fit_with_cell_folds():
    table = make_cells(wells_per_class=2, cells=30, n_features=3, shift=3.0).drop(columns="well")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        split = build_split(table, label_column="class")
        result = run_baselines(table, "class", split, methods=["svm"])["svm"]
    assert result["params"]["cv"] == "grouped 5-fold" and result["test"]["accuracy"] > 0.9


# -- napari-hcs baseline ----------------------------------------------------------
def test_baseline_command_prints_table_then_json_and_saves(tmp_path, capsys):
    from napari_hcs.cli import main

    project = make_project(tmp_path / "screen", make_cells(shift=3.0))
    code = main([
        "baseline", "--project", str(project), "--label-column", "treatment",
        "--methods", "lda,svm", "--seed", "1",
    ])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert out[0] == "Scores on the val cells:"
    assert out[1].startswith("| method") and "| lda" in out[3]
    last = json.loads(out[-1])
    assert set(last) == {"lda", "svm"} and last["lda"]["accuracy"] > 0.9
    saved = json.loads((project / "baseline.json").read_text())
    assert saved["label_column"] == "treatment" and saved["methods"]["svm"]["test"] == last["svm"]
    assert (project / "baseline_confusion_svm.png").is_file()


def test_baseline_command_errors_name_the_problem(tmp_path, capsys):
    from napari_hcs.cli import main

    project = make_project(tmp_path / "screen", make_cells(wells_per_class=2, cells=5))
    assert main(["baseline", "--project", str(project), "--label-column", "moa"]) == 1
    assert "'moa' is not in the cell table" in capsys.readouterr().err
    args = ["baseline", "--project", str(project), "--label-column", "treatment"]
    assert main(args + ["--methods", "lda,knn"]) == 1
    assert "knn" in capsys.readouterr().err
    assert main(args + ["--holdout", "plate"]) == 1
    assert "COLUMN=VALUE" in capsys.readouterr().err
    assert main(["baseline", "--project", str(tmp_path / "none"), "--label-column", "x"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_baseline_command_accepts_several_group_columns_and_a_holdout(tmp_path, capsys):
    from napari_hcs.cli import main

    project = make_project(tmp_path / "screen", make_cells(shift=3.0))
    args = ["baseline", "--project", str(project), "--label-column", "treatment", "--methods", "lda"]
    assert main(args) == 0
    by_well = json.loads((project / "baseline.json").read_text())["split"]
    assert main(args + ["--group-column", "treatment,well"]) == 0
    saved = json.loads((project / "baseline.json").read_text())
    assert saved["split"] == by_well and saved["group_column"] == "treatment,well"
    assert main(args + ["--holdout", "well=B05,C05"]) == 0
    saved = json.loads((project / "baseline.json").read_text())
    assert saved["evaluated_on"] == "test" and saved["methods"]["lda"]["test"]["n"] == 60
    assert main(args + ["--holdout", "well=B05", "--split-column", "treatment"]) == 1
    assert "not both" in capsys.readouterr().err


def test_baseline_command_normalises_per_plate_and_saves_how(tmp_path, capsys):
    from napari_hcs.cli import main

    project = make_project(tmp_path / "screen", make_cells(shift=3.0))
    args = ["baseline", "--project", str(project), "--label-column", "treatment", "--methods", "lda"]
    assert main(args) == 0
    saved = json.loads((project / "baseline.json").read_text())
    assert (saved["normalisation"], saved["controls"]) == ("plate", None)
    assert saved["methods"]["lda"]["params"]["normalisation"] == "plate"
    assert main(args + ["--controls", "treatment=ctrl"]) == 0
    saved = json.loads((project / "baseline.json").read_text())
    assert saved["controls"] == "treatment=ctrl" and saved["methods"]["lda"]["params"]["controls"] == "treatment=ctrl"
    assert main(args + ["--normalisation", "global"]) == 0
    assert json.loads((project / "baseline.json").read_text())["normalisation"] == "global"
    capsys.readouterr()
    assert main(args + ["--normalisation", "global", "--controls", "treatment=ctrl"]) == 1
    assert "--controls needs --normalisation plate" in capsys.readouterr().err
    assert main(args + ["--controls", "treatment=DMSO"]) == 1
    assert "Control value(s) 'DMSO' not found in column 'treatment'; its values are: ctrl, hit" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_real_bbbc021_train_on_one_plate_test_on_the_other(shared_data, tmp_path, capsys):
    """Import a sixth of the real MCF7 crops, then score the baselines across plates."""
    from napari_hcs.cli import main
    from napari_hcs.project.crop_import import import_crops

    source = shared_data / "bbbc021_crops"
    keep = slice(None, None, 6)
    crops = np.load(source / "bbbc021_crops.npz")["crops"][keep]
    np.savez(tmp_path / "crops.npz", crops=crops)
    pd.read_csv(source / "bbbc021_crops.csv").iloc[keep].to_csv(tmp_path / "cells.csv", index=False)
    project = tmp_path / "bbbc021"
    import_crops(
        tmp_path / "crops.npz", tmp_path / "cells.csv", project,
        channels=["DNA", "tubulin", "actin"], nucleus_channel="DNA",
    )
    code = main([
        "baseline", "--project", str(project), "--label-column", "moa",
        "--holdout", "plate=Week4_27821",
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Class 'DMSO' has 1 well on plate Week4_27801: validation takes 1 of its 4 sites" in captured.err
    scores = json.loads(captured.out.strip().splitlines()[-1])
    n_test = int((pd.read_csv(tmp_path / "cells.csv").plate == "Week4_27821").sum())
    for method in ("random_forest", "lda", "svm"):
        assert scores[method]["n"] == n_test
        assert scores[method]["accuracy"] > 0.85, (method, scores[method]["accuracy"])
