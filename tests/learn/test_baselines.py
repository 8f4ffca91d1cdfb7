"""Classical baselines: random forest, LDA and linear SVM on the same split as the CNNs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from cell_tables import make_cells, make_project

from napari_hcs import vocabulary
from napari_hcs.learn import METHODS, LabelError, run_baselines, split_by_well
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


def test_random_forest_reports_test_and_val():
    table = make_cells(wells_per_class=3, cells=20, n_features=4, shift=3.0)
    split = split_by_well(table, "class", val_fraction=0.3, test_fraction=0.3)
    result = run_baselines(table, "class", split, methods=["random_forest"])
    result = result["random_forest"]
    assert result["evaluated_on"] == "test" and result["params"]["n_estimators"] == 500
    assert result["test"]["n"] == int((split == "test").sum())
    assert result["val"]["n"] == int((split == "val").sum())
    assert result["test"]["accuracy"] > 0.9


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
    assert "Class 'DMSO' has a single well (Week4_27801/B02)" in captured.err
    scores = json.loads(captured.out.strip().splitlines()[-1])
    n_test = int((pd.read_csv(tmp_path / "cells.csv").plate == "Week4_27821").sum())
    for method in ("random_forest", "lda", "svm"):
        assert scores[method]["n"] == n_test
        assert scores[method]["accuracy"] > 0.85, (method, scores[method]["accuracy"])
