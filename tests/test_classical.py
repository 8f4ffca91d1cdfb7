"""Classical baselines: feature preparation fitted on train only, grouped C search, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from napari_hcs.learn.baselines import SVM_C_GRID, choose_svm_c, prepare_features, run_baselines
from napari_hcs.learn.splits import split_by_well


def make_cells(wells_per_class=4, cells=30, n_features=8, shift=1.5, seed=0) -> pd.DataFrame:
    """Two classes, separated along the first two features, with a small well effect."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, cls in enumerate(["ctrl", "hit"]):
        for w in range(wells_per_class):
            x = rng.normal(size=(cells, n_features)) + rng.normal(scale=0.2, size=n_features)
            x[:, :2] += k * shift
            frame = pd.DataFrame(x, columns=[f"feat_{i}" for i in range(n_features)])
            frame["well"] = f"{'BC'[k]}{w + 2:02d}"
            frame["class"] = cls
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# -- prepare_features -----------------------------------------------------------
def test_correlation_filter_drops_a_duplicate_and_constant_feature():
    table = make_cells()
    table["feat_copy"] = 3 * table["feat_1"] - 2
    table["feat_flat"] = 7.0
    train, (other,), info = prepare_features(table, [table.iloc[:10]])
    assert info["dropped_correlated"] == ["feat_copy"]
    assert info["dropped_constant"] == ["feat_flat"]
    assert list(train.columns) == [f"feat_{i}" for i in range(8)]
    assert np.allclose(train.mean(), 0) and np.allclose(train.std(ddof=0), 1)
    assert list(other.columns) == list(train.columns)


def test_everything_is_fitted_on_train_only():
    table = make_cells()
    train_df, other_df = table.iloc[:100].copy(), table.iloc[100:].copy()
    # Correlated on the other cells only: must be kept.
    train_df["feat_late"] = np.arange(100.0) % 7
    other_df["feat_late"] = other_df["feat_0"]
    train, (other,), info = prepare_features(train_df, [other_df])
    assert "feat_late" in info["features"]
    expected = (other_df["feat_3"] - train_df["feat_3"].mean()) / train_df["feat_3"].std(ddof=0)
    assert np.allclose(other["feat_3"], expected)


def test_missing_and_infinite_values_are_imputed_with_the_train_median_or_raise():
    table = make_cells()
    table.loc[[0, 1], "feat_2"] = [np.nan, np.inf]
    table["feat_empty"] = np.nan
    train, _, info = prepare_features(table)
    assert info["imputed"] == {"feat_2": 2}
    assert info["dropped_missing"] == ["feat_empty"]
    assert np.isfinite(train.to_numpy()).all()
    with pytest.raises(ValueError, match=r"feat_2 \(2\)"):
        prepare_features(table, nan_policy="raise")


def test_no_feature_columns_says_what_to_run():
    with pytest.raises(ValueError, match="napari-hcs features"):
        prepare_features(pd.DataFrame({"well": ["A01"], "area": [1.0]}))


# -- the SVM's C ------------------------------------------------------------------
def test_svm_c_grid_spans_2_to_the_minus_10_to_10():
    assert SVM_C_GRID[0] == 2.0**-10 and SVM_C_GRID[-1] == 2.0**10
    assert np.allclose(np.diff(np.log2(SVM_C_GRID)), 2)


def test_choose_svm_c_uses_grouped_folds_and_refines_around_the_best():
    table = make_cells(wells_per_class=3, cells=20, n_features=4)
    x, _, _ = prepare_features(table)
    best, info = choose_svm_c(x.to_numpy(), table["class"].to_numpy(), table["well"].to_numpy())
    assert info["cv"] == "grouped 3-fold"
    tried = sorted(float(c) for c in info["scores"])
    assert set(SVM_C_GRID) <= set(tried)
    assert len(tried) in (len(SVM_C_GRID) + 1, len(SVM_C_GRID) + 2)
    assert best in tried
    odd = [c for c in tried if round(np.log2(c)) % 2]
    assert all(abs(np.log2(c) - np.log2(best)) <= 2 for c in odd)


def test_choose_svm_c_warns_when_a_class_has_one_well():
    table = make_cells(wells_per_class=2, cells=20, n_features=3)
    table.loc[table["class"] == "ctrl", "well"] = "B02"
    x, _, _ = prepare_features(table)
    with pytest.warns(UserWarning, match="ctrl have a single training well"):
        _, info = choose_svm_c(
            x.to_numpy(), table["class"].to_numpy(), table["well"].to_numpy(), grid=[0.1, 1.0]
        )
    assert info["cv"].startswith("stratified")


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


def test_clear_errors():
    table = make_cells(wells_per_class=2, cells=10, n_features=3)
    split = split_by_well(table, "class")
    with pytest.raises(KeyError, match="'moa' is not in the cell table; columns are: feat_0"):
        run_baselines(table, "moa", split)
    with pytest.raises(ValueError, match="single class"):
        run_baselines(table.assign(**{"class": "ctrl"}), "class", split)
    no_train = split.where(table["class"] == "ctrl", "test")
    with pytest.raises(ValueError, match="'hit' have no training cells"):
        run_baselines(table, "class", no_train)
    with pytest.raises(ValueError, match="napari-hcs features"):
        run_baselines(table[["well", "class"]], "class", split)
    with pytest.raises(ValueError, match="'knn'"):
        run_baselines(table, "class", split, methods=["knn"])


# -- napari-hcs baseline ----------------------------------------------------------
def make_project(folder, table):
    from napari_hcs.project.cell_store import CellStore

    store = CellStore.create(folder, channels=["DNA"], crop_size=4)
    for well, cells in table.groupby("well", sort=True):
        rows = store.append_site(
            f"{well}_f001_t000", cells[["well"]], np.zeros((len(cells), 1, 4, 4), "float32")
        )
        features = cells.filter(like="feat_").reset_index(drop=True)
        store.write_features(well, features.assign(crop_index=rows["crop_index"]))
    layout = table.groupby("well")["class"].first().rename("treatment")
    layout.to_csv(folder / "layout.csv")
    return folder


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
